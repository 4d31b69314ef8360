"""HTML pages of the demo server, rendered from packaged Jinja2 templates (no database, no HTTP framework)."""

from __future__ import annotations

import functools
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""Directory served at ``/static``: ``app.js``, ``app.css`` and the pinned ``vendor/`` assets."""

BASE_MAP_TILES = "https://tile.openstreetmap.org"
"""The one origin the page loads anything from besides gridlink: the OpenStreetMap base map's tile images."""

PAGE_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",             # app.js and the pinned Leaflet; no inline script, no eval
    "style-src 'self'",
    f"img-src 'self' data: {BASE_MAP_TILES}",
    "connect-src 'self'",            # the page's fetch() calls go to gridlink's own API
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
"""The Content-Security-Policy of the pages rendered here: everything from gridlink itself (vendor files are
pinned under ``/static``), base-map tiles from ``BASE_MAP_TILES``, and no framing by other sites."""

DEFAULT_API_BASE = "/api/v1"
DEFAULT_CENTER: tuple[float, float] = (31.22, 120.55)
DEFAULT_ZOOM = 10


@functools.cache
def _environment() -> Environment:
    """Return the shared Jinja2 environment for the ``web/templates`` package directory.

    Returns:
        An environment that autoescapes every ``.html`` template (and strings rendered from them).
    """
    return Environment(
        loader=PackageLoader("web", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_index(api_base: str = DEFAULT_API_BASE, center: tuple[float, float] = DEFAULT_CENTER,
                 zoom: int = DEFAULT_ZOOM) -> str:
    """Render the full-screen demo map page served at ``/``.

    Args:
        api_base: URL prefix of the JSON API the page calls (``{api_base}/areas``, ``/stats``, ``/locate``).
        center: Initial map centre as ``(lat, lon)`` in degrees (WGS 84).
        zoom: Initial Leaflet zoom level.

    Returns:
        The HTML document; every value is escaped and reaches the script through ``data-`` attributes.
    """
    lat, lon = (float(v) for v in center)
    return _environment().get_template("index.html").render(
        api_base=api_base, center=[lat, lon], zoom=int(zoom))


SHELL_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",             # ES modules under /static, MapLibre's module worker included; no eval
    "worker-src 'self' blob:",       # MapLibre's worker (a module next to maplibre-gl.mjs)
    "style-src 'self'",
    f"img-src 'self' data: blob: {BASE_MAP_TILES}",
    f"connect-src 'self' {BASE_MAP_TILES}",  # MapLibre fetches raster base-map tiles with fetch()
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
"""The Content-Security-Policy of the pages built on the shared shell (``render_page``): as ``PAGE_CSP``, plus
MapLibre's worker, the blob: images it decodes tiles into, and fetch() of the optional online base map."""

CONSOLE_STATIC = "/static/console"


def render_page(template: str, *, page: str, title_key: str, title: str, styles: tuple[str, ...] = (),
                scripts: tuple[str, ...] = (), config: dict[str, str] | None = None) -> str:
    """Render a page built on the shared shell (``templates/_base.html``: top bar, navigation, login dialog).

    Args:
        template: The page's template (it extends ``_base.html``).
        page: The page's name, in ``<body data-page>``.
        title_key: The i18n key of the page title (``common/i18n.js`` or the page's own strings).
        title: The Chinese title, shown until the script has run.
        styles: Style sheets after ``common/common.css``.
        scripts: ES modules the page runs.
        config: Values for the scripts, rendered (escaped) as ``data-`` attributes of ``<body>``.

    Returns:
        The HTML document.
    """
    return _environment().get_template(template).render(
        page=page, title_key=title_key, title=title, styles=styles, scripts=scripts, config=config or {})


def render_console() -> str:
    """Render the dispatcher console served at ``/console`` (and ``/``): MapLibre on ``/tiles``, case list,
    inbox, case details; its script is ``static/console/console.js``."""
    return render_page(
        "console.html", page="console", title_key="consoleTitle", title="指挥台 · gridlink 网格化联动指挥",
        styles=("/static/vendor/maplibre-gl/maplibre-gl.css", f"{CONSOLE_STATIC}/console.css"),
        scripts=(f"{CONSOLE_STATIC}/console.js",),
        config={"api-base": DEFAULT_API_BASE, "center": f"{DEFAULT_CENTER[1]},{DEFAULT_CENTER[0]}",
                "zoom": str(DEFAULT_ZOOM), "base-map": BASE_MAP_TILES})


REPORT_STATIC = "/static/report"


def render_report() -> str:
    """Render the inspector's phone page served at ``/report`` (issue 20 item 5): locate, category, photos,
    an outgoing queue in IndexedDB sent with idempotency keys, own recent reports; ``static/report/report.js``."""
    return render_page(
        "report.html", page="report", title_key="reportTitle", title="上报 · gridlink 网格化联动指挥",
        styles=(f"{REPORT_STATIC}/report.css",), scripts=(f"{REPORT_STATIC}/report.js",),
        config={"api-base": DEFAULT_API_BASE, "built-pages": "/report"})


def report_worker() -> str:
    """The report page's service worker (``static/report/sw.js``), served at ``/report-sw.js`` so that its scope
    may be ``/report`` (a worker controls only paths under its own script's folder)."""
    return (STATIC_DIR / "report" / "sw.js").read_text(encoding="utf-8")
