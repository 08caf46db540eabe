"""``GET /healthcheck`` (and ``HEAD``): whether the backend answers."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, get, head

from compat.errors import BackendDown
from gateway.pipeline import Pipeline

log = logging.getLogger(__name__)


@get(
    "/healthcheck",
    operation_id="healthcheck",
    summary="Whether the backend answers",
    description='200 `{"status": "ok"}` when the backend answers, else 500 `{"detail": "service is not available"}`.',
    tags=["Health"],
)
async def healthcheck(request: Request[Any, Any, Any], pipeline: Pipeline) -> Response[dict[str, str]]:
    """The reference service's health check; a change of answer is logged (ASR-6000 when it fails)."""
    if await _backend_answers(request, pipeline):
        return Response({"status": "ok"})
    return Response({"detail": "service is not available"}, status_code=500)


@head("/healthcheck", include_in_schema=False)
async def healthcheck_head(request: Request[Any, Any, Any], pipeline: Pipeline) -> Response[None]:
    """GET's status without its body: uptime monitors (UptimeRobot's default) probe with HEAD."""
    return Response(None, status_code=200 if await _backend_answers(request, pipeline) else 500)


async def _backend_answers(request: Request[Any, Any, Any], pipeline: Pipeline) -> bool:
    healthy = await pipeline.backend.healthy()
    if healthy != request.app.state.get("healthy", True):  # probes come every few seconds: log changes only
        request.app.state["healthy"] = healthy
        if healthy:
            log.info("healthcheck passes again", extra={"backend": pipeline.backend.model_id})
        else:
            log.warning(
                "healthcheck failed: the backend does not answer",
                extra={"error_code": BackendDown.code, "backend": pipeline.backend.model_id},
            )
    return healthy
