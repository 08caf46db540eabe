"""A multipart body read as the gateway needs it: files to spooled temporary files, text bounded.

Litestar's own form reader keeps a text field's bytes in memory whatever their size, up to the
upload limit (500 MB by default): one request with a 200 MB ``prompt`` took 0.3 GiB more server
memory (measured), and a few at once could take the server down. This is Litestar's reader (the
same parser, the same ``UploadFile``: in memory up to 1 MiB, then an unnamed file on disk) with
bounds more: the fields that are not files hold at most ``TEXT_LIMIT`` bytes together, and a
field's charset must be one that decodes text in linear time (Python's ``punycode`` took 43 s of
CPU for 1 MiB, the event loop blocked all along).

A refusal while the client is still sending says ``Connection: close`` (``gateway.linger.UNREAD``): else
the server would go on reading, and throwing away, the rest of a body of any size; it reads no more than
the linger that keeps the refusal readable.
"""

from __future__ import annotations

import codecs
import email.utils
import re
import urllib.parse
from collections import defaultdict
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.utils.compat import async_next
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser  # type: ignore[import-untyped]

from compat.errors import GatewayError, InvalidRequest, UploadTooLarge
from gateway.linger import UNREAD

FORM_PART_LIMIT = 1000  # Litestar's multipart_form_part_limit (its default)
TEXT_LIMIT = 1 << 20  # every text field together; a prompt is a few hundred words
SLOW_CHARSETS = {"punycode", "idna", "undefined"}  # quadratic, or refusing everything (a 500 before)
FILE_AS_TEXT = (
    "'file' must be a file upload, not a text field (curl: -F file=@audio.wav, with @; -F file=<audio.wav sends "
    "the audio as text)."
)

Fields = dict[str, list[Any]]  # each value a str or an UploadFile


async def read_multipart(request: Request[Any, Any, Any]) -> Fields:
    """The form's parts by name, in order: text as ``str``, files as ``UploadFile`` (the caller closes them).

    Raises:
        InvalidRequest: no boundary, a malformed body, or more than ``FORM_PART_LIMIT`` parts.
        UploadTooLarge: the text fields together over ``TEXT_LIMIT``.
        UnicodeError, LookupError: a text field not in its charset, or an unknown charset.
        litestar.exceptions.HTTPException: from the body's stream (over the upload limit, client gone).
    """
    boundary = request.content_type[1].get("boundary")
    if not boundary:
        raise InvalidRequest(
            "The multipart body is malformed: multipart boundary missing in Content-Type.", param="file"
        )
    fields: defaultdict[str, list[Any]] = defaultdict(list)
    part: UploadFile | bytearray = bytearray()
    text = 0  # bytes of every text field so far
    try:
        stream = request.stream()
        chunk = await async_next(stream, b"")
        if not chunk:
            return fields
        with PushMultipartParser(boundary.encode(), max_segment_count=FORM_PART_LIMIT) as parser:
            segment: MultipartSegment | None = None
            while not parser.closed:
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                        if filename := segment.filename or _extended_filename(segment):
                            part = UploadFile(
                                content_type=segment.content_type or "text/plain",
                                filename=filename,
                                headers=dict(segment.headerlist),
                            )
                        else:
                            _check_charset(segment)
                    elif event:
                        if isinstance(part, UploadFile):
                            await part.write(event)
                        else:
                            text += len(event)
                            if text > TEXT_LIMIT:
                                raise _too_much_text(segment)
                            part.extend(event)
                    else:  # the end of a part
                        if segment is None:
                            raise InvalidRequest(
                                "The multipart body is malformed: Unexpected eof in multipart/form-data.",
                                param="file",
                            )
                        if isinstance(part, UploadFile):
                            await part.seek(0)
                            fields[segment.name].append(part)
                        else:
                            fields[segment.name].append(part.decode(segment.charset or "utf-8"))
                        part, segment = bytearray(), None
                chunk = await async_next(stream, b"")
    except BaseException as error:
        if isinstance(part, UploadFile):
            await part.close()
        await close_files(fields)
        if isinstance(error, ParserLimitReached):
            raise InvalidRequest(
                f"The multipart form is over the parser's limits: at most {FORM_PART_LIMIT} parts, each with "
                "short headers. Send the 'file' and the few fields the route takes."
            ) from None
        if isinstance(error, ParserError):
            raise InvalidRequest(
                "The multipart body is malformed: Invalid multipart/form-data.", param="file"
            ) from None
        raise
    return fields


_EXTENDED_FILENAME = re.compile(r";\s*filename\*\s*=\s*([^;\s]+)", re.IGNORECASE)


def _extended_filename(segment: MultipartSegment) -> str | None:
    """A file's name given only as RFC 5987's ``filename*=UTF-8''...`` (old urllib3 named non-ASCII files so).

    RFC 7578 says not to send it in a form; a file sent so was taken for a text field.
    """
    found = _EXTENDED_FILENAME.search(segment.header("Content-Disposition", ""))
    if found is None:
        return None
    charset, _, encoded = email.utils.decode_rfc2231(found.group(1).strip('"'))
    try:
        return urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="replace") or None
    except LookupError:  # a charset Python does not know: the name's bytes as UTF-8
        return urllib.parse.unquote(encoded, errors="replace") or None


def _check_charset(segment: MultipartSegment) -> None:
    """Refuse, before its text is read, a field whose charset does not decode text in linear time."""
    if segment.charset is None:
        return
    try:
        name = codecs.lookup(segment.charset).name
    except LookupError:
        return  # said when the text is decoded: a charset this server does not know
    if name in SLOW_CHARSETS:
        raise InvalidRequest(
            f"The form field '{segment.name}' names the charset {segment.charset!r}, which is no charset for form "
            "text; send UTF-8.",
            param=segment.name or None,
            headers=UNREAD,
        )


def _too_much_text(segment: MultipartSegment | None) -> GatewayError:
    name = segment.name if segment is not None else ""
    if name == "file":  # the audio itself, sent as text: curl's -F file=<audio.wav
        return InvalidRequest(FILE_AS_TEXT, param="file", headers=UNREAD)
    return UploadTooLarge(
        f"The form's text fields hold over {TEXT_LIMIT // 2**20} MiB together (at '{name}'): text is held in "
        "memory; a prompt is a few hundred words.",
        param=name or None,
        headers=UNREAD,
    )


async def close_files(fields: Fields) -> None:
    """Close (and so delete) every file of a form."""
    for values in fields.values():
        for value in values:
            if isinstance(value, UploadFile):
                await value.close()
