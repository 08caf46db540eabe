"""``POST /v1/asr/transcribe/audio``: the reference service's route."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.response.base import ASGIResponse

from compat import reference
from compat.partial import warning_headers
from compat.reference import TRANSCRIBE_FIELDS, parse_transcribe_form
from gateway.disconnect import cancel_on_disconnect
from gateway.http_errors import REFERENCE_HANDLERS
from gateway.intake import header_request_id, receive_upload, request_id_headers
from gateway.openapi import error_responses, multipart_operation
from gateway.pipeline import Mode, Options
from gateway.routes import pipeline_of

log = logging.getLogger(__name__)


PATH = "/v1/asr/transcribe/audio"


@post(
    PATH,
    status_code=200,
    operation_id="transcribeAudio",
    summary="Transcribe an audio file (reference route)",
    description=(
        "Drop-in for the in-house service this gateway replaces: same fields, body and error codes. "
        "`full` sends the whole audio to the model at once; `chunked` cuts it at quiet points into pieces "
        "of at most CHUNK_SECONDS, transcribed in parallel. A 200 whose `warning.code` is ASR-6030 (also "
        "in the X-ASR-Warning header) misses the text of the pieces that failed."
    ),
    tags=["Reference"],
    operation_class=multipart_operation(TRANSCRIBE_FIELDS),
    responses={
        200: ResponseSpec(reference.TranscribeResponse, description="The transcript", generate_examples=False),
        **error_responses(reference.ErrorResponse, 400, 401, 413, 415, 422, 429, 500, 503),
    },
    exception_handlers=REFERENCE_HANDLERS,
)
async def transcribe_audio(request: Request[Any, Any, Any]) -> ASGIResponse:
    """Transcribe the uploaded file; the body is ``{"text", "language", "request_id"}``."""
    pipeline = pipeline_of(request)
    settings = pipeline.settings
    async with receive_upload(request, limit_mb=settings.max_upload_mb, request_id_field="request_id") as upload:
        request_id = header_request_id(request)  # the form's request_id, else X-Request-ID, else a new UUID
        form = parse_transcribe_form(upload.fields)
        if form.unknown_fields:
            log.info("unknown form fields ignored", extra={"request_id": request_id, "fields": form.unknown_fields})
        options = Options(
            mode=Mode(form.process_type or settings.default_process_type),
            request_id=request_id,
            language=form.language or settings.default_language_code,
            segment_times=False,  # the body is the text and its language
            route="reference",
            path=PATH,
        )
        pipeline.check(options)
        async with cancel_on_disconnect(request):
            transcript = await pipeline.transcribe(upload.file.file, options, name=upload.name)
    headers = {**request_id_headers(request_id), **warning_headers(transcript)}
    # the low-level response: the JSON is rendered already, and a Response would be turned into one (7 us)
    body = reference.render_transcribe(transcript, request_id)
    return ASGIResponse(body=body, media_type="application/json", headers=headers)


REFERENCE_ROUTES = [transcribe_audio]
