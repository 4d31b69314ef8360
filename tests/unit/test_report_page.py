"""The report page (issue 20 item 5) as served: only local ES modules, no inline script, configuration through
data- attributes, scripts that never put text into HTML nor reach another origin, and a service worker that
caches only what the page itself loads and never an API reply."""

from __future__ import annotations

import re

import pytest

from web.pages import STATIC_DIR, render_report, report_worker

SCRIPTS = sorted((STATIC_DIR / "report").glob("*.js"))


def test_report_page_loads_only_local_modules() -> None:
    html = render_report()
    assert '<html lang="zh-CN">' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith(("/static/", "/", "data:")) and not s.startswith("//") for s in sources)
    assert '<script type="module" src="/static/report/report.js"></script>' in html
    assert "<script>" not in html
    assert 'data-built-pages="/report"' in html


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_report_scripts_never_write_html(path) -> None:
    js = path.read_text(encoding="utf-8")
    assert not re.search(r"(innerHTML|outerHTML)\s*=(?!=)|insertAdjacentHTML|document\.write|\beval\(", js)
    assert not re.search(r"https?://", js)


def test_service_worker_caches_the_page_shell_only() -> None:
    worker = report_worker()
    shell = re.search(r"const SHELL = \[(.*?)\];", worker, flags=re.S)
    assert shell is not None
    cached = re.findall(r"'([^']+)'", shell.group(1))
    assert "/report" in cached and not any(path.startswith("/api/") for path in cached)
    for path in cached:
        if path.startswith("/static/"):
            assert (STATIC_DIR / path.removeprefix("/static/")).is_file(), path
    assert "method !== 'GET'" in worker
