"""Intake: a multipart upload turned into one audio file and the request's text fields.

Litestar streams the body through its multipart parser into a spooled temporary
file (in memory up to 1 MiB, then an unnamed file on disk that the OS deletes when
it is closed), enforcing the upload limit as the bytes arrive: with a
Content-Length over the limit nothing is read at all.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from compat.errors import InvalidRequest, UploadTooLarge

REQUEST_ID_HEADER = "x-request-id"


@dataclass(frozen=True)
class Upload:
    """The uploaded audio and the form's text fields."""

    file: UploadFile
    fields: dict[str, list[str]]

    @property
    def name(self) -> str:
        """The file name the client gave, for messages."""
        return self.file.filename or "file"


def header_request_id(request: Request[Any, Any, Any]) -> str:
    """The client's X-Request-ID, else a new UUID; remembered on the request."""
    known = request.scope.get("state", {}).get("request_id")
    if isinstance(known, str):
        return known
    value = request.headers.get(REQUEST_ID_HEADER, "").strip()[:200] or str(uuid.uuid4())
    request.scope.setdefault("state", {})["request_id"] = value
    return value


def set_request_id(request: Request[Any, Any, Any], value: str) -> None:
    """Use ``value`` as the request's trace id from now on (errors included)."""
    request.scope.setdefault("state", {})["request_id"] = value


@asynccontextmanager
async def receive_upload(request: Request[Any, Any, Any], *, limit_mb: float) -> AsyncIterator[Upload]:
    """Read the multipart form; every uploaded file is closed (and so deleted) on exit.

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
    try:
        form = await request.form()
    except RequestEntityTooLarge:
        raise UploadTooLarge(f"The upload is larger than the limit of {limit_mb:g} MB.", param="file") from None
    except ClientException as error:
        raise InvalidRequest(f"The multipart body is malformed: {error.detail}.", param="file") from None
    uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    try:
        fields: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key].append(value)
        files = [value for key, value in form.multi_items() if key == "file" and isinstance(value, UploadFile)]
        if not files:
            if "file" in fields:
                raise InvalidRequest("'file' must be a file upload, not a text field.", param="file")
            raise InvalidRequest(
                "'file' is required: send the audio as a multipart file field named 'file'.", param="file"
            )
        if len(files) > 1:
            raise InvalidRequest("Send exactly one 'file'.", param="file")
        yield Upload(file=files[0], fields=dict(fields))
    finally:
        for upload in uploads:
            await upload.close()
