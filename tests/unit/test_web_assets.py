"""The demo map page renders offline: pinned local assets only, configuration in escaped data- attributes."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from web.pages import STATIC_DIR, render_index

LEAFLET_DIR = STATIC_DIR / "vendor" / "leaflet"


class _Collector(HTMLParser):
    """Collects tags and their attributes from an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def first(self, tag: str, **match: str) -> dict[str, str | None]:
        return next(a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in match.items()))


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser


def _asset_urls(parser: _Collector) -> list[str]:
    return [a["src"] or "" for t, a in parser.tags if t == "script" and "src" in a] + [
        a["href"] or "" for t, a in parser.tags if t == "link" and "href" in a]


def test_page_is_chinese_first_with_default_title() -> None:
    html = render_index()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert _parse(html).first("html")["lang"] == "zh-CN"
    assert '<title data-i18n="title">gridlink 网格化联动指挥 · 吴中区演示</title>' in html
    assert 'id="lang-toggle"' in html


def test_page_loads_only_local_static_assets() -> None:
    parser = _parse(render_index())
    urls = _asset_urls(parser)
    assert set(urls) == {"/static/vendor/leaflet/leaflet.js", "/static/app.js",
                         "/static/vendor/leaflet/leaflet.css", "/static/app.css"}
    for url in urls:
        assert "http://" not in url and "https://" not in url and not url.startswith("//")
        assert (STATIC_DIR / url.removeprefix("/static/")).is_file(), url
    # configuration travels in data- attributes only: no inline script
    assert all("src" in a for t, a in parser.tags if t == "script")


def test_data_attributes_carry_configuration() -> None:
    m = _parse(render_index()).first("div", id="map")
    assert (m["data-api-base"], m["data-center"], m["data-zoom"]) == ("/api/v1", "31.22,120.55", "10")
    m = _parse(render_index(api_base="/gl/api/v2", center=(31.3, 120.6), zoom=13)).first("div", id="map")
    assert (m["data-api-base"], m["data-center"], m["data-zoom"]) == ("/gl/api/v2", "31.3,120.6", "13")


def test_api_base_is_escaped() -> None:
    evil = '/api"><script>alert(1)</script>'
    html = render_index(api_base=evil)
    assert "<script>alert(1)" not in html
    assert '"><script>' not in html
    assert "&#34;&gt;&lt;script&gt;" in html
    parser = _parse(html)
    assert parser.first("div", id="map")["data-api-base"] == evil  # round-trips as plain text
    assert sum(1 for t, _ in parser.tags if t == "script") == 2


def test_leaflet_is_vendored_and_pinned() -> None:
    js = (LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8")
    assert js.startswith("/* @preserve\n * Leaflet 1.9.4, a JS library for interactive maps.")
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")
    for image in re.findall(r"url\((images/[^)]+)\)", css):
        assert (LEAFLET_DIR / image).is_file(), image
    assert "BSD 2-Clause" in (LEAFLET_DIR / "LICENSE").read_text(encoding="utf-8")
    readme = (STATIC_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    assert "1.9.4" in readme and "BSD-2-Clause" in readme and "npm pack leaflet@1.9.4" in readme


def test_app_script_uses_the_api_and_never_inner_html_with_data() -> None:
    js = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    fragments = ("'/areas'", "'/stats'", "'/locate'", "level: def.level", "params.bbox", "MIN_GRID_ZOOM = 12")
    for fragment in fragments:
        assert fragment in js, fragment
    for level in ("'1'", "'2'", "'3'", "'4'", "'special'"):
        assert f"level: {level}" in js
    assert "localStorage" in js and "放大查看基础网格" in js and "zoom in to see base grids" in js
    # innerHTML is only read (to escape constant labels), never assigned
    assert not re.search(r"innerHTML\s*=(?!=)", js)
    assert not re.search(r"\beval\(|document\.write|insertAdjacentHTML", js)
    # the only absolute URLs are the optional OpenStreetMap tiles and their attribution link
    assert set(re.findall(r"https?://[^/'\"]+", js)) == {"https://tile.openstreetmap.org",
                                                         "https://www.openstreetmap.org"}
    # the login box: a cookie session, and its CSRF token sent with the one write (logout)
    assert "'/auth/session'" in js and "'X-CSRF-Token': account.csrf_token" in js and "credentials: 'same-origin'" in js
    assert len(js.splitlines()) <= 360
