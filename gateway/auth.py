"""Optional API keys: ``Authorization: Bearer <key>`` on the transcription routes when ``API_KEYS`` is set.

Off by default, as in the reference service. Health, metrics and the docs stay open;
the docs page gets an Authorize button (a bearer security scheme) so a person can
try the routes with a key.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Guard

from compat.errors import Unauthorized

SCHEME = "BearerAuth"


def api_key_guard(keys: tuple[str, ...]) -> Guard:
    """A guard that admits requests bearing one of ``keys``."""
    accepted = [key.encode() for key in keys]

    # async: Litestar runs a plain function guard in a worker thread, a thread hop on every request
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "An API key is required: send 'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        given = token.strip().encode()
        # compare against every key in constant time: no timing hint about which prefix matched
        if not any(hmac.compare_digest(given, key) for key in accepted):
            raise Unauthorized("The API key is not valid.", headers={"WWW-Authenticate": "Bearer"})

    return guard


def security_components() -> Components:
    """The bearer scheme shown by ``/docs``."""
    return Components(security_schemes={SCHEME: SecurityScheme(type="http", scheme="bearer")})
