"""Request metrics for every route (latency, counts, errors) and the /metrics exposition."""

from __future__ import annotations

import time
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.metrics import Metrics

# In the scope's state: the status a client was answered with where the app's response does not say it.
ANSWERED_STATUS = "asr_gateway.answered_status"


def count_as(scope: Scope, status: int) -> None:
    """Count the request as answered with ``status``, where its response does not say so.

    A stream's error event, sent after its 200 began it; the server's 408 to a client that stopped
    sending, which the app sees only as a disconnect.
    """
    scope.setdefault("state", {})[ANSWERED_STATUS] = status


def answered_status(scope: Scope) -> int | None:
    """The status ``count_as`` gave the request, if any."""
    status: int | None = scope.get("state", {}).get(ANSWERED_STATUS)
    return status


def count_request(metrics: Metrics, path: str, status: int, *, seconds: float | None) -> None:
    """One answered request in the request metrics: its latency (when known), and its status when an error."""
    if seconds is not None:
        metrics.latency.labels(path=path).observe(seconds)
    metrics.requests.labels(path=path, status="all").inc()
    if status >= 400:
        metrics.requests.labels(path=path, status="error").inc()
        metrics.errors.labels(path=path, status_code=str(status)).inc()


def metrics_middleware(metrics: Metrics, root_path: str = "") -> Any:
    """An ASGI middleware factory counting every routed HTTP request under its path template.

    The template is labelled without ``ROOT_PATH``, as the pipeline's own metrics label their
    route, so one dashboard reads every deployment.
    """

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            path = scope.get("path_template") or scope["path"]
            if root_path and path.startswith(root_path + "/"):
                path = path[len(root_path) :]
            started = time.perf_counter()
            status = 500

            async def capture(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                status = answered_status(scope) or status
                count_request(metrics, path, status, seconds=time.perf_counter() - started)

        return middleware

    return factory


# Litestar adds "; charset=utf-8" to a text/* type itself: Prometheus' own would be there twice, which
# strict parsers (Go's mime package, so Prometheus' scraper) refuse as a repeated parameter.
EXPOSITION_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")


def metrics_route(metrics: Metrics) -> HTTPRouteHandler:
    """``GET /metrics`` on the API port (when ``METRICS_PORT=0``)."""

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def exposition() -> Response[bytes]:
        return Response(generate_latest(metrics.registry), media_type=EXPOSITION_TYPE)

    return exposition
