"""OpenAI's audio API on the wire: the transcription form, and every response format.

Field names, order and wording follow OpenAI's API reference, so the official SDKs,
n8n's OpenAI node and curl lines written for OpenAI work unchanged.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import msgspec

from compat.errors import GatewayError, InvalidRequest
from compat.forms import FormField, FormReader, quoted
from compat.languages import name_of, to_code
from compat.partial import PartialWarning, partial_warning
from compat.subtitles import render_srt, render_vtt
from compat.transcript import Transcript


class ResponseFormat(StrEnum):
    """OpenAI's ``response_format`` values for transcriptions."""

    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VERBOSE_JSON = "verbose_json"
    VTT = "vtt"

    @property
    def shows_times(self) -> bool:
        """Whether the format shows segment times."""
        return self in (ResponseFormat.SRT, ResponseFormat.VERBOSE_JSON, ResponseFormat.VTT)


TRANSCRIPTION_FIELDS: tuple[FormField, ...] = (
    FormField(
        "file",
        "file",
        "The audio file object (not file name) to transcribe, in one of these formats: flac, mp3, mp4, "
        "mpeg, mpga, m4a, ogg, opus, wav, webm, aac.",
        required=True,
    ),
    FormField(
        "model",
        "string",
        "ID of the model to use: the served model or one of its aliases (see GET /v1/models; `whisper-1` "
        "works unless MODEL_ALIASES leaves it out). Optional here: the served model when absent.",
    ),
    FormField(
        "language",
        "string",
        "The language of the input audio, in ISO-639-1 format (e.g. `en`). Supplying it improves accuracy "
        "and latency; absent, the server's DEFAULT_LANGUAGE (detected when that is empty). English names "
        "(`English`) work too.",
    ),
    FormField(
        "prompt",
        "string",
        "Optional text to guide the model's style or continue a previous audio segment. It should match "
        "the audio language.",
    ),
    FormField(
        "response_format",
        "string",
        "The format of the output: json, text, srt, verbose_json, or vtt.",
        choices=tuple(f.value for f in ResponseFormat),
        default="json",
    ),
    FormField(
        "temperature",
        "number",
        "The sampling temperature, between 0 and 1. At 0 the model uses log probability to raise the "
        "temperature automatically until certain thresholds are hit.",
        default=0.0,
    ),
    FormField(
        "timestamp_granularities[]",
        "array",
        "The timestamp granularities to populate: `segment` and/or `word` (none: `segment`). `word` requires "
        "`response_format=verbose_json`, and `word` alone gives `words` and no `segments`, as OpenAI does. Word "
        "times are given only where the backend really has them.",
        choices=("segment", "word"),
        aliases=("timestamp_granularities",),
    ),
    FormField(
        "stream",
        "boolean",
        "If true, the transcript is streamed as server-sent events: `transcript.text.delta` as pieces "
        "finish, then `transcript.text.done` (with response_format json or text only).",
        default=False,
    ),
    FormField(
        "chunking_strategy",
        "string",
        'How the audio is cut: `auto`, or the object `{"type": "server_vad", ...}` (as JSON text, or as '
        "`chunking_strategy[type]=server_vad` fields, as the OpenAI SDKs send it), transcribes it in pieces cut "
        "at quiet points, in parallel (this gateway's chunked mode; the object's tuning keys are accepted and "
        "not applied: the gateway finds its own cut points); absent, the server default mode.",
        keyed=True,
    ),
)


TRANSLATION_FIELDS: tuple[FormField, ...] = tuple(
    f for f in TRANSCRIPTION_FIELDS if f.name in ("file", "model", "prompt", "response_format", "temperature")
) + tuple(f for f in TRANSCRIPTION_FIELDS if f.name == "chunking_strategy")


@dataclass(frozen=True)
class TranscriptionRequest:
    """A parsed ``POST /v1/audio/transcriptions`` form (the file aside)."""

    model: str | None
    language: str | None
    prompt: str | None
    response_format: ResponseFormat
    temperature: float | None
    timestamp_granularities: frozenset[str]
    stream: bool
    chunked: bool | None
    unknown_fields: list[str]

    @property
    def wants_words(self) -> bool:
        """Word times are computed only when asked for in verbose_json."""
        return "word" in self.timestamp_granularities

    @property
    def wants_segments(self) -> bool:
        """verbose_json has segments unless ``word`` alone was asked for (OpenAI then leaves them out)."""
        return self.timestamp_granularities != {"word"}


def parse_translation_form(values: Mapping[str, Sequence[str]]) -> TranscriptionRequest:
    """Check and type the text fields of a translation form (OpenAI's: no language, no timestamps, no stream).

    Raises:
        InvalidRequest: naming the field at fault.
    """
    form = FormReader(TRANSLATION_FIELDS, values)
    return TranscriptionRequest(
        model=form.text("model"),
        language=None,
        prompt=kept_prompt(form.text("prompt")),
        response_format=ResponseFormat(form.choice("response_format", ResponseFormat.JSON.value)),
        temperature=form.number("temperature", low=0.0, high=1.0),
        timestamp_granularities=frozenset(),
        stream=False,
        chunked=_chunking(form),
        unknown_fields=form.unknown,
    )


def parse_transcription_form(values: Mapping[str, Sequence[str]]) -> TranscriptionRequest:
    """Check and type the text fields of a transcription form.

    Raises:
        InvalidRequest: naming the field at fault.
    """
    form = FormReader(TRANSCRIPTION_FIELDS, values)
    response_format = ResponseFormat(form.choice("response_format", ResponseFormat.JSON.value))
    granularities = frozenset(form.items("timestamp_granularities[]"))
    if "word" in granularities and response_format is not ResponseFormat.VERBOSE_JSON:  # OpenAI's 400 too
        raise InvalidRequest(
            "timestamp_granularities[]=word requires response_format=verbose_json.", param="timestamp_granularities[]"
        )
    stream = form.boolean("stream")
    if stream and response_format not in (ResponseFormat.JSON, ResponseFormat.TEXT):
        raise InvalidRequest(
            f"stream=true sends transcript.text events, not {response_format.value}: ask for response_format "
            "json or text with stream, or leave stream out for the whole file at once.",
            param="stream",
        )
    language = form.text("language")
    code = None
    if language is not None:
        code = to_code(language)
        if code is None:
            raise InvalidRequest(
                f"{quoted(language)} is not a known ISO 639-1 language code or language name.", param="language"
            )
    return TranscriptionRequest(
        model=form.text("model"),
        language=code,
        prompt=kept_prompt(form.text("prompt")),
        response_format=response_format,
        temperature=form.number("temperature", low=0.0, high=1.0),
        timestamp_granularities=granularities,
        stream=stream,
        chunked=_chunking(form),
        unknown_fields=form.unknown,
    )


MAX_CHUNKING_TEXT = 4096
# Whisper reads a prompt's last 223 tokens (OpenAI's whisper-1: 224) and Qwen3-ASR takes it as context: no
# model uses a book. Tokenising megabytes held a worker for seconds (20 MB: 22 s) for nothing.
MAX_PROMPT_CHARACTERS = 4096


def kept_prompt(prompt: str | None) -> str | None:
    """The prompt's end that a model can use: its last ``MAX_PROMPT_CHARACTERS``, from a word's start."""
    if prompt is None or len(prompt) <= MAX_PROMPT_CHARACTERS:
        return prompt
    kept = prompt[-MAX_PROMPT_CHARACTERS:]
    space = kept.find(" ")
    return kept[space + 1 :] if 0 <= space < 100 else kept


def _chunking(form: FormReader) -> bool | None:
    """True for any chunking strategy sent (``auto`` or ``server_vad``), None when absent."""
    value, keys = form.text("chunking_strategy"), form.keys("chunking_strategy")
    if value is not None and keys:
        raise InvalidRequest(
            "chunking_strategy was sent both as one field and as chunking_strategy[...] fields; send one.",
            param="chunking_strategy",
        )
    if keys:
        parsed: object = keys
    elif value is None:
        return None
    elif value.lower() == "auto":
        return True
    elif len(value) > MAX_CHUNKING_TEXT:  # a field may be megabytes; the object is a few dozen characters
        parsed = None
    else:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
    if isinstance(parsed, dict) and parsed.get("type") == "server_vad":
        return True
    raise InvalidRequest(
        'chunking_strategy must be "auto" or an object {"type": "server_vad", ...} (JSON text, or '
        "chunking_strategy[type]=server_vad).",
        param="chunking_strategy",
    )


# --- responses ----------------------------------------------------------------------------------


class Usage(msgspec.Struct):
    """OpenAI's duration-based usage."""

    seconds: int
    type: Literal["duration"] = "duration"


class TranscriptionJson(msgspec.Struct, omit_defaults=True):
    """``response_format=json`` (``warning`` only on a partial result, ASR-6030)."""

    text: str
    usage: Usage
    warning: PartialWarning | None = None


class VerboseWord(msgspec.Struct):
    """A word with its time, as OpenAI's verbose_json gives it."""

    word: str
    start: float
    end: float


class VerboseSegment(msgspec.Struct):
    """A segment as OpenAI's verbose_json gives it."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionVerbose(msgspec.Struct, omit_defaults=True, kw_only=True):
    """``response_format=verbose_json``.

    ``words`` only when asked for and real, ``segments`` unless ``words`` alone were asked for (OpenAI's
    shape), ``warning`` as in json.
    """

    task: str
    language: str
    duration: float
    text: str
    segments: list[VerboseSegment] | None = None
    usage: Usage
    words: list[VerboseWord] | None = None
    warning: PartialWarning | None = None


@dataclass(frozen=True)
class Rendered:
    """A response body and its media type."""

    body: bytes
    media_type: str


_ENCODER = msgspec.json.Encoder()
PLAIN_TEXT = "text/plain; charset=utf-8"


def _usage(transcript: Transcript) -> Usage:
    return Usage(seconds=math.ceil(transcript.duration))


def _seconds(value: float) -> float:
    return round(value, 3)


def _verbose_language(transcript: Transcript, task: str) -> str:
    """verbose_json's ``language``: the detected one's name; a translation's is always English (OpenAI's)."""
    if task == "translate":
        return "english"
    return name_of(transcript.language) if transcript.language else "unknown"


def bare_word(word: str) -> str:
    """A word as OpenAI's ``words`` give it: no punctuation at either end ("Mr." is "Mr", "don't" stays)."""
    start, end = 0, len(word)
    while start < end and (word[start].isspace() or unicodedata.category(word[start]).startswith("P")):
        start += 1
    while end > start and (word[end - 1].isspace() or unicodedata.category(word[end - 1]).startswith("P")):
        end -= 1
    return word[start:end]


def _verbose_words(transcript: Transcript) -> list[VerboseWord]:
    """The timed words, bare; a "word" that was only punctuation (a dash, an ellipsis) is no word."""
    out = []
    for word in transcript.words or ():
        text = bare_word(word.word)
        if text:
            out.append(VerboseWord(text, _seconds(word.start), _seconds(word.end)))
    return out


def render_transcription(
    transcript: Transcript,
    response_format: ResponseFormat,
    *,
    with_words: bool,
    with_segments: bool = True,
    task: str = "transcribe",
) -> Rendered:
    """The transcript in the format asked for."""
    # text, srt and vtt all leave as text/plain, as OpenAI sends them (clients that mirror its API
    # read a str from any text/plain answer)
    if response_format is ResponseFormat.TEXT:
        return Rendered((transcript.text + "\n").encode(), PLAIN_TEXT)
    if response_format is ResponseFormat.SRT:
        return Rendered(render_srt(transcript.segments).encode(), PLAIN_TEXT)
    if response_format is ResponseFormat.VTT:
        return Rendered(render_vtt(transcript.segments).encode(), PLAIN_TEXT)
    if response_format is ResponseFormat.VERBOSE_JSON:
        body: Any = TranscriptionVerbose(
            task=task,
            language=_verbose_language(transcript, task),
            duration=_seconds(transcript.duration),
            text=transcript.text,
            segments=[
                VerboseSegment(
                    id=s.id,
                    seek=s.seek,
                    start=_seconds(s.start),
                    end=_seconds(s.end),
                    text=s.text,
                    tokens=s.tokens,
                    temperature=s.temperature,
                    avg_logprob=s.avg_logprob,
                    compression_ratio=s.compression_ratio,
                    no_speech_prob=s.no_speech_prob,
                )
                for s in transcript.segments
            ]
            if with_segments
            else None,
            usage=_usage(transcript),
            words=_verbose_words(transcript) if with_words and transcript.words is not None else None,
            warning=partial_warning(transcript),
        )
        return Rendered(_ENCODER.encode(body), "application/json")
    return Rendered(
        _ENCODER.encode(
            TranscriptionJson(text=transcript.text, usage=_usage(transcript), warning=partial_warning(transcript))
        ),
        "application/json",
    )


# --- streaming ----------------------------------------------------------------------------------


def sse_event(payload: Mapping[str, Any]) -> bytes:
    """One server-sent event carrying a JSON object."""
    return b"data: " + _ENCODER.encode(payload) + b"\n\n"


def text_delta_event(delta: str) -> bytes:
    """``transcript.text.delta``: text of pieces finished since the last event, in order."""
    return sse_event({"type": "transcript.text.delta", "delta": delta})


def text_done_event(transcript: Transcript) -> bytes:
    """``transcript.text.done``: the whole text and the usage (and the ASR-6030 warning on a partial result)."""
    event: dict[str, Any] = {
        "type": "transcript.text.done",
        "text": transcript.text,
        "usage": msgspec.to_builtins(_usage(transcript)),
    }
    warning = partial_warning(transcript)
    if warning is not None:
        event["warning"] = msgspec.to_builtins(warning)
    return sse_event(event)


# --- errors and models --------------------------------------------------------------------------


class ErrorDetail(msgspec.Struct):
    """OpenAI's error object: all four keys, ``param`` and ``code`` may be null."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct):
    """OpenAI's error envelope."""

    error: ErrorDetail


def error_body(error: GatewayError) -> bytes:
    """An error in OpenAI's shape, with the ASR code in ``code``."""
    return _ENCODER.encode(ErrorBody(ErrorDetail(error.message, error.openai_type, error.param, error.code)))


def error_event(error: GatewayError) -> bytes:
    """An error met after a stream began, as a server-sent event in OpenAI's error shape."""
    return sse_event(
        {
            "type": "error",
            "error": msgspec.to_builtins(ErrorDetail(error.message, error.openai_type, error.param, error.code)),
        }
    )


class ModelCard(msgspec.Struct):
    """One entry of ``GET /v1/models``."""

    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct):
    """``GET /v1/models``."""

    data: list[ModelCard]
    object: Literal["list"] = "list"


def encode(value: Any) -> bytes:
    """JSON bytes of a wire struct."""
    return _ENCODER.encode(value)
