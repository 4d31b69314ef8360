"""The registry page (issue 21 item 1) as served: only local ES modules, no inline script, scripts that never put
text into HTML nor reach another origin, and every string it names present in Chinese and in English."""

from __future__ import annotations

import re

import pytest

from web.pages import STATIC_DIR, render_registry

SCRIPTS = sorted((STATIC_DIR / "registry").glob("*.js"))


def _keys(section: str) -> set[str]:
    return set(re.findall(r"(?:^|[\s{,])'?([\w-]+)'?:\s*'", section))


def test_registry_page_loads_only_local_modules() -> None:
    html = render_registry()
    assert '<html lang="zh-CN">' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith(("/static/", "/", "#")) and not s.startswith("//") for s in sources)
    assert '<script type="module" src="/static/registry/registry.js"></script>' in html
    assert "<script>" not in html


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_registry_scripts_never_write_html(path) -> None:
    js = path.read_text(encoding="utf-8")
    assert not re.search(r"(innerHTML|outerHTML)\s*=(?!=)|insertAdjacentHTML|document\.write|\beval\(", js)
    assert not re.search(r"https?://", js)


def test_every_string_of_the_page_is_in_both_languages() -> None:
    strings = (STATIC_DIR / "registry" / "strings.js").read_text(encoding="utf-8")
    shared = (STATIC_DIR / "common" / "i18n.js").read_text(encoding="utf-8")
    zh_part, en_part = strings.split("\n  en: {", 1)
    shared_zh, shared_en = shared.split("\n  en: {", 1)
    zh, en = _keys(zh_part) | _keys(shared_zh), _keys(en_part) | _keys(shared_en)
    html = render_registry()
    used = set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', html))
    for path in SCRIPTS:
        used |= set(re.findall(r"\bt\('([\w-]+)'", path.read_text(encoding="utf-8")))
    used |= {f"status_{s}" for s in ("intact", "damaged", "missing", "abandoned", "removed")}
    used |= {f"action_{a}" for a in ("create", "update", "status", "delete")}
    assert used and not used - zh and not used - en, (sorted(used - zh), sorted(used - en))
