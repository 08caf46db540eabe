"""``GET /healthcheck``: whether the backend answers."""

from __future__ import annotations

from litestar import Response, get

from gateway.pipeline import Pipeline


@get(
    "/healthcheck",
    operation_id="healthcheck",
    summary="Whether the backend answers",
    description='200 `{"status": "ok"}` when the backend answers, else 500 `{"detail": "service is not available"}`.',
    tags=["Health"],
)
async def healthcheck(pipeline: Pipeline) -> Response[dict[str, str]]:
    """The reference service's health check."""
    if await pipeline.backend.healthy():
        return Response({"status": "ok"})
    return Response({"detail": "service is not available"}, status_code=500)
