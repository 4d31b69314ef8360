"""The printable monthly report of a town (issue 21 item 3): a generated map page made with folium — the town's
base grids coloured by grade — with the town's totals, the 721 split and the grid and community tables, laid
out for A4 (``static/dashboard/report.css``: print sheet, page breaks, no navigation).

Offline: folium's default JavaScript and CSS come from CDNs (Leaflet, jQuery, Bootstrap, Font Awesome,
Leaflet.awesome-markers, glyphicons). The report uses folium's map and GeoJSON only, which need Leaflet alone,
so the map's defaults are replaced by the pinned Leaflet under ``/static/vendor/leaflet`` and everything else
is dropped (no markers with icons, no popups built on Bootstrap). The page loads nothing but gridlink's own
files: ``report_csp`` allows the inline scripts and styles folium writes by their SHA-256 hashes and nothing
else inline.

The input is the dict of ``spatial.cases.kpi_report.town_report`` (no database here: pages never touch it).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import UTC, datetime
from typing import Any

import folium
from folium import Element, Figure
from jinja2 import Template

from web.pages import _environment

LEAFLET_JS = "/static/vendor/leaflet/leaflet.js"
LEAFLET_CSS = "/static/vendor/leaflet/leaflet.css"
REPORT_CSS = "/static/dashboard/report.css"
GRADE_COLOURS = {"A": "#1a9850", "B": "#91cf60", "C": "#fee08b", "D": "#fc8d59", "E": "#d73027", None: "#d9d9d9"}
# folium's map header asks the browser not to let a reader zoom (user-scalable=no, maximum-scale): an
# accessibility failure (axe "meta-viewport"); the report's own viewport line replaces it.
FOLIUM_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>', re.DOTALL)
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


class ReportFigure(Figure):
    """folium's page (branca's Figure) with a language, a title, the scripts inside ``<body>`` and ``tail``:
    HTML after the map (folium adds the map's ``<div>`` to the page's body last, while the page is rendered)."""

    tail = ""
    _template = Template(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>{{ this.title }}</title>\n{{ this.header.render(**kwargs) }}\n</head>\n"
        "<body class=\"kr\">\n{{ this.html.render(**kwargs) }}\n{{ this.tail }}\n"
        "<script>\n{{ this.script.render(**kwargs) }}\n</script>\n</body>\n</html>\n")


def grade_colour(grade: str | None) -> str:
    """The fill colour of a grade (grey for a grid with nothing due)."""
    return GRADE_COLOURS.get(grade, GRADE_COLOURS[None])


def _map(report: dict[str, Any]) -> folium.Map:
    """The folium map of the town's base grids, each filled with its grade's colour, fitted to the town."""
    grades = {g["key"]: g["grade"] for g in report["grids"]["groups"]}
    # Codes and grades only: names (a planner's text) stay out of the map's script.
    shapes = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": f["id"], "geometry": f["geometry"],
         "properties": {"code": f["properties"]["code"], "grade": grades.get(f["properties"]["code"])}}
        for f in report["shapes"]["features"]]}
    town = folium.Map(tiles=None, zoom_start=12, control_scale=True, zoom_control=False, zoom_snap=0.25)
    town.default_js = [("leaflet", LEAFLET_JS)]
    town.default_css = [("leaflet_css", LEAFLET_CSS)]
    if shapes["features"]:
        folium.GeoJson(shapes, name="grids", style_function=lambda f: {
            "fillColor": grade_colour(f["properties"]["grade"]), "fillOpacity": 0.75,
            "color": "#374151", "weight": 0.8}).add_to(town)
        town.fit_bounds(_bounds(shapes))
    return town


def _bounds(shapes: dict[str, Any]) -> list[list[float]]:
    """South-west and north-east corners (lat, lon) of every ring of ``shapes``."""
    lons: list[float] = []
    lats: list[float] = []
    for feature in shapes["features"]:
        geometry = feature["geometry"]
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        for polygon in polygons:
            for ring in polygon:
                lons.extend(p[0] for p in ring)
                lats.extend(p[1] for p in ring)
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


def render_town_report(report: dict[str, Any], *, generated: datetime | None = None) -> str:
    """The report page of one town and month (HTML, self-contained but for gridlink's ``/static`` files)."""
    town = _map(report)
    title = f"{report['town']['name']} {report['month']} 月度考核报告"
    figure = ReportFigure(title=html.escape(title))  # branca's page template does not escape
    figure.add_child(town)
    figure.header.add_child(Element(f'<link rel="stylesheet" href="{REPORT_CSS}">'), name="report_css")
    parts: Any = _environment().get_template("kpi_report.html").module  # its macros: before, after
    context = {"r": report, "title": title,
               "generated": (generated or datetime.now(UTC)).astimezone(report["from"].tzinfo)}
    figure.html.add_child(Element(parts.before(**context)), name="report_before", index=0)
    figure.tail = str(parts.after(**context))  # escaped by the template (autoescape)
    return FOLIUM_VIEWPORT.sub(VIEWPORT, figure.render())


def report_csp(page: str) -> str:
    """The Content-Security-Policy of a rendered report: gridlink's own files, and the inline scripts and styles
    folium wrote, each by its hash; no other origin, no other inline code, no connections."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    return "; ".join((
        "default-src 'self'", "script-src 'self' " + " ".join(hashes["script"]),
        "style-src 'self' " + " ".join(hashes["style"]), "img-src 'self' data:", "connect-src 'none'",
        "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"))
