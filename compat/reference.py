"""The reference service's route on the wire: ``POST /v1/asr/transcribe/audio``.

Its request fields, its success body ``{"text", "language", "request_id"}`` and its
error body ``{"error", "code", "request_id"}`` (a 429 adds ``retry_after_seconds``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from compat.errors import ConcurrencyLimit, GatewayError, InvalidRequest
from compat.forms import FormField, FormReader, quoted
from compat.languages import to_code
from compat.partial import PartialWarning, partial_warning
from compat.transcript import Transcript


class ProcessType(StrEnum):
    """How the audio is processed."""

    FULL = "full"
    CHUNKED = "chunked"


TRANSCRIBE_FIELDS: tuple[FormField, ...] = (
    FormField("file", "file", "Audio file (WAV, MP3, M4A, FLAC, OGG, Opus, AAC, WebM, ...).", required=True),
    FormField(
        "process_type",
        "string",
        "`full`: the whole audio in one request to the model (up to MAX_FULL_SECONDS). `chunked`: cut into "
        "pieces of at most CHUNK_SECONDS at quiet points, transcribed in parallel (up to MAX_CHUNKED_SECONDS). "
        "Absent: the server's DEFAULT_PROCESS_TYPE (full unless set).",
        choices=tuple(p.value for p in ProcessType),
    ),
    FormField(
        "request_id",
        "string",
        "Trace id echoed in the body and the X-Request-ID header; default: the X-Request-ID request header, "
        "else a new UUID.",
    ),
    FormField(
        "language",
        "string",
        "ISO 639-1 code or English name of the spoken language; default: the server's (detect).",
    ),
)


@dataclass(frozen=True)
class TranscribeRequest:
    """A parsed reference-route form (the file aside).

    No ``request_id``: the gateway takes it as the form arrives, so that this parser's errors echo it.
    """

    process_type: ProcessType | None
    language: str | None
    unknown_fields: list[str]


def parse_transcribe_form(values: Mapping[str, Sequence[str]]) -> TranscribeRequest:
    """Check and type the text fields of the reference route's form.

    Raises:
        InvalidRequest: naming the field at fault.
    """
    form = FormReader(TRANSCRIBE_FIELDS, values)
    form.text("request_id")  # sent once
    process_type = form.text("process_type")
    if process_type is not None:
        process_type = form.choice("process_type", ProcessType.FULL.value)
    language = form.text("language")
    code = None
    if language is not None:
        code = to_code(language)
        if code is None:
            raise InvalidRequest(f"{quoted(language)} is not a known language code or name.", param="language")
    return TranscribeRequest(
        process_type=ProcessType(process_type) if process_type else None,
        language=code,
        unknown_fields=form.unknown,
    )


class TranscribeResponse(msgspec.Struct, omit_defaults=True):
    """The reference route's success body."""

    text: str
    language: str | None
    request_id: str
    warning: PartialWarning | None = None


class ErrorResponse(msgspec.Struct, omit_defaults=True):
    """The reference route's error body."""

    error: str
    code: str
    request_id: str
    retry_after_seconds: int | None = None


_ENCODER = msgspec.json.Encoder()


def render_transcribe(transcript: Transcript, request_id: str) -> bytes:
    """The success body."""
    return _ENCODER.encode(
        TranscribeResponse(
            text=transcript.text,
            language=transcript.language,
            request_id=request_id,
            warning=partial_warning(transcript),
        )
    )


def error_body(error: GatewayError, request_id: str) -> bytes:
    """The error body; a 429 carries ``retry_after_seconds``."""
    return _ENCODER.encode(
        ErrorResponse(
            error=error.message,
            code=error.code,
            request_id=request_id,
            retry_after_seconds=error.retry_after_seconds if isinstance(error, ConcurrencyLimit) else None,
        )
    )
