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
