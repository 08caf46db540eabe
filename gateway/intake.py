"""Intake: a multipart upload turned into one audio file and the request's text fields.

The body is streamed through the multipart parser (``gateway.multipart``) into a
spooled temporary file (in memory up to 1 MiB, then an unnamed file on disk that the
OS deletes when it is closed), with the upload limit enforced by Litestar as the bytes
arrive (with a Content-Length over the limit nothing is read at all) and text fields
bounded.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Scope

from compat.errors import InvalidRequest, UploadTooLarge
from compat.forms import QUOTED_CHARACTERS, quoted
from gateway.disconnect import ClientGone
from gateway.linger import UNREAD
from gateway.multipart import FILE_AS_TEXT, close_files, read_multipart

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
URLENCODED_READ_LIMIT = 64 * 1024  # bytes of a form-urlencoded body read to name what is wrong with it
MAX_REQUEST_ID = 200  # characters kept of a client's trace id
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


@dataclass(frozen=True)
class Upload:
    """The uploaded audio and the form's text fields."""

    file: UploadFile
    fields: dict[str, list[str]]

    @property
    def name(self) -> str:
        """The file name the client gave, for messages."""
        return self.file.filename or "file"


def clean_request_id(value: str) -> str:
    """A client's trace id as the gateway uses it; empty when nothing is left.

    No control characters (a CR/LF would split a header or a log line), trimmed, at most
    ``MAX_REQUEST_ID`` characters.
    """
    kept = value[: 4 * MAX_REQUEST_ID]  # a form field may be megabytes: look at no more than can be kept
    return "".join(ch for ch in kept if ch.isprintable()).strip()[:MAX_REQUEST_ID]


def request_id_headers(request_id: str) -> dict[str, str]:
    """The ``X-Request-ID`` response header.

    The id as it is when ASCII, else percent-encoded UTF-8 (header values are bytes; a body echoes
    the id unchanged).
    """
    value = request_id if request_id.isascii() else urllib.parse.quote(request_id, safe=_HEADER_SAFE)
    return {REQUEST_ID_HEADER: value}


def header_request_id(request: Request[Any, Any, Any]) -> str:
    """The request's trace id: one set from its form, else its X-Request-ID, else a new UUID."""
    return scope_request_id(request.scope)


def scope_request_id(scope: Scope) -> str:
    """``header_request_id`` for an ASGI scope, kept in its state: the HTTP server's own answers use it too."""
    state = scope.setdefault("state", {})
    known = state.get("request_id")
    if isinstance(known, str):
        return known
    header = next((value for name, value in scope["headers"] if name.lower() == REQUEST_ID_HEADER_BYTES), b"")
    value = clean_request_id(_utf8(header.decode("latin-1"))) or str(uuid.uuid4())
    state["request_id"] = value
    return value


def _utf8(header: str) -> str:
    """A header value as its client wrote it.

    Clients send UTF-8 bytes, which the ASGI server hands over read as Latin-1 ("tầng" came back as
    "táº§ng"); bytes that are not UTF-8 stay as Latin-1 reads them.
    """
    try:
        return header.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return header


def set_request_id(request: Request[Any, Any, Any], value: str) -> None:
    """Use ``value`` as the request's trace id from now on (errors included)."""
    request.scope.setdefault("state", {})["request_id"] = value


@asynccontextmanager
async def receive_upload(
    request: Request[Any, Any, Any], *, limit_mb: float, request_id_field: str | None = None
) -> AsyncIterator[Upload]:
    """Read the multipart form; every uploaded file is closed (and so deleted) on exit.

    Args:
        request: the HTTP request.
        limit_mb: the upload limit.
        request_id_field: a form field that names the request's trace id (the reference route's
            ``request_id``), taken before anything is checked, so every error echoes it.

    Raises:
        UploadTooLarge: the body is over the limit.
        InvalidRequest: not multipart, malformed, or no ``file`` part.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise InvalidRequest(
            f"Send the audio as multipart/form-data with a 'file' field (got {media_type or 'no Content-Type'}).",
            param="file",
        )
    if media_type == "application/x-www-form-urlencoded" and not _small(request):
        # it can carry no file; read (on the event loop, by Litestar) only what is small enough to say why
        raise InvalidRequest(
            "'file' is required: send the audio as multipart/form-data with a file field named 'file' "
            "(a form-urlencoded body carries no file).",
            param="file",
        )
    try:
        if media_type == "multipart/form-data":
            parts = await read_multipart(request)
        else:  # a small form-urlencoded body: Litestar's reader
            parts = defaultdict(list)
            for key, value in (await request.form()).multi_items():
                parts[key].append(value)
    except UnicodeError:  # a part without a filename is decoded as text
        raise InvalidRequest(
            "A form field that is not a file holds bytes that are not UTF-8 text. If it is the audio, send it as "
            "a file part with a filename (curl: -F file=@audio.wav; -F file=<audio.wav, or an empty filename=, "
            "sends it as a text field); other fields (a prompt) must be UTF-8, or name their charset.",
            param="file",
        ) from None
    except LookupError as error:
        if type(error) is not LookupError:  # a KeyError or IndexError is no charset of the client's
            raise
        raise InvalidRequest(f"A form field names a charset this server does not know ({error}).") from None
    except InternalServerException as error:
        if error.detail == "client disconnected prematurely":  # Litestar's words for a client gone mid-upload
            raise ClientGone from None
        raise
    except RequestEntityTooLarge:
        raise UploadTooLarge(
            f"The upload is larger than the limit of {limit_mb:g} MB.", param="file", headers=UNREAD
        ) from None
    except ClientException as error:
        raise InvalidRequest(f"The form is malformed: {error.detail}.", param="file") from None
    try:
        fields: defaultdict[str, list[str]] = defaultdict(list)
        for key, values in parts.items():
            fields[key].extend(value for value in values if isinstance(value, str))
        if request_id_field is not None and fields.get(request_id_field):
            named = clean_request_id(fields[request_id_field][0])
            if named:
                set_request_id(request, named)
        files = [value for value in parts.get("file", []) if isinstance(value, UploadFile)]
        if not files:
            if "file" in fields:
                raise InvalidRequest(_text_for_a_file(fields["file"][0]), param="file")
            raise InvalidRequest(
                "'file' is required: send the audio as a multipart file field named 'file'.", param="file"
            )
        if len(files) > 1:
            raise InvalidRequest("Send exactly one 'file'.", param="file")
        yield Upload(file=files[0], fields=dict(fields))
    finally:
        await close_files(parts)


def _text_for_a_file(text: str) -> str:
    """What to say when 'file' came as text: most often curl's -F file=meeting.mp3, the @ forgotten."""
    path = text.strip()
    if path and len(path) <= QUOTED_CHARACTERS and path.isprintable():  # a path a user typed, shown whole
        return (
            f"'file' must be a file upload, not a text field: it holds the text {quoted(path)}. With curl, put @ "
            f"before the path (-F file=@{path}); without it, curl sends the path itself as text."
        )
    return FILE_AS_TEXT


def _small(request: Request[Any, Any, Any]) -> bool:
    """Whether the body says it is at most ``URLENCODED_READ_LIMIT`` bytes."""
    length = request.headers.get("content-length", "")
    return length.isdigit() and int(length) <= URLENCODED_READ_LIMIT
