"""HTML pages of gridlink, rendered from packaged Jinja2 templates (no database, no HTTP framework)."""

from __future__ import annotations

import functools
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""Directory served at ``/static``: ``common/`` (the shared shell), one folder per page, pinned ``vendor/``."""

BASE_MAP_TILES = "https://tile.openstreetmap.org"
"""The one origin a page loads anything from besides gridlink: the optional OpenStreetMap base map's tiles."""

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


PAGE_CSP = "; ".join((
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
"""The Content-Security-Policy of the pages (``render_page``): everything from gridlink itself (vendor files are
pinned under ``/static``; no inline script, no eval), MapLibre's worker and the blob: images it decodes tiles
into, the optional online base map's tiles (``BASE_MAP_TILES``, fetched by MapLibre), no framing."""

ASSET_CSP = "; ".join(("default-src 'none'", f"connect-src 'self' {BASE_MAP_TILES}", "frame-ancestors 'none'"))
"""The Content-Security-Policy of the files under ``/static``: like any non-page reply they load nothing
(``default-src 'none'``), except that a script run as a worker — MapLibre's, which obeys the policy of its own
reply — may fetch gridlink's tiles and the optional online base map's."""

MAPLIBRE_CSS = "/static/vendor/maplibre-gl/maplibre-gl.css"
MAP_CONFIG = {"api-base": DEFAULT_API_BASE, "center": f"{DEFAULT_CENTER[1]},{DEFAULT_CENTER[0]}",
              "zoom": str(DEFAULT_ZOOM), "base-map": BASE_MAP_TILES}
"""What every page with the map (the console's ``map.js``) is configured with: the API, where the map opens, the
optional online base map."""

CONSOLE_STATIC = "/static/console"


def render_page(template: str, *, page: str, title_key: str, title: str, styles: tuple[str, ...] = (),
                scripts: tuple[str, ...] = (), config: dict[str, str] | None = None,
                preloads: tuple[str, ...] = ()) -> str:
    """Render a page built on the shared shell (``templates/_base.html``: top bar, navigation, login dialog).

    Args:
        template: The page's template (it extends ``_base.html``).
        page: The page's name, in ``<body data-page>``.
        title_key: The i18n key of the page title (``common/i18n.js`` or the page's own strings).
        title: The Chinese title, shown until the script has run.
        styles: Style sheets after ``common/common.css``.
        scripts: ES modules the page runs.
        config: Values for the scripts, rendered (escaped) as ``data-`` attributes of ``<body>``.
        preloads: ES modules the browser fetches at once (``modulepreload``), before a script imports them.

    Returns:
        The HTML document.
    """
    return _environment().get_template(template).render(
        page=page, title_key=title_key, title=title, styles=styles, scripts=scripts, config=config or {},
        preloads=preloads)


def render_console() -> str:
    """Render the dispatcher console, served at ``/console`` and as the landing page ``/``: MapLibre on
    ``/tiles``, case list, inbox, case details; its script is ``static/console/console.js``."""
    return render_page(
        "console.html", page="console", title_key="consoleTitle", title="指挥台 · gridlink 网格化联动指挥",
        styles=(MAPLIBRE_CSS, f"{CONSOLE_STATIC}/console.css"),
        scripts=(f"{CONSOLE_STATIC}/console.js",),
        preloads=("/static/vendor/maplibre-gl/maplibre-gl.mjs",),  # imported late (console.js), fetched early
        config=MAP_CONFIG)


REGISTRY_STATIC = "/static/registry"


def render_registry() -> str:
    """Render the asset owners' registry served at ``/registry`` (issue 21 item 1): the table of components with
    filters and keyset pages, the map, the component with its history and edits, survey import and export;
    ``static/registry/registry.js``."""
    return render_page(
        "registry.html", page="registry", title_key="registryTitle", title="部件台账 · gridlink 网格化联动指挥",
        styles=(MAPLIBRE_CSS, f"{REGISTRY_STATIC}/registry.css"),
        scripts=(f"{REGISTRY_STATIC}/registry.js",),
        config=MAP_CONFIG)


REPORT_STATIC = "/static/report"


def render_report() -> str:
    """Render the inspector's phone page served at ``/report`` (issue 20 item 5): locate, category, photos,
    an outgoing queue in IndexedDB sent with idempotency keys, own recent reports; ``static/report/report.js``."""
    return render_page(
        "report.html", page="report", title_key="reportTitle", title="上报 · gridlink 网格化联动指挥",
        styles=(f"{REPORT_STATIC}/report.css",), scripts=(f"{REPORT_STATIC}/report.js",),
        config={"api-base": DEFAULT_API_BASE, "built-pages": "/report"})


PLANNING_STATIC = "/static/planning"


def render_planning() -> str:
    """Render the planner's grid editor served at ``/planning`` (issue 21 item 2): pick a level and an area,
    draw boundary moves and splits on the map, edit through forms, preview, commit, roll back, browse a grid's
    versions and any past date's grids, import a grid file; ``static/planning/planning.js``."""
    return render_page(
        "planning.html", page="planning", title_key="planningTitle", title="网格规划 · gridlink 网格化联动指挥",
        styles=(MAPLIBRE_CSS, f"{PLANNING_STATIC}/planning.css"),
        scripts=(f"{PLANNING_STATIC}/planning.js",),
        config=MAP_CONFIG)


DASHBOARD_STATIC = "/static/dashboard"


def render_dashboard() -> str:
    """Render the evaluation dashboard served at ``/dashboard`` (issue 21 item 3): period and level, totals, the
    721 split, the ranking with grades, trends by month, hot spots and a heat map, all from ``GET /api/v1/kpi``;
    its script is ``static/dashboard/dashboard.js`` (the map is the console's ``map.js``)."""
    return render_page(
        "dashboard.html", page="dashboard", title_key="dashboardTitle", title="考核看板 · gridlink 网格化联动指挥",
        styles=(MAPLIBRE_CSS, f"{DASHBOARD_STATIC}/dashboard.css"),
        scripts=(f"{DASHBOARD_STATIC}/dashboard.js",),
        config=MAP_CONFIG)


def report_worker() -> str:
    """The report page's service worker (``static/report/sw.js``), served at ``/report-sw.js`` so that its scope
    may be ``/report`` (a worker controls only paths under its own script's folder)."""
    return (STATIC_DIR / "report" / "sw.js").read_text(encoding="utf-8")
