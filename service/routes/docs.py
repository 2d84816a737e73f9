"""The API docs, served with no third-party assets, and the Content-Security-Policy of every page.

Swagger UI's files come from the ``swagger-ui-bundle`` package, mounted at ``/static/swagger``, so
``/docs`` renders without internet access (FastAPI's default loads them from a CDN). Every HTML
page sends ``PAGE_CSP`` or, for ``/docs`` (which needs Swagger's inline start-up script),
``DOCS_CSP``: nothing may be loaded from another origin, framed, or posted elsewhere.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["DOCS_CSP", "PAGE_CSP", "STATIC", "assets", "router"]

STATIC = "/static/swagger"
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


def assets() -> StaticFiles:
    """Return the app serving Swagger UI's files from the installed package."""
    return StaticFiles(directory=swagger_ui_path)


@router.get("/docs")
async def docs() -> HTMLResponse:
    """Render Swagger UI over /openapi.json from local assets."""
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="orderlift API",
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
