"""A multipart body read as the gateway needs it: files to spooled temporary files, text fields bounded.

Litestar's own form reader keeps a text field's bytes in memory whatever their size, up to the
upload limit (500 MB by default): one request with a 200 MB ``prompt`` took 0.3 GiB more server
memory (measured), and a few at once could take the server down. This is Litestar's reader (the
same parser, the same ``UploadFile``: in memory up to 1 MiB, then an unnamed file on disk) with
one bound more: a field that is not a file holds at most ``TEXT_FIELD_LIMIT`` bytes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.utils.compat import async_next
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser  # type: ignore[import-untyped]

from compat.errors import InvalidRequest, UploadTooLarge

FORM_PART_LIMIT = 1000  # Litestar's multipart_form_part_limit (its default)
TEXT_FIELD_LIMIT = 1 << 20  # a prompt is a few hundred words; anything past a mebibyte is no form field of ours

Fields = dict[str, list[Any]]  # each value a str or an UploadFile


async def read_multipart(request: Request[Any, Any, Any]) -> Fields:
    """The form's parts by name, in order: text as ``str``, files as ``UploadFile`` (the caller closes them).

    Raises:
        InvalidRequest: no boundary, a malformed body, or more than ``FORM_PART_LIMIT`` parts.
        UploadTooLarge: a text field over ``TEXT_FIELD_LIMIT``.
        UnicodeDecodeError, LookupError: a text field not in its charset, or an unknown charset.
        litestar.exceptions.HTTPException: from the body's stream (over the upload limit, client gone).
    """
    boundary = request.content_type[1].get("boundary")
    if not boundary:
        raise InvalidRequest(
            "The multipart body is malformed: multipart boundary missing in Content-Type.", param="file"
        )
    fields: defaultdict[str, list[Any]] = defaultdict(list)
    part: UploadFile | bytearray = bytearray()
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
                        if segment.filename:
                            part = UploadFile(
                                content_type=segment.content_type or "text/plain",
                                filename=segment.filename,
                                headers=dict(segment.headerlist),
                            )
                    elif event:
                        if isinstance(part, UploadFile):
                            await part.write(event)
                        elif len(part) + len(event) > TEXT_FIELD_LIMIT:
                            name = segment.name if segment is not None else ""
                            raise UploadTooLarge(
                                f"The form field '{name}' is over {TEXT_FIELD_LIMIT // 1024} KiB: text fields are "
                                "held in memory. Send the audio as the 'file' part (with a filename).",
                                param=name or None,
                            )
                        else:
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


async def close_files(fields: Fields) -> None:
    """Close (and so delete) every file of a form."""
    for values in fields.values():
        for value in values:
            if isinstance(value, UploadFile):
                await value.close()
