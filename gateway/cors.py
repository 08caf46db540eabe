"""Cross-origin access: which web pages may call the API from a browser (``CORS_ALLOW_ORIGINS``).

Off by default. A browser app (the OpenAI JavaScript SDK with ``dangerouslyAllowBrowser``)
sends ``Authorization`` and the SDK's own headers, so its requests are preflighted: any request
header is allowed, and the headers a client acts on are readable.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from compat.partial import WARNING_HEADER
from gateway.intake import REQUEST_ID_HEADER

# what a client reads besides the body: its trace id, when to retry a 429, a partial result
EXPOSED_HEADERS = [REQUEST_ID_HEADER, "retry-after", WARNING_HEADER]


def cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """Litestar's CORS settings for ``origins``; None (no CORS headers at all) when there are none."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
