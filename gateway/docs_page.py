"""The Swagger page at ``/docs``, served with its own assets: it works on a machine with no internet.

Litestar's Swagger plugin loads Swagger UI (and its page icon) from a CDN by default; the gateway
serves the files of the ``swagger-ui-py`` package (Swagger UI 5.x, which reads OpenAPI 3.1) instead,
so the page makes no request off the machine.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

ASSETS = Path(swagger_ui.__file__).parent / "static"


def swagger_plugin(root_path: str) -> SwaggerRenderPlugin:
    """Swagger UI pointed at the gateway's own copy of its assets."""
    base = f"{root_path}/docs/assets"
    return SwaggerRenderPlugin(
        js_url=f"{base}/swagger-ui-bundle.js",
        css_url=f"{base}/swagger-ui.css",
        standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
        # Litestar's default icon is on a CDN: the page would make its one request off the machine for it
        favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
    )


def swagger_assets() -> Router:
    """The Swagger UI files, under ``/docs/assets`` (open, like the page)."""
    return create_static_files_router(
        path="/docs/assets", directories=[ASSETS], include_in_schema=False, name="swagger-assets"
    )
