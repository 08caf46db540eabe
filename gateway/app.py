"""The application factory: one ``create_app(settings)`` builds everything."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from prometheus_client import start_http_server

from gateway import __version__
from gateway.auth import SCHEME, api_key_guard, security_components
from gateway.backends.base import Backend
from gateway.backends.factory import build_backend, pieces_in_flight
from gateway.cors import cors_config
from gateway.docs_page import swagger_assets, swagger_plugin
from gateway.http_errors import UNROUTED_HANDLERS
from gateway.http_metrics import metrics_middleware, metrics_route
from gateway.linger import lingering_close
from gateway.metrics import Metrics
from gateway.pipeline import Mode, Pipeline
from gateway.pipeline.admission import Admission, ModeLimit
from gateway.routes.health import healthcheck, healthcheck_head
from gateway.routes.openai import OPENAI_ROUTES
from gateway.routes.reference import REFERENCE_ROUTES
from gateway.settings import Settings, StartupError

log = logging.getLogger(__name__)

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
    metrics = Metrics(settings.metrics_prefix)
    metrics.watch_backend(engine.load)
    admission = Admission(
        {
            Mode.FULL: ModeLimit(Mode.FULL, settings.max_concurrent_full, settings.queue_timeout_seconds, metrics),
            Mode.CHUNKED: ModeLimit(
                Mode.CHUNKED, settings.max_concurrent_chunked, settings.queue_timeout_seconds, metrics
            ),
        }
    )
    pipeline = Pipeline(
        settings,
        engine,
        admission=admission,
        metrics=metrics,
        max_pieces_in_flight=pieces_in_flight(settings),
    )

    @asynccontextmanager
    async def run_backend(_: Litestar) -> AsyncIterator[None]:
        try:
            await engine.start()
            _check_default_language(settings, engine)
        except BaseException as error:
            await engine.close()  # what it opened before failing (a media folder, a child, clients)
            if isinstance(error, StartupError):
                raise reported(error) from None
            raise
        try:
            yield
        finally:
            pipeline.close()
            await engine.close()

    @asynccontextmanager
    async def serve_metrics(_: Litestar) -> AsyncIterator[None]:
        if not settings.metrics_port:
            yield
            return
        try:
            server, thread = start_http_server(settings.metrics_port, addr=settings.host, registry=metrics.registry)
        except OSError as error:
            raise reported(
                StartupError(
                    f"METRICS_PORT={settings.metrics_port}: cannot listen on {settings.host}:{settings.metrics_port} "
                    f"({error.strerror}). Choose a free port, or 0 to serve /metrics on the API port."
                )
            ) from None
        log.info("metrics served", extra={"port": settings.metrics_port})
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    guarded = {"guards": [api_key_guard(settings.api_keys)], "security": [{SCHEME: []}]} if settings.api_keys else {}
    transcription = Router(path="/", route_handlers=[*REFERENCE_ROUTES, *OPENAI_ROUTES], **guarded)  # type: ignore[arg-type]
    open_routes: list[object] = [healthcheck, healthcheck_head, swagger_assets()]
    if not settings.metrics_port:
        open_routes.append(metrics_route(metrics))
    api = Router(path=settings.root_path or "/", route_handlers=[transcription, *open_routes])  # type: ignore[list-item]
    app = Litestar(
        route_handlers=[api],
        # One dependency, the settings reached through it: Litestar resolves two independent
        # dependencies in an anyio task group of two tasks, on every request (about 0.1 ms; profiled).
        dependencies={"pipeline": Provide(lambda: pipeline, use_cache=True, sync_to_thread=False)},
        # the linger outside the metrics: a request's latency ends with its answer, not with the linger
        middleware=[lingering_close, metrics_middleware(metrics, settings.root_path)],
        lifespan=[serve_metrics, run_backend],
        request_max_body_size=settings.max_upload_bytes,
        cors_config=cors_config(settings.cors_allow_origins),
        openapi_config=OpenAPIConfig(
            title="ASR Gateway",
            version=__version__,
            description=DESCRIPTION,
            path=f"{settings.root_path}/docs",
            render_plugins=[swagger_plugin(settings.root_path)],
            components=security_components() if settings.api_keys else [],
        ),
        exception_handlers=UNROUTED_HANDLERS,
        logging_config=None,  # logging is configured once, by gateway.logs
        debug=False,
    )
    app.state.metrics = metrics
    app.state.pipeline = pipeline
    return app


def _check_default_language(settings: Settings, engine: Backend) -> None:
    """A DEFAULT_LANGUAGE the model cannot do would fail every request that names none: refuse to start."""
    code, known = settings.default_language_code, engine.capabilities.languages
    if code is not None and known is not None and code not in known:
        raise StartupError(
            f"DEFAULT_LANGUAGE={settings.default_language}: the model '{engine.model_id}' cannot transcribe it; "
            f"it knows: {', '.join(sorted(known))}."
        )


def reported(error: StartupError) -> StartupError:
    """Log why the server cannot start, as one line ahead of the framework's traceback."""
    log.error("cannot start: %s", error)
    return error
