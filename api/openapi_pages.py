"""The REST API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on an intranet they stay blank (issue 24). Here
the same pages are built by FastAPI's ``get_swagger_ui_html`` / ``get_redoc_html`` with the asset URLs of the
pinned copies in ``web/static/vendor`` (served at ``/static/vendor``; versions, licences and checksums in
``web/static/vendor/README.md``). ReDoc's Google Fonts link is left out: the page falls back to the system
fonts. Swagger UI's OAuth2 redirect page is served too, so its Authorize button works with the password flow
(api/openapi_document.py declares the security schemes).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

DOCS = "/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
REDOC = "/redoc"
VENDOR = "/static/vendor"
DOCS_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",  # FastAPI's pages start the viewer in an inline script
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",  # nothing from elsewhere: ReDoc's footer logo (cdn.redoc.ly) is not even asked for
    "connect-src 'self'",
    "worker-src 'self' blob:",  # ReDoc's search index
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
"""The pages' own Content-Security-Policy (api/middleware.py adds it only where a reply has none): every
script, stylesheet, image and request from gridlink itself."""


def _own_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def install(app: FastAPI) -> None:
    """Add ``/docs``, its OAuth2 redirect page and ``/redoc`` to ``app`` (created with ``docs_url=None`` and
    ``redoc_url=None``), every asset from ``/static/vendor``."""

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _own_policy(get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"), title=f"{app.title} — API",
            swagger_js_url=f"{root}{VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{VENDOR}/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT,
            swagger_ui_parameters={"persistAuthorization": False, "displayRequestDuration": True}))

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _own_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _own_policy(get_redoc_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"), title=f"{app.title} — API",
            redoc_js_url=f"{root}{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{VENDOR}/swagger-ui/favicon-32x32.png", with_google_fonts=False))
