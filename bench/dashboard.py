"""Benchmark: the evaluation dashboard's first paint on the full year (issue 21), in Debian's Chromium on the full
demo, on localhost.

    .venv/bin/python -m bench.dashboard [--runs 3]

1. A scratch copy (``gridlink_bench_dashboard``) of the full-demo template of bench/intake.py, upgraded to head,
   with an administrator (the whole city); one ``gridlink serve`` process on loopback. The period is the demo's
   year: 365 days from its first report (``?kind=custom``), ranked by town.
2. **Cold load** of ``/dashboard`` signed in (a fresh browser context: empty cache), ``runs`` times after one
   untimed load (the server's first requests: imports, pools): first contentful paint, the ranking table drawn
   (``db-ranking``: GET /api/v1/kpi for the year answered and rendered), every part drawn (``db-loaded``: the
   twelve monthly evaluations of the trends, the base grids' hot spots, the heat map), requests and bytes.
3. References measured in the same run: the cold load of one static file (the favicon: the browser's and the
   server's floor) and GET /api/v1/kpi for the same year and grouping over HTTP alone (the evaluation the
   table waits for), each the median of ``runs``.
Writes bench/results/dashboard.json. Tests never fail on time; this prints what it saw.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, timedelta

import httpx
from sqlalchemy import create_engine, text

from bench import machine, save
from bench.browser import signed_in_context, timed_load
from bench.console import CHROMIUM_ARGS
from bench.intake import scratch_at_head
from spatial.cases.schemas import LOCAL
from spatial.settings import DatabaseSettings
from tests.live import serving

SCRATCH = "gridlink_bench_dashboard"
LOGIN, PASSWORD = "bench.dashboard", "a dashboard benchmark password"
READY = "() => performance.getEntriesByName('db-loaded').length > 0"


def prepare(settings: DatabaseSettings) -> tuple[str, str, str]:
    """A scratch copy of the demo template at head with the benchmark's account; its URL and the year's period
    (first and last day, local dates)."""
    from spatial.access.accounts import add_user

    url = scratch_at_head(settings, SCRATCH)
    engine = create_engine(url)
    with engine.begin() as conn:
        add_user(conn, LOGIN, role="admin", scope="*", password=PASSWORD)
        first = conn.execute(text('SELECT min(reported_at) FROM "case"')).scalar_one().astimezone(LOCAL).date()
    engine.dispose()
    return url, first.isoformat(), (first + timedelta(days=364)).isoformat()


def cold_load(browser, base: str, path: str, ready: str | None) -> dict:
    """Load ``path`` in a fresh context; paint, table and complete times (ms), requests and bytes."""
    context = signed_in_context(browser, base, LOGIN, PASSWORD, timezone_id="Asia/Shanghai")
    marks, wall, sizes = timed_load(context, base, path, ready, """() => {
        const at = (name) => { const e = performance.getEntriesByName(name); return e.length ? e[0].startTime : null; };
        return {fcp: at('first-contentful-paint'), ranking: at('db-ranking'), loaded: at('db-loaded'),
                rows: document.querySelectorAll('#db-ranking tbody tr').length};
    }""", timeout=300_000)
    return {"first_paint_ms": round(marks["fcp"] or 0, 1), "ranking_ms": round(marks["ranking"] or 0, 1),
            "loaded_ms": round(marks["loaded"] or 0, 1), "wall_ms": round(wall, 1), "rows": marks["rows"],
            "requests": len(sizes), "bytes": sum(max(0, s) for s in sizes)}


def api_time(base: str, params: dict, runs: int) -> float:
    """Median wall time (ms) of GET /api/v1/kpi with ``params`` over HTTP, without a browser."""
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": LOGIN, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    times = []
    with httpx.Client(timeout=300) as http:
        for _ in range(runs):
            started = time.perf_counter()
            http.get(f"{base}/api/v1/kpi", params=params, headers=headers).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    url, first, last = prepare(DatabaseSettings())
    path = f"/dashboard?kind=custom&from={first}&to={last}&level=town"
    result: dict = {"machine": machine(), "period": [first, last], "level": "town"}
    with serving(url) as port, sync_playwright() as pw:
        base = f"http://127.0.0.1:{port}"
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        cold_load(browser, base, path, READY)  # untimed: the server's first requests
        floors = [cold_load(browser, base, "/static/common/favicon.svg", None) for _ in range(args.runs)]
        floor = statistics.median(f["wall_ms"] for f in floors)
        loads = [cold_load(browser, base, path, READY) for _ in range(args.runs)]
        dashboard = {k: statistics.median(run[k] for run in loads) for k in loads[0]}
        end = (date.fromisoformat(last) + timedelta(days=1)).isoformat()  # the page asks with `to` exclusive
        year = {"group": "town", "from": first, "to": end}
        api = api_time(base, year, args.runs)
        browser.close()
    result["cold_load"] = {
        "dashboard": dashboard, "runs": loads, "floor_static_file_ms": floor, "kpi_year_by_town_api_ms": api,
        "ratio_ranking_over_floor": round(dashboard["ranking_ms"] / floor, 1),
        "ratio_ranking_over_api": round(dashboard["ranking_ms"] / api, 2)}
    print(f"dashboard, full year by town: first paint {dashboard['first_paint_ms']} ms, ranking drawn "
          f"{dashboard['ranking_ms']} ms, every part {dashboard['loaded_ms']} ms ({dashboard['requests']} requests, "
          f"{dashboard['bytes'] / 1e6:.2f} MB); floor (one static file) {floor} ms; GET /api/v1/kpi for the year "
          f"alone {api} ms; ranking / floor {result['cold_load']['ratio_ranking_over_floor']}, ranking / API "
          f"{result['cold_load']['ratio_ranking_over_api']}", flush=True)
    save("dashboard.json", result)


if __name__ == "__main__":
    main()
