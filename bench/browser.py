"""What the browser benchmarks share (bench/console.py, bench/dashboard.py, bench/planning_page.py): a signed-in
Chromium context, and a timed cold load of a page."""

from __future__ import annotations

import time
from typing import Any


def signed_in_context(browser, base: str, login: str, password: str, **options: Any):
    """A fresh context (no cache) at 1920 × 1080 in zh-CN holding a session cookie of ``login``, as after a login;
    ``options``: more of Playwright's context options (e.g. ``timezone_id``)."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", **options)
    reply = context.request.post(f"{base}/api/v1/auth/session", form={"username": login, "password": password})
    assert reply.ok, reply.text()
    context.add_init_script("localStorage.setItem('gridlink.session', '1')")
    return context


def timed_load(context, base: str, path: str, ready: str | None, marks: str, *, timeout: int,
               settle_ms: int = 0) -> tuple[dict[str, Any], float, list[int]]:
    """Load ``path`` in a new page of ``context`` (closed after): until the JavaScript predicate ``ready`` holds
    (else the load event), then ``marks`` (a JavaScript function) is evaluated in the page; ``settle_ms`` more
    for late requests. Returns what ``marks`` gave, the wall time (ms) and each request's bytes."""
    page = context.new_page()
    sizes: list[int] = []
    page.on("requestfinished", lambda r: sizes.append(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]))
    started = time.perf_counter()
    page.goto(f"{base}{path}")
    if ready:
        page.wait_for_function(ready, timeout=timeout)
    else:
        page.wait_for_load_state("load")
    wall = (time.perf_counter() - started) * 1000
    found = page.evaluate(marks)
    if settle_ms:
        page.wait_for_timeout(settle_ms)
    context.close()
    return found, wall, sizes
