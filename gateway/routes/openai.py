"""OpenAI's audio API: ``POST /v1/audio/transcriptions`` and ``GET /v1/models``."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Stream

from compat import openai
from compat.errors import GatewayError, ModelNotFound
from compat.forms import quoted
from compat.openai import (
    TRANSCRIPTION_FIELDS,
    TRANSLATION_FIELDS,
    parse_transcription_form,
    parse_translation_form,
    render_transcription,
)
from compat.partial import warning_headers
from gateway import heartbeats
from gateway.disconnect import cancel_on_disconnect
from gateway.heartbeats import with_heartbeats
from gateway.http_errors import CLIENT_GONE_STATUS, OPENAI_HANDLERS, as_gateway_error, log_gone
from gateway.http_metrics import count_as
from gateway.intake import header_request_id, receive_upload, request_id_headers
from gateway.openapi import NoValidationOperation, error_responses, multipart_operation, stream_event_schema
from gateway.pipeline import (
    LONG_TRANSCRIPT_SECONDS,
    Event,
    Finished,
    Mode,
    Options,
    PieceDone,
    Pipeline,
    separator,
)
from gateway.routes import pipeline_of

STARTED = int(time.time())


def served_models(pipeline: Pipeline) -> list[str]:
    """The served model's id, then its aliases."""
    ids = [pipeline.backend.model_id]
    ids.extend(alias for alias in pipeline.settings.model_aliases if alias not in ids)
    return ids


TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
TRANSLATIONS_PATH = "/v1/audio/translations"
log = logging.getLogger(__name__)

# Litestar documents a union of bodies; its annotation asks for one type, so the union is typed Any.
TRANSCRIPT_BODY: Any = openai.TranscriptionVerbose | openai.TranscriptionJson


def _audio_responses(description: str) -> dict[int, ResponseSpec]:
    """What the audio routes answer: a transcript (json or verbose_json here; text formats beside), or an error."""
    return {
        200: ResponseSpec(TRANSCRIPT_BODY, description=description, generate_examples=False),
        **error_responses(openai.ErrorBody, 400, 401, 404, 413, 415, 422, 429, 500, 503),
    }


@post(
    TRANSCRIPTIONS_PATH,
    status_code=200,
    operation_id="createTranscription",
    summary="Transcribe audio into the input language (OpenAI)",
    description=(
        "OpenAI's transcription endpoint, as the official SDKs, n8n's OpenAI node and curl send it. "
        "`response_format` picks json (default), text, srt, vtt or verbose_json (segments with real "
        "times; `words` when `timestamp_granularities[]=word`). `stream=true` answers server-sent "
        'events. Errors: `{"error": {"message", "type", "param", "code"}}` with the ASR code in `code`.'
    ),
    tags=["OpenAI"],
    operation_class=multipart_operation(
        TRANSCRIPTION_FIELDS,
        extra_success_media={
            "text/plain": "response_format=text, srt or vtt: the bare transcript, or the subtitle file "
            "(text/plain for all three, as OpenAI sends them)",
            "text/event-stream": stream_event_schema(
                "stream=true: transcript.text.delta events as pieces finish, then transcript.text.done"
            ),
        },
    ),
    responses=_audio_responses("json: {text, usage}; verbose_json: with task, language, duration, segments, words"),
    exception_handlers=OPENAI_HANDLERS,
)
async def create_transcription(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
    """Transcribe the uploaded file in the format asked for."""
    return await _respond(request, pipeline_of(request), task="transcribe")


@post(
    TRANSLATIONS_PATH,
    status_code=200,
    operation_id="createTranslation",
    summary="Translate audio into English (OpenAI)",
    description=(
        "OpenAI's translation endpoint: the audio's speech, in English. Only where the backend can "
        "translate (a multilingual Whisper model); Whisper tiny.en and Qwen3-ASR cannot, and answer 400 "
        "in OpenAI's shape (ASR-6045, `param: model`)."
    ),
    tags=["OpenAI"],
    operation_class=multipart_operation(
        TRANSLATION_FIELDS,
        extra_success_media={"text/plain": "response_format=text, srt or vtt: the bare translation, or subtitles"},
    ),
    responses=_audio_responses("json: {text, usage}; verbose_json: with task, language, duration, segments"),
    exception_handlers=OPENAI_HANDLERS,
)
async def create_translation(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
    """Translate the uploaded file into English."""
    return await _respond(request, pipeline_of(request), task="translate")


async def _respond(request: Request[Any, Any, Any], pipeline: Pipeline, *, task: str) -> Response[bytes] | Stream:
    """The transcription and translation routes: intake, pipeline, render."""
    settings = pipeline.settings
    request_id = header_request_id(request)
    async with receive_upload(request, limit_mb=settings.max_upload_mb) as upload:
        form = (parse_translation_form if task == "translate" else parse_transcription_form)(upload.fields)
        if form.model is not None and form.model not in served_models(pipeline):
            raise ModelNotFound(
                f"The model {quoted(form.model)} does not exist; this server serves: "
                f"{', '.join(served_models(pipeline))}.",
                param="model",
            )
        if form.unknown_fields:
            log.info("unknown form fields ignored", extra={"request_id": request_id, "fields": form.unknown_fields})
        chunked = form.chunked if form.chunked is not None else settings.default_process_type == "chunked"
        options = Options(
            mode=Mode.CHUNKED if chunked else Mode.FULL,
            request_id=request_id,
            language=form.language or (settings.default_language_code if task == "transcribe" else None),
            prompt=form.prompt,
            temperature=form.temperature,
            word_timestamps=form.wants_words,
            segment_times=form.response_format.shows_times,
            task=task,
            route="openai",
            path=TRANSLATIONS_PATH if task == "translate" else TRANSCRIPTIONS_PATH,
        )
        pipeline.check(options)
        headers = request_id_headers(request_id)
        async with cancel_on_disconnect(request):
            if form.stream:
                events = pipeline.run(upload.file.file, options, name=upload.name)
                await anext(events)  # decoded and admitted: errors so far are still plain error responses
                return Stream(
                    _sse(events, request),
                    media_type="text/event-stream",
                    # nginx buffers a proxied response unless told not to: the events would come all at once
                    headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
                )
            transcript = await pipeline.transcribe(upload.file.file, options, name=upload.name)
    render = functools.partial(
        render_transcription,
        transcript,
        form.response_format,
        with_words=form.wants_words,
        with_segments=form.wants_segments,
        task=task,
    )
    rendered = render() if transcript.duration <= LONG_TRANSCRIPT_SECONDS else await asyncio.to_thread(render)
    headers.update(warning_headers(transcript))
    # Litestar adds "; charset=utf-8" to every text/* type itself (it doubled ours)
    media_type = rendered.media_type.split(";")[0] if rendered.media_type.startswith("text/") else rendered.media_type
    return Response(rendered.body, media_type=media_type, headers=headers)


HEARTBEAT = b": keep-alive\n\n"  # an SSE comment: clients skip it


async def _sse(events: AsyncIterator[Event], request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """Server-sent events: a text delta per finished piece, in order, then the done event.

    An error once the stream has begun is an error event (the 200 is sent), counted as the
    error it was; a client that leaves mid-stream is logged and counted as gone (499).
    """
    failed = functools.partial(count_as, request.scope)
    previous = ""  # the last piece's text: the deltas joined are the done event's text, separators and all
    try:
        async for event in with_heartbeats(events, heartbeats.EVERY_SECONDS):
            if event is None:  # a quiet while: a comment keeps proxies from closing the stream
                yield HEARTBEAT
            elif isinstance(event, PieceDone) and event.outcome.result is not None:
                text = event.outcome.result.text.strip()
                if text:
                    yield openai.text_delta_event(separator(previous, text) + text)
                    previous = text
            elif isinstance(event, Finished):
                yield openai.text_done_event(event.transcript)
    except asyncio.CancelledError:  # Litestar cancels the stream when it hears the client leave
        log_gone(request)
        failed(CLIENT_GONE_STATUS)
        raise
    except GatewayError as error:
        failed(error.http_status)
        yield openai.error_event(error)
    except Exception as error:  # noqa: BLE001 - the stream has begun: report in-band, never drop the connection silently
        unexpected = as_gateway_error(error)
        failed(unexpected.http_status)
        yield openai.error_event(unexpected)


@get(
    "/v1/models",
    operation_id="listModels",
    summary="List the served model and its aliases (OpenAI)",
    tags=["OpenAI"],
    responses=error_responses(openai.ErrorBody, 401),
    exception_handlers=OPENAI_HANDLERS,
)
async def list_models(pipeline: Pipeline) -> openai.ModelList:
    """OpenAI's model list."""
    return openai.ModelList(
        data=[openai.ModelCard(id=i, created=STARTED, owned_by="asr-gateway") for i in served_models(pipeline)]
    )


@get(
    "/v1/models/{model_id:path}",  # ids hold slashes (Qwen/Qwen3-ASR-1.7B); the SDK sends them as %2F
    operation_id="retrieveModel",
    operation_class=NoValidationOperation,
    summary="Describe one model (OpenAI)",
    tags=["OpenAI"],
    responses=error_responses(openai.ErrorBody, 401, 404),
    exception_handlers=OPENAI_HANDLERS,
)
async def retrieve_model(model_id: str, pipeline: Pipeline) -> openai.ModelCard:
    """One model, or 404 in OpenAI's shape."""
    model_id = model_id.removeprefix("/")
    if model_id not in served_models(pipeline):
        raise ModelNotFound(f"The model {quoted(model_id)} does not exist.", param="model")
    return openai.ModelCard(id=model_id, created=STARTED, owned_by="asr-gateway")


OPENAI_ROUTES = [create_transcription, create_translation, list_models, retrieve_model]
