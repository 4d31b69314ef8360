"""Soak test: 30 minutes at ten times Suzhou's peak intake rate, with dispatchers reading at the same time.

    .venv/bin/python -m bench.soak [--minutes 30] [--rate 5] [--workers 2]

The rate. SPEC: about 1,600 cases a day, peaks ×3 — 4,800 on a peak day. Reports come in working hours;
taking the whole peak day within 8 hours and its busiest hour at twice that hour's mean gives 1,200 reports
an hour, 0.33 a second; ten times that is 3.3 reports a second. The default, 5 reports a second (15× the
peak), rounds up. Alongside, at twice the report rate, the reads of a dispatcher console: the case list of a
town (scoped account), vector tiles of open cases and components, OGC items of components in a 1 km box,
single components — around a fixed set of 300 places, as a console pans over its district, so that the
caches fill in the first minutes and later growth would be a leak. One report in ten carries an
Idempotency-Key (the keyed route), one in ten comes through Open311 with a partner api_key; the rest take the
lean path.

The load is open-loop (requests start on schedule, whatever the server's pace, from a pool of client
threads), so a slow server shows as latency, not as a lower rate. Every 10 s a sampler reads the server's
resident memory (the whole process tree, from /proc: Linux only), its open file descriptors, and the
database's connections (pg_stat_activity). The verdict compares the first five minutes after a one-minute
warm-up with the last five: memory and connection growth, and the ratio of their p50 and p99 latencies.
Results go to stdout and bench/results/soak.json; BENCHMARKS.md records them by hand.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import morecantile
from sqlalchemy import create_engine, text

from bench import machine, save
from bench.intake import bench_token, prepare, sample_reports, start_server
from spatial.access.accounts import add_user, create_token
from spatial.settings import DatabaseSettings

EXPECTED = {"report": {201}, "keyed": {200, 201}, "open311": {200, 201}, "list": {200}, "tile": {200, 204, 304},
            "items": {200}, "case": {200}}
TOWN = "320506001"  # a Wuzhong town: the dispatcher whose console the reads stand for
TIMEOUT_S = 30.0
READ_PLACES = 300


def dispatcher_token(url: str) -> str:
    """A bearer token of a town dispatcher (reads are scoped: spatial/access/scope.py)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM account WHERE login = 'soak.dispatcher'")).first():
            add_user(conn, "soak.dispatcher", role="dispatcher", scope=TOWN, password="soak password, not a secret")
        token = create_token(conn, "soak.dispatcher", label="soak", ttl=None)[0]
    engine.dispose()
    return token


class Clients:
    """One keep-alive connection per client thread; each call returns (status, seconds)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def call(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        for attempt in (1, 2):  # a keep-alive connection the server closed is reopened once
            connection = getattr(self.local, "connection", None)
            if connection is None:
                connection = self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                                timeout=TIMEOUT_S)
            try:
                connection.request(method, path, body=body, headers=headers)
                reply = connection.getresponse()
                reply.read()
                if reply.getheader("connection", "").lower() == "close":
                    connection.close()
                    self.local.connection = None
                return reply.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Plan:
    """What the n-th request of the run is (a fixed mix, see the module docstring)."""

    def __init__(self, reports: list[dict], partner: str, dispatcher: str, component_codes: list[str]) -> None:
        self.reports, self.partner, self.dispatcher = reports, partner, dispatcher
        self.codes = component_codes
        self.quad = morecantile.tms.get("WebMercatorQuad")
        self.rng = random.Random(5)
        self.case_ids: list[int] = []

    def request(self, n: int) -> tuple[str, str, str, bytes | None, dict[str, str]]:
        """(kind, method, path, body, headers) of request ``n``: reports on even n, reads on odd n."""
        report = self.reports[n % len(self.reports)]
        partner = {"Authorization": f"Bearer {self.partner}"}
        reader = {"Authorization": f"Bearer {self.dispatcher}"}
        if n % 3 == 0:  # one request in three is a report: rate R of reports, 2R of reads
            m = n // 3
            body = json.dumps(report).encode()
            if m % 10 == 1:
                return ("keyed", "POST", "/api/v1/cases", body,
                        {**partner, "Content-Type": "application/json", "Idempotency-Key": f"soak-{m}"})
            if m % 10 == 2:
                lon, lat = report["location"]["coordinates"]
                form = urllib.parse.urlencode({"service_code": report["category"], "long": lon, "lat": lat,
                                               "description": "soak", "api_key": self.partner}).encode()
                return ("open311", "POST", "/open311/v2/requests.json", form,
                        {"Content-Type": "application/x-www-form-urlencoded"})
            return "report", "POST", "/api/v1/cases", body, {**partner, "Content-Type": "application/json"}
        # Reads look at a fixed set of places (a console pans over its district), so that caches fill in the
        # first minutes and any later growth of memory is a leak, not a cache still filling.
        lon, lat = self.reports[(n // 3) % READ_PLACES]["location"]["coordinates"]
        pick = n % 4
        if pick == 0:
            return "list", "GET", f"/api/v1/cases?limit=50&area={TOWN}", None, reader
        if pick == 1:
            z = self.rng.choice((12, 14, 16))
            layer = "cases" if z < 16 else "components"
            t = self.quad.tile(lon, lat, z)
            return "tile", "GET", f"/tiles/{layer}/{z}/{t.x}/{t.y}.mvt", None, reader
        if pick == 2:
            box = f"{lon - 0.005},{lat - 0.005},{lon + 0.005},{lat + 0.005}"
            return "items", "GET", f"/ogc/collections/components/items?limit=100&bbox={box}", None, reader
        code = self.codes[n % len(self.codes)]
        return "case", "GET", f"/ogc/collections/components/items/{code}", None, reader


def _tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_mb_and_fds(root: int) -> tuple[float, int]:
    rss, fds = 0.0, 0
    for pid in _tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) / 1024
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return round(rss, 1), fds


def main() -> None:  # noqa: C901 - one linear script: setup, load, sampling, verdict
    """Run the soak and print its table and verdict."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=5, help="reports a second (reads run at twice this)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    args = parser.parse_args()
    url = prepare(DatabaseSettings())
    partner, dispatcher = bench_token(url), dispatcher_token(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        codes = [c for (c,) in conn.execute(text(
            "SELECT code FROM component WHERE district_code = '320506' ORDER BY code LIMIT 2000"))]
    reports = sample_reports(url, 50_000, seed=23)
    server, port = start_server(url, args.workers)
    plan, clients = Plan(reports, partner, dispatcher, codes), Clients(port)
    results: list[tuple[float, str, int, float]] = []  # (second of the run, kind, status, seconds)
    samples: list[dict] = []
    lock, stop = threading.Lock(), threading.Event()
    started = time.monotonic()

    def one(n: int, due: float) -> None:
        kind, method, path, body, headers = plan.request(n)
        began = time.perf_counter()
        try:
            status = clients.call(method, path, body, headers)
        except Exception:
            status = -1
        with lock:
            results.append((due, kind, status, time.perf_counter() - began))

    def sampler() -> None:
        while not stop.wait(10):
            rss, fds = _rss_mb_and_fds(server.pid)
            with engine.connect() as conn:
                backends = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                             " current_database()")).scalar_one()
            samples.append({"t": round(time.monotonic() - started), "rss_mb": rss, "fds": fds,
                            "db_connections": int(backends) - 1})  # less the sampler's own

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    total_rate = args.rate * 3
    end = args.minutes * 60
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            n = 0
            while True:
                due = n / total_rate
                if due >= end:
                    break
                wait = started + due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                pool.submit(one, n, due)
                n += 1
                if n % int(total_rate * 60) == 0:
                    minute = n // int(total_rate * 60)
                    with lock:
                        recent = [r for r in results if int(r[0] // 60) == minute - 1]
                    bad = sum(r[2] not in EXPECTED[r[1]] for r in recent)
                    last = samples[-1] if samples else {}
                    print(f"minute {minute:3d}: {len(recent):6d} requests, {bad} errors, "
                          f"rss {last.get('rss_mb')} MB, db connections {last.get('db_connections')}", flush=True)
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
        engine.dispose()

    minutes = int(args.minutes)
    per_minute = []
    for m in range(minutes):
        rows = [r for r in results if int(r[0] // 60) == m]
        lat = sorted(r[3] for r in rows) or [0.0]
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
        sample = [s for s in samples if m * 60 <= s["t"] < (m + 1) * 60]
        per_minute.append({"minute": m, "requests": len(rows),
                           "errors": sum(r[2] not in EXPECTED[r[1]] for r in rows),
                           "p50_ms": round(q[49] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
                           "rss_mb": max((s["rss_mb"] for s in sample), default=None),
                           "fds": max((s["fds"] for s in sample), default=None),
                           "db_connections": max((s["db_connections"] for s in sample), default=None)})

    def window(rows: list[dict], key: str) -> float:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.median(values) if values else float("nan")

    first, last = per_minute[1:6], per_minute[-5:]
    errors = [r for r in results if r[2] not in EXPECTED[r[1]]]
    kinds = {k: sum(1 for r in results if r[1] == k) for k in EXPECTED}
    verdict = {
        "requests": len(results), "by_kind": kinds, "errors": len(errors),
        "error_examples": [{"kind": r[1], "status": r[2]} for r in errors[:10]],
        "rss_mb_first": window(first, "rss_mb"), "rss_mb_last": window(last, "rss_mb"),
        "db_connections_max": max((s["db_connections"] for s in samples), default=None),
        "db_connections_first": window(first, "db_connections"), "db_connections_last": window(last, "db_connections"),
        "fds_first": window(first, "fds"), "fds_last": window(last, "fds"),
        "p50_ratio_last_over_first": round(window(last, "p50_ms") / window(first, "p50_ms"), 2),
        "p99_ratio_last_over_first": round(window(last, "p99_ms") / window(first, "p99_ms"), 2),
    }
    print(f"\n{'minute':>6} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'rss MB':>8} {'fds':>5}"
          f" {'db conn':>8}")
    for row in per_minute:
        print(f"{row['minute']:6d} {row['requests']:9d} {row['errors']:7d} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f}"
              f" {row['rss_mb'] or 0:8.1f} {row['fds'] or 0:5d} {row['db_connections'] or 0:8d}")
    print(f"\nrequests {verdict['requests']:,} ({kinds}), errors {verdict['errors']}")
    print(f"memory (server tree RSS, median of minutes 1-5 → last 5): {verdict['rss_mb_first']} → "
          f"{verdict['rss_mb_last']} MB")
    print(f"database connections: {verdict['db_connections_first']} → {verdict['db_connections_last']} "
          f"(max {verdict['db_connections_max']}); file descriptors {verdict['fds_first']} → {verdict['fds_last']}")
    print(f"latency ratio last 5 / first 5 minutes: p50 {verdict['p50_ratio_last_over_first']}, "
          f"p99 {verdict['p99_ratio_last_over_first']}")
    save("soak.json", {
        "machine": machine(),
        "minutes": args.minutes, "rate_reports_per_s": args.rate, "workers": args.workers, "verdict": verdict,
        "per_minute": per_minute, "samples": samples})


if __name__ == "__main__":
    main()
