"""Benchmark: the planner's editor (issue 21, "editor preview round trip for one boundary move") in Debian's
Chromium on the full demo, on localhost.

    .venv/bin/python -m bench.planning_page [--repeat 5]

1. A scratch copy (``gridlink_bench_planning_page``) of the full-demo template of bench/intake.py, upgraded to
   head, with a planner of the town of the grid moved; one ``gridlink serve`` process on loopback.
2. The boundary move of bench/planning.py: the base grid with the most components and its neighbour with the
   longest shared border, a line cutting about half the grid off towards it — its ends a little beyond the
   border, as tests/browser/test_planning_page.py draws it.
3. **Round trip in the page**: ``/planning`` signed in, the grid's community chosen, the map fitted to the line;
   per repeat a new draft ("新建方案"), then the line drawn by clicking the map at its projected points and
   double-clicking the last; the time from the finished line (performance mark ``pl-line-finished``) to the
   preview drawn (``pl-preview-drawn``: the map idle after the plan's shapes, problems, moved points and
   tables are set), with the edit's and the preview's request durations from Resource Timing.
4. **Reference, same run**: the server's own time for the same work without a browser — ``POST …/edits`` of
   the same line on a fresh draft, then ``GET …/preview``, through httpx on loopback, ``repeat`` times. The
   ratio is page over server: what the page adds (drawing, JSON parsing, rendering) to the server's work.
Times are medians. Writes bench/results/planning_page.json. Tests never fail on time; this prints what it saw.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import httpx
from shapely.geometry import shape
from sqlalchemy import create_engine, text

from bench import machine, save
from bench.browser import signed_in_context
from bench.console import CHROMIUM_ARGS
from bench.intake import scratch_at_head
from bench.planning import move_line
from spatial.settings import DatabaseSettings
from tests.live import serving

SCRATCH = "gridlink_bench_planning_page"
LOGIN, PASSWORD = "bench.planner", "a planning benchmark password"


def prepare(settings: DatabaseSettings) -> tuple[str, str, list[list[float]]]:
    """A scratch copy at head with a planner of the moved grid's town; its URL, the grid and the line."""
    from spatial.access.accounts import add_user

    url = scratch_at_head(settings, SCRATCH)
    engine = create_engine(url)
    with engine.begin() as conn:
        code = conn.execute(text(
            "SELECT grid_code FROM component WHERE grid_code IS NOT NULL GROUP BY grid_code"
            " ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        found = move_line(conn, code)
        if found is None:
            raise SystemExit(f"no neighbour for {code}")
        (a, bend, b) = found[0]["coordinates"]
        line = [[a[0] + 0.15 * (a[0] - bend[0]), a[1] + 0.15 * (a[1] - bend[1])], list(bend),
                [b[0] + 0.15 * (b[0] - bend[0]), b[1] + 0.15 * (b[1] - bend[1])]]
        add_user(conn, LOGIN, role="planner", scope=code[:9], password=PASSWORD)
    engine.dispose()
    return url, code, line


def server_reference(base: str, line: list[list[float]], repeat: int) -> dict[str, Any]:
    """The edit and the preview through httpx (no browser), each on a fresh draft."""
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": LOGIN, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    edit_ms, preview_ms, moved = [], [], 0
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        for i in range(repeat + 1):  # the first warms the server's caches up, as the page's first draw does
            plan = http.post("/api/v1/plans", json={"title": f"bench reference {i}"}).json()["id"]
            started = time.perf_counter()
            reply = http.post(f"/api/v1/plans/{plan}/edits", json={
                "op": "move", "level": 4, "line": {"type": "LineString", "coordinates": line}})
            edited = time.perf_counter()
            reply.raise_for_status()
            preview = http.get(f"/api/v1/plans/{plan}/preview")
            done = time.perf_counter()
            preview.raise_for_status()
            moved = preview.json()["numbers"]["components"]
            if i:
                edit_ms.append((edited - started) * 1000)
                preview_ms.append((done - edited) * 1000)
    return {"edit_ms": round(statistics.median(edit_ms), 1), "preview_ms": round(statistics.median(preview_ms), 1),
            "edit_plus_preview_ms": round(statistics.median([e + p for e, p in zip(edit_ms, preview_ms, strict=True)]),
                                          1),
            "components_moved": moved}


DRAWN = """() => {
    const last = (name) => performance.getEntriesByName(name).at(-1).startTime;
    const request = (part) => performance.getEntriesByType('resource').filter((e) => e.name.includes(part)).at(-1);
    return {ms: last('pl-preview-drawn') - last('pl-line-finished'), edit: request('/edits').duration,
            preview: request('/preview').duration};
}"""


def draw(page, line: list[list[float]]) -> None:
    """Click the map at the line's projected points, double-clicking the last one."""
    pixels = page.evaluate("(cs) => cs.map((c) => { const p = window.glPlanning.map.project(c); return [p.x, p.y]; })",
                           line)
    box = page.locator("#pl-map").bounding_box()
    for x, y in pixels[:-1]:
        page.mouse.click(box["x"] + x, box["y"] + y)
    page.mouse.dblclick(box["x"] + pixels[-1][0], box["y"] + pixels[-1][1])


def page_round_trips(browser, base: str, code: str, line: list[list[float]], repeat: int) -> dict[str, Any]:
    """The round trip from the finished line to the drawn preview, ``repeat`` times (after one warm-up)."""
    context = signed_in_context(browser, base, LOGIN, PASSWORD)
    page = context.new_page()
    page.goto(f"{base}/planning")
    page.wait_for_function("() => document.body.dataset.ready === 'map' && document.body.dataset.gridsLoaded",
                           timeout=120_000)
    seen = page.evaluate("() => Number(document.body.dataset.gridsLoaded)")
    page.select_option("#pl-community", code[:12])
    page.wait_for_function(f"() => Number(document.body.dataset.gridsLoaded) > {seen}", timeout=120_000)
    west, south, east, north = shape({"type": "LineString", "coordinates": line}).buffer(0.0005).bounds
    page.evaluate(f"() => window.glPlanning.map.fitBounds([[{west}, {south}], [{east}, {north}]],"
                  " {padding: 80, duration: 0})")
    page.wait_for_function("() => window.glPlanning.map.loaded()", timeout=120_000)
    runs = []
    for i in range(repeat + 1):
        page.fill("#pl-plan-title", f"bench page {i}")
        page.click("#pl-plan-pick button[type=submit]")
        page.wait_for_selector(f"#pl-plan-state:has-text('bench page {i}')", timeout=60_000)
        page.evaluate("() => performance.clearResourceTimings()")  # the buffer (250) fills up with tiles
        page.click("#pl-edit-submit")
        draw(page, line)
        page.wait_for_function("() => document.querySelector('#pl-preview').dataset.drawn"
                               " === document.querySelector('#pl-plan-box').dataset.planId", timeout=120_000)
        if i:
            runs.append(page.evaluate(DRAWN))
    numbers = page.text_content("#pl-numbers")
    context.close()
    return {"round_trip_ms": round(statistics.median(r["ms"] for r in runs), 1),
            "edit_request_ms": round(statistics.median(r["edit"] for r in runs), 1),
            "preview_request_ms": round(statistics.median(r["preview"] for r in runs), 1),
            "runs_ms": [round(r["ms"], 1) for r in runs], "numbers": numbers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    settings = DatabaseSettings()
    url, code, line = prepare(settings)
    result: dict[str, Any] = {"machine": machine(), "grid": code, "repeat": args.repeat}
    with serving(url) as port, sync_playwright() as pw:
        base = f"http://127.0.0.1:{port}"
        result["server"] = server_reference(base, line, args.repeat)
        print(f"server: edit {result['server']['edit_ms']} ms + preview {result['server']['preview_ms']} ms"
              f" ({result['server']['components_moved']} components moved)", file=sys.stderr)
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        result["page"] = page_round_trips(browser, base, code, line, args.repeat)
        browser.close()
    result["ratio_page_over_server"] = round(result["page"]["round_trip_ms"]
                                             / result["server"]["edit_plus_preview_ms"], 2)
    save("planning_page.json", result)
    print(f"page round trip {result['page']['round_trip_ms']} ms (edit request {result['page']['edit_request_ms']}"
          f" ms, preview request {result['page']['preview_request_ms']} ms) vs server edit + preview"
          f" {result['server']['edit_plus_preview_ms']} ms: ratio {result['ratio_page_over_server']}")


if __name__ == "__main__":
    main()
