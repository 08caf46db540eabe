"""Errors rendered once per route family: the catalogue's error, or anything else, to a response."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from compat import openai, reference
from compat.errors import BackendFailed, GatewayError, InvalidRequest, NoSuchRoute, UploadTooLarge
from gateway.disconnect import ClientGone
from gateway.http_metrics import answered_status, count_request
from gateway.intake import header_request_id, request_id_headers

log = logging.getLogger(__name__)

ExceptionHandler = Callable[[Request[Any, Any, Any], Exception], Response[bytes]]


def as_gateway_error(error: Exception) -> GatewayError:
    """The catalogue's error for any exception a handler let through."""
    if isinstance(error, GatewayError):
        return error
    if isinstance(error, RequestEntityTooLarge):
        return UploadTooLarge("The upload is larger than the server's limit.", param="file")
    if isinstance(error, HTTPException) and 400 <= error.status_code < 500:
        invalid = InvalidRequest(str(error.detail))
        invalid.headers = dict(error.headers or {})
        return invalid
    log.error("unexpected error", exc_info=error)
    return BackendFailed("The server failed unexpectedly; the error is in its log.")


def _headers(request: Request[Any, Any, Any], error: GatewayError) -> dict[str, str]:
    return {**error.headers, **request_id_headers(header_request_id(request))}


CLIENT_GONE_STATUS = 499  # nginx's "client closed request": nobody reads it, the metrics do


def log_gone(request: Request[Any, Any, Any]) -> None:
    """Log a request whose client left before its answer ended."""
    fields = {"request_id": header_request_id(request), "path": request.url.path}
    if (status := answered_status(request.scope)) is not None:  # the server's own answer ended it
        log.info("request ended by the server", extra={**fields, "status": status})
    else:
        log.info("client disconnected", extra=fields)


def _gone(request: Request[Any, Any, Any]) -> Response[bytes]:
    log_gone(request)
    return Response(b"", status_code=CLIENT_GONE_STATUS)


def reference_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """``{"error", "code", "request_id"}`` for the reference route."""
    if isinstance(exc, ClientGone):
        return _gone(request)
    error = as_gateway_error(exc)
    request_id = header_request_id(request)
    _log(request, error)
    return Response(
        reference.error_body(error, request_id),
        status_code=error.http_status,
        media_type="application/json",
        headers=_headers(request, error),
    )


def openai_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """``{"error": {"message", "type", "param", "code"}}`` for the OpenAI routes."""
    if isinstance(exc, ClientGone):
        return _gone(request)
    error = as_gateway_error(exc)
    _log(request, error)
    return Response(
        openai.error_body(error),
        status_code=error.http_status,
        media_type="application/json",
        headers=_headers(request, error),
    )


def _log(request: Request[Any, Any, Any], error: GatewayError) -> None:
    if error.logged:  # the pipeline's failure event already tells it, with the request's timings
        return
    log.info(
        "request failed",
        extra={
            "request_id": header_request_id(request),
            "path": request.url.path,
            "status": error.http_status,
            "error_code": error.code,
            "error": error.message,
        },
    )


def unrouted(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A path nothing serves (404) or a method it does not take (405), in the shape of the path's family."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    allowed = [m.strip() for m in (headers.get("allow") or headers.get("Allow") or "").split(",")]
    allowed = [m for m in allowed if m and m != "OPTIONS"]
    if status == 405 and allowed:
        message = f"{request.method} is not allowed on {request.url.path}; use {' or '.join(allowed)}."
    else:
        docs = request.app.openapi_config.path if request.app.openapi_config else "/docs"  # ROOT_PATH included
        message = f"Nothing is served at {request.url.path}; the routes are listed on the docs page ({docs})."
    error = NoSuchRoute(message, status=status, headers=headers)
    _count_unrouted(request, status)
    return by_family(request, error)


def by_family(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """An error in the shape of the path's family, where no route's own handlers took it.

    Routing's 404 and 405; the API-key guard on Litestar's automatic ``OPTIONS`` handler (a bare 500,
    not logged, before).
    """
    return reference_error(request, exc) if is_reference_path(request.url.path) else openai_error(request, exc)


def is_reference_path(path: str) -> bool:
    """Whether an error at ``path`` takes the reference route family's shape (else OpenAI's); any root path."""
    return "/v1/asr/" in path


UNROUTED_LABEL = "unrouted"  # one label for every path no route serves: a scanner's paths are not series


def _count_unrouted(request: Request[Any, Any, Any], status: int) -> None:
    """Count a request no route took (routing fails before the metrics middleware that counts the others)."""
    count_request(request.app.state.metrics, UNROUTED_LABEL, status, seconds=None)  # no start time is known


REFERENCE_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {Exception: reference_error}
OPENAI_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {Exception: openai_error}
# App-wide: what no route handled (routing's own 404 and 405), and the catalogue's errors raised outside one.
UNROUTED_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    NotFoundException: unrouted,
    MethodNotAllowedException: unrouted,
    GatewayError: by_family,
}
