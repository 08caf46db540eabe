"""The application factory: one ``create_app(settings)`` builds everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from gateway import __version__
from gateway.backends.base import Backend
from gateway.backends.factory import build_backend, pieces_in_flight
from gateway.pipeline import Pipeline
from gateway.routes.health import healthcheck
from gateway.routes.openai import openai_router
from gateway.routes.reference import reference_router
from gateway.settings import Settings

DESCRIPTION = """\
An OpenAI-compatible speech-to-text gateway. Two route families share one pipeline:
the reference service's `POST /v1/asr/transcribe/audio` and OpenAI's
`POST /v1/audio/transcriptions`. Try either below: **Try it out**, choose a file, **Execute**.
"""


def create_app(settings: Settings, *, backend: Backend | None = None) -> Litestar:
    """Build the gateway.

    Args:
        settings: every knob (see ``gateway.settings``).
        backend: an engine to use instead of the one the settings name (tests inject faults this way).
    """
    engine = backend or build_backend(settings)
    pipeline = Pipeline(settings, engine, max_pieces_in_flight=pieces_in_flight(settings))

    @asynccontextmanager
    async def run_backend(_: Litestar) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.close()

    api = Router(
        path=settings.root_path or "/",
        route_handlers=[reference_router, openai_router, healthcheck],
    )
    return Litestar(
        route_handlers=[api],
        dependencies={
            "pipeline": Provide(lambda: pipeline, use_cache=True, sync_to_thread=False),
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
        },
        lifespan=[run_backend],
        request_max_body_size=settings.max_upload_bytes,
        openapi_config=OpenAPIConfig(
            title="ASR Gateway",
            version=__version__,
            description=DESCRIPTION,
            path=f"{settings.root_path}/docs",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        logging_config=None,  # logging is configured once, by gateway.logs
        debug=False,
    )
