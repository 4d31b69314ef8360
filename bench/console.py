"""Benchmark: the dispatcher console (issue 20) in Debian's Chromium on the full demo, on localhost.

    .venv/bin/python -m bench.console [--pan-steps 24] [--cases 10] [--load-only]

1. A scratch copy (``gridlink_bench_console``) of the full-demo template of bench/intake.py, upgraded to head,
   with a dispatcher of the busiest Wuzhong town; one ``gridlink serve`` process on loopback.
2. **Cold load** of ``/console`` signed in (a fresh browser context: empty cache): first contentful paint, time
   to interactive (the later of the first case-list render and the map's first ``idle``: tiles drawn), the
   requests and bytes transferred. Reference in the same run: the cold load of a static file (favicon) — the
   browser's and server's floor. A trace of the last load says where the time went: when the session, list,
   inbox and category requests left and were answered, the page's ``gl-`` marks (console.js), the long tasks.
   The load average is printed with it (the machine is shared). ``--load-only`` stops after this step.
3. **Pan at z14 across Wuzhong**, west → east in ``pan-steps`` animated steps, twice; the second pass is served
   from the tile caches (the server's and MapLibre's). Frame rate from requestAnimationFrame during each pass;
   reference: the frame rate of the same page idle (what this headless browser can draw at all).
4. **List update delay**: ``cases`` reports posted by another client, one per second; for each, the time from
   the reply of POST /api/v1/cases (committed) to the event reaching the page (the feed) and to its row on
   screen (a MutationObserver). The feed's own delay is the reference.
Writes bench/results/console.json. Tests never fail on time; this prints what it saw.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx
from sqlalchemy import create_engine, text

from bench import machine, save
from bench.browser import signed_in_context as browser_context
from bench.browser import timed_load
from bench.intake import scratch_at_head
from spatial.settings import DatabaseSettings
from tests.live import serving

SCRATCH = "gridlink_bench_console"
LOGIN, PASSWORD = "bench.console", "a console benchmark password"
WUZHONG_Z14 = ((120.45, 31.2), (120.75, 31.2))  # west → east across Wuzhong at z14
CHROMIUM_ARGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def prepare(settings: DatabaseSettings) -> tuple[str, str]:
    """A scratch copy of the demo template at head with the console's account; its URL and the town."""
    from spatial.access.accounts import add_user

    url = scratch_at_head(settings, SCRATCH)
    engine = create_engine(url)
    with engine.begin() as conn:
        town = conn.execute(text("SELECT town_code FROM \"case\" WHERE district_code = '320506'"
                                 " GROUP BY town_code ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        add_user(conn, LOGIN, role="dispatcher", scope=town, password=PASSWORD)
    engine.dispose()
    return url, town


def signed_in_context(browser, base: str):
    """A fresh context (no cache) signed in as the benchmark's dispatcher."""
    return browser_context(browser, base, LOGIN, PASSWORD)


LONG_TASKS = """window.benchLongTasks = [];
try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.benchLongTasks.push(e); })
        .observe({type: 'longtask', buffered: true});
} catch (e) { /* no long task timing in this browser */ }"""

MARKS = """() => {
    const at = (name) => { const e = performance.getEntriesByName(name); return e.length ? e[0].startTime : null; };
    const resources = performance.getEntriesByType('resource');
    const late = resources.slice().sort((a, b) => b.responseEnd - a.responseEnd).slice(0, 5)
        .map((e) => `${new URL(e.name).pathname} ${Math.round(e.startTime)}→${Math.round(e.responseEnd)}`);
    // Where the time goes: when the page's own requests left and were answered (ms after navigation).
    const span = (test) => {
        const found = resources.filter((e) => test(new URL(e.name).pathname));
        if (!found.length) return null;
        return {n: found.length, start: Math.round(Math.min(...found.map((e) => e.startTime))),
                end: Math.round(Math.max(...found.map((e) => e.responseEnd))),
                bytes: found.reduce((sum, e) => sum + e.transferSize, 0)};
    };
    const trace = {
        session: span((p) => p === '/api/v1/auth/session'), cases: span((p) => p === '/api/v1/cases'),
        inbox: span((p) => p === '/api/v1/inbox'), categories: span((p) => p === '/api/v1/categories'),
        maplibre: span((p) => p.endsWith('/maplibre-gl.mjs')), worker: span((p) => p.includes('maplibre-gl-worker')),
        tiles: span((p) => p.startsWith('/tiles/')),
        long_tasks: (window.benchLongTasks || []).map((e) => [Math.round(e.startTime), Math.round(e.duration)]),
    };
    for (const e of performance.getEntriesByType('mark')) trace[e.name] = Math.round(e.startTime);  // the page's
    return {fcp: at('first-contentful-paint'), list: at('gl-list'), idle: at('gl-map-idle'),
            map_load: at('gl-map-load'), late, trace,
            load: performance.getEntriesByType('navigation')[0].loadEventEnd};
}"""


def cold_load(browser, base: str, path: str, ready: str | None) -> dict:
    """Load ``path`` in a fresh context; paint and interactive times (ms), requests and bytes, and a trace of
    where the time went (when the page's requests left and were answered, the map's marks, long tasks)."""
    context = signed_in_context(browser, base)
    context.add_init_script(LONG_TASKS)
    marks, wall, sizes = timed_load(context, base, path, ready, MARKS, timeout=120_000,
                                    settle_ms=500)  # late requests (tiles of the idle map) are counted too
    interactive = max(marks["list"] or 0, marks["idle"] or 0) or marks["load"]
    return {"first_paint_ms": round(marks["fcp"] or 0, 1), "interactive_ms": round(interactive, 1),
            "list_ms": round(marks["list"] or 0, 1), "map_idle_ms": round(marks["idle"] or 0, 1),
            "map_load_ms": round(marks["map_load"] or 0, 1), "last_responses": marks["late"],
            "trace": marks["trace"],
            "wall_ms": round(wall, 1), "requests": len(sizes), "bytes": sum(max(0, s) for s in sizes)}


FPS = """(ms) => new Promise((resolve) => {
    let frames = 0; const end = performance.now() + ms;
    const tick = (now) => {
        frames += 1;
        if (now < end) requestAnimationFrame(tick); else resolve(frames * 1000 / ms);
    };
    requestAnimationFrame(tick);
})"""

PAN = """async ([from, to, steps]) => {
    const map = window.glConsole.map;
    map.jumpTo({center: from, zoom: 14});
    await new Promise((r) => map.once('idle', r));
    let frames = 0; let counting = true;
    const tick = () => { frames += 1; if (counting) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    const started = performance.now();
    for (let i = 1; i <= steps; i += 1) {
        const lon = from[0] + (to[0] - from[0]) * i / steps;
        map.easeTo({center: [lon, from[1]], duration: 250});
        await new Promise((r) => map.once('moveend', r));
    }
    await new Promise((r) => map.once('idle', r));
    counting = false;
    const ms = performance.now() - started;
    return {ms, fps: frames * 1000 / ms};
}"""


def pan(browser, base: str, steps: int) -> dict:
    """Two passes of the pan across Wuzhong at z14; idle frame rate as the reference."""
    context = signed_in_context(browser, base)
    page = context.new_page()
    tiles: list[int] = []
    page.on("response", lambda r: tiles.append(r.status) if "/tiles/" in r.url else None)
    page.goto(f"{base}/console")
    page.wait_for_function("() => document.body.dataset.ready === 'map'", timeout=120_000)
    idle_fps = page.evaluate(FPS, 2000)
    passes = []
    for _ in range(2):
        tiles.clear()
        result = page.evaluate(PAN, [list(WUZHONG_Z14[0]), list(WUZHONG_Z14[1]), steps])
        passes.append({"ms": round(result["ms"]), "fps": round(result["fps"], 1), "tile_requests": len(tiles),
                       "tile_304": tiles.count(304)})
    context.close()
    return {"idle_fps": round(idle_fps, 1), "first": passes[0], "cached": passes[1],
            "fps_ratio_cached_over_idle": round(passes[1]["fps"] / idle_fps, 2)}


OBSERVE = """() => {
    window.benchSeen = {};
    new MutationObserver(() => {
        for (const li of document.querySelectorAll('#cl-list li[data-case-id]')) {
            if (!(li.dataset.caseId in window.benchSeen)) window.benchSeen[li.dataset.caseId] = Date.now();
        }
    }).observe(document.getElementById('cl-list'), {childList: true});
    for (const li of document.querySelectorAll('#cl-list li[data-case-id]')) window.benchSeen[li.dataset.caseId] = 0;
    window.benchEvents = {};
    const feed = window.glConsole.feed.source;
    feed.addEventListener('message', (m) => {
        const e = JSON.parse(m.data);
        if (e.kind === 'report' && !(e.case_id in window.benchEvents)) window.benchEvents[e.case_id] = Date.now();
    });
}"""


def list_delay(browser, base: str, url: str, cases: int) -> dict:
    """Commit → feed and commit → row on screen, for reports posted by another client."""
    engine = create_engine(url)
    with engine.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(gg.geom) p FROM account a JOIN grid g"
            " ON g.code LIKE a.scope || '%' AND g.level = 4 JOIN grid_geometry gg ON gg.grid_code = g.code"
            " AND gg.valid_to IS NULL WHERE a.login = :l ORDER BY g.code LIMIT 1) q"), {"l": LOGIN}).one()
    engine.dispose()
    context = signed_in_context(browser, base)
    page = context.new_page()
    page.goto(f"{base}/console")
    page.wait_for_function("() => document.body.dataset.listVersion && window.glConsole && window.glConsole.feed.source"
                           " && document.getElementById('cl-live').dataset.state === 'live'", timeout=120_000)
    page.evaluate(OBSERVE)
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": LOGIN, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    committed: dict[str, int] = {}
    with httpx.Client(timeout=30) as http:
        for i in range(cases):
            reply = http.post(f"{base}/api/v1/cases", headers=headers, json={
                "category": "E010101", "location": {"type": "Point", "coordinates": [lon + i * 1e-4, lat]}})
            committed[str(reply.json()["id"])] = int(time.time() * 1000)
            time.sleep(1.0)
    page.wait_for_timeout(3000)
    seen, events = page.evaluate("[window.benchSeen, window.benchEvents]")
    context.close()
    feed = [events[k] - committed[k] for k in committed if k in events]
    screen = [seen[k] - committed[k] for k in committed if seen.get(k)]
    return {"cases": cases, "feed_ms_median": statistics.median(feed) if feed else None,
            "screen_ms_median": statistics.median(screen) if screen else None,
            "screen_ms_max": max(screen) if screen else None, "on_screen": len(screen),
            "ratio_screen_over_feed": round(statistics.median(screen) / statistics.median(feed), 2)
            if feed and screen and statistics.median(feed) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pan-steps", type=int, default=24)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--load-only", action="store_true", help="only the cold loads (step 2)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    url, town = prepare(DatabaseSettings())
    result: dict = {"machine": machine(), "town": town, "load_average_before": os.getloadavg()}
    with serving(url) as port, sync_playwright() as pw:
        base = f"http://127.0.0.1:{port}"
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        ready = ("() => performance.getEntriesByName('gl-list').length"
                 " && performance.getEntriesByName('gl-map-idle').length")
        cold_load(browser, base, "/console", ready)  # the server's first requests (imports, pools) are not timed
        floor = cold_load(browser, base, "/static/common/favicon.svg", None)
        loads = [cold_load(browser, base, "/console", ready) for _ in range(3)]
        console = {k: statistics.median(run[k] for run in loads) for k in loads[0]
                   if k not in ("last_responses", "trace")}
        for k in ("last_responses", "trace"):  # where the time went (path start→end, ms), of the last load
            console[k] = loads[-1][k]
        result["cold_load"] = {"console": console, "floor": floor,
                               "ratio_interactive_over_floor": round(console["interactive_ms"] / floor["wall_ms"], 1)}
        print(f"cold load: first paint {console['first_paint_ms']} ms, interactive {console['interactive_ms']} ms"
              f" (list {console['list_ms']} ms, map idle {console['map_idle_ms']} ms)"
              f" (target < 2000), {console['requests']} requests, {console['bytes'] / 1e6:.2f} MB;"
              f" floor (one static file) {floor['wall_ms']} ms; map loaded {console['map_load_ms']} ms;"
              f" last responses {console['last_responses']}", flush=True)
        result["load_average_after_loads"] = os.getloadavg()
        print(f"load average before / after the loads: {result['load_average_before']}"
              f" / {result['load_average_after_loads']}", flush=True)
        print(f"trace of the last load (ms after navigation): {console['trace']}", flush=True)
        if args.load_only:
            browser.close()
            save("console.json", result)
            return
        result["pan"] = pan(browser, base, args.pan_steps)
        print(f"pan z14: {result['pan']}", flush=True)
        result["list_delay"] = list_delay(browser, base, url, args.cases)
        print(f"list update: {result['list_delay']}", flush=True)
        browser.close()
    save("console.json", result)


if __name__ == "__main__":
    main()
