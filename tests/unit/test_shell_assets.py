"""The shared page shell and the console (issue 20): every vendored file matches the SHA-256 pinned in
``web/static/vendor/README.md``, the pages load only local assets, configuration reaches the scripts through
escaped data- attributes, and the scripts never put text into HTML."""

from __future__ import annotations

import hashlib
import re

import pytest

from web.pages import PAGE_CSP, STATIC_DIR, render_console, render_page

VENDOR = STATIC_DIR / "vendor"
README = (VENDOR / "README.md").read_text(encoding="utf-8")
PINNED = re.findall(r"^([0-9a-f]{64})  (\S+)$", README, flags=re.MULTILINE)
OUR_SCRIPTS = sorted(p for d in ("common", "console", "planning") for p in (STATIC_DIR / d).glob("*.js"))


def test_readme_pins_every_vendored_file() -> None:
    pinned = {name for _, name in PINNED}
    on_disk = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file() and p.name != "README.md"}
    assert on_disk == pinned


@pytest.mark.parametrize(("digest", "name"), PINNED, ids=[n for _, n in PINNED])
def test_vendored_file_matches_its_pin(digest: str, name: str) -> None:
    assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest


def test_maplibre_and_axe_versions_and_licences() -> None:
    assert "@license 3-Clause BSD" in (VENDOR / "maplibre-gl" / "maplibre-gl.mjs").read_text()[:300]
    assert 'l=`6.20.0`' in (VENDOR / "maplibre-gl" / "maplibre-gl.mjs").read_text()[:3000]
    assert (VENDOR / "axe-core" / "axe.min.js").read_text()[:40].startswith("/*! axe v4.14.1")
    assert "Mozilla Public License, version 2.0" in (VENDOR / "axe-core" / "LICENSE").read_text()


def test_console_page_loads_only_local_modules_and_escapes_config() -> None:
    html = render_console()
    assert '<html lang="zh-CN">' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith(("/static/", "/", "data:")) and not s.startswith("//") for s in sources)
    assert '<script type="module" src="/static/console/console.js"></script>' in html
    assert "<script>" not in html  # no inline script: the CSP forbids it
    assert 'data-center="120.55,31.22"' in html
    assert "script-src 'self'" in PAGE_CSP and "unsafe" not in PAGE_CSP


def test_page_config_is_escaped() -> None:
    evil = '/api"><script>alert(1)</script>'
    html = render_page("console.html", page="console", title_key="consoleTitle", title="t", config={"api-base": evil})
    assert "<script>alert(1)" not in html and '"><script>' not in html
    assert 'data-api-base="/api&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


@pytest.mark.parametrize("path", OUR_SCRIPTS, ids=[p.name for p in OUR_SCRIPTS])
def test_scripts_never_write_html(path) -> None:
    js = path.read_text(encoding="utf-8")
    assert not re.search(r"(innerHTML|outerHTML)\s*=(?!=)|insertAdjacentHTML|document\.write|\beval\(", js)
    assert not re.search(r"https?://(?!www\.openstreetmap)", js)  # no CDN, no foreign origin


@pytest.mark.parametrize("path", [STATIC_DIR / "common" / "i18n.js", STATIC_DIR / "console" / "strings.js",
                                  STATIC_DIR / "planning" / "strings.js"], ids=["shell", "console", "planning"])
def test_every_string_exists_in_chinese_and_english(path) -> None:
    js = path.read_text(encoding="utf-8")
    zh, en = js.split("'zh-CN': {", 1)[1].split("\n  en: {", 1)
    en = en.split("\n  },", 1)[0]
    pairs = r"'?([\w-]+)'?:\s*'(?:[^'\\]|\\.)*'"  # key: 'text' (the text consumed, never read as keys)
    keys = [set(re.findall(pairs, block)) for block in (zh, en)]
    assert keys[0] and keys[0] == keys[1], keys[0] ^ keys[1]
