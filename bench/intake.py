"""Benchmark: sustained HTTP case intake with full assignment on the full demo, against its floor.

    .venv/bin/python -m bench.intake [--seconds 30] [--clients 8] [--bulk 100000] [--shared]

1. A database with the full demo (built once, then reused while the generator is unchanged) is copied to a
   scratch database for the run, so that the cases the benchmark adds never pile up — one copy for HTTP and
   one for the floor (``--shared``: both sides in one copy, as before session 13: each round then met the
   cases, dead row versions and vacuum work of the other side's rounds).
2. Floor: the same intake statement the API runs (spatial/store/sql/intake.sql: assign, store the case and its
   first events), once per report and committed, over direct connections, one per client, without HTTP.
3. HTTP: ``gridlink serve`` in a child process; N client threads POST /api/v1/cases (assign, store, reply,
   commit) with keep-alive connections; cases/s and p50/p99 latency.
   Floor and HTTP alternate in R rounds (default 6 × 5 s each), so that both meet the same machine: these
   VMs drift by tens of per cent within a minute, which made back-to-back 30 s runs incomparable.
4. Bulk: one POST /api/v1/cases/bulk of B reports (GeoJSON), timed end to end.
Prints one table; writes bench/results/intake.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import create_engine, text

from bench import machine, save
from spatial.cases.assignment.rules import AssignmentInput, report_params
from spatial.demo.build import build_demo
from spatial.reference.cache import ReferenceCache
from spatial.settings import DatabaseSettings
from spatial.store.cluster import free_port
from spatial.store.db import database_url
from spatial.store.sql import run_prepared

TEMPLATE = "gridlink_bench_demo"
SCRATCH = "gridlink_bench_intake"


def template(settings: DatabaseSettings) -> str:
    """Build (or reuse, while the generator is unchanged) the full-demo template; return its URL."""
    from alembic import command

    from migrations import alembic_config

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": TEMPLATE}).scalar():
            conn.execute(text(f'CREATE DATABASE "{TEMPLATE}"'))
    admin.dispose()
    template_url = database_url(settings, TEMPLATE)
    command.upgrade(alembic_config(template_url), "head")
    engine = create_engine(template_url)
    build_demo(engine, force=True)
    engine.dispose()
    return template_url


def prepare(settings: DatabaseSettings) -> str:
    """Build (or reuse) the demo template and return the URL of a fresh scratch copy of it."""
    template(settings)
    return fresh_copy(settings, SCRATCH)


def fresh_copy(settings: DatabaseSettings, name: str) -> str:
    """A fresh copy of the demo template named ``name`` (dropped first if it exists); its URL."""
    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    admin.dispose()
    return database_url(settings, name)


def scratch_at_head(settings: DatabaseSettings, name: str) -> str:
    """A fresh copy ``name`` of the full-demo template (built first when missing), upgraded to head: the template
    is reused while the generator is unchanged, so its schema may be older than the code. Its URL."""
    from alembic import command

    from migrations import alembic_config

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": TEMPLATE}).scalar()
    admin.dispose()
    if not exists:
        template(settings)
    url = fresh_copy(settings, name)
    print("bench: upgrading the scratch copy to head …", file=sys.stderr)
    command.upgrade(alembic_config(url), "head")
    return url


def bench_token(url: str, login: str = "bench.partner") -> str:
    """A bearer token of a city-wide partner account (the hotline system) in the scratch database: intake
    needs an account (spatial/access/scope.py)."""
    from spatial.access.accounts import add_user, create_token

    engine = create_engine(url)
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM account WHERE login = :l"), {"l": login}).first():
            add_user(conn, login, role="partner", scope="*", password="bench password, not a secret")
        token = create_token(conn, login, label="bench", ttl=None)[0]
    engine.dispose()
    return token


def sample_reports(url: str, count: int, seed: int = 7) -> list[dict]:
    """Return ``count`` report bodies at random places inside Wuzhong's base grids, random categories."""
    engine = create_engine(url)
    with engine.connect() as conn:
        points = conn.execute(text(
            "SELECT ST_X(p.geom), ST_Y(p.geom) FROM grid_geometry gg,"
            " LATERAL ST_Dump(ST_GeneratePoints(gg.geom, :per, :seed)) AS p"
            " WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND gg.grid_code LIKE '320506%'"
        ), {"per": max(1, count // 900 + 1), "seed": seed}).all()
        anchors = conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM component TABLESAMPLE SYSTEM (2) REPEATABLE (:seed)"
            " WHERE GeometryType(geom) = 'POINT' AND district_code = '320506' LIMIT :n"),
            {"seed": seed, "n": count}).all()
        categories = [c for (c,) in conn.execute(text(
            "SELECT code FROM event_category WHERE time_limit IS NOT NULL ORDER BY code"))]
    engine.dispose()
    rng = random.Random(seed)
    bodies = []
    for i in range(count):
        # Half the reports sit on a Wuzhong component (so component categories bind one), half anywhere in
        # Wuzhong's base grids: all inside coverage (components elsewhere can lie where no base grid is).
        lon, lat = anchors[i % len(anchors)] if i % 2 else points[rng.randrange(len(points))]
        bodies.append({"category": rng.choice(categories), "description": "bench",
                       "location": {"type": "Point", "coordinates": [round(lon + rng.uniform(-5e-5, 5e-5), 7),
                                                                     round(lat + rng.uniform(-5e-5, 5e-5), 7)]},
                       # the bench account is the hotline system's partner, which reports as 'hotline' only
                       # (issue 23: the source follows the account; any other was refused with 403)
                       "source": "hotline"})
    return bodies


def _spread(reports: list[dict], clients: int, seconds: float, work) -> tuple[int, list[float], float]:
    """Run ``work(i, body)`` from ``clients`` threads for ``seconds``; return count, latencies, elapsed."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        n = i
        while time.perf_counter() < stop:
            started = time.perf_counter()
            work(i, reports[n % len(reports)])
            latencies[i].append(time.perf_counter() - started)
            n += clients

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = [x for part in latencies for x in part]
    return len(flat), flat, elapsed


class Floor:
    """The intake statement (assign + store + first events, sql/intake.sql) per report, prepared, one commit
    each, over direct connections: everything the HTTP path does except HTTP and Python web framework work."""

    def __init__(self, url: str, clients: int) -> None:
        self.engine = create_engine(url, pool_size=clients)
        with self.engine.connect() as conn:
            self.ref = ReferenceCache.load(conn)
        # Each report is its own transaction in one round trip (autocommit): with a COMMIT sent afterwards by the
        # client, a backend stayed idle in transaction — holding its rows — until one of the bench's Python
        # threads got the interpreter and the CPU back to send it (BENCHMARKS.md, intake, run 20).
        self.conns = [self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") for _ in range(clients)]

    def begin(self) -> None:
        """Nothing to do: direct connections stay open."""

    def work(self, i: int, body: dict) -> None:
        """Run one report on connection ``i``."""
        lon, lat = body["location"]["coordinates"]
        cat = self.ref.categories[body["category"]]
        at = datetime.now(UTC)
        # the report's own source: its trust decides which open originals it may be linked to as a duplicate
        # (an inspector's report only to verified ones), so the floor does the HTTP path's work
        params = {**report_params(AssignmentInput(cat, lon, lat, at, source=body["source"])), "source": body["source"],
                  "description": body["description"], "actor": "bench", "reporter_name": None,
                  "reporter_phone": None, "idempotency_key": None, "scope_area": None,
                  "audit_who": "bench.partner", "audit_role": "partner", "audit_client": "127.0.0.1",
                  "deadline": self.ref.calendar.deadline(at, cat.time_limit, cat.time_unit)}
        # run_prepared executes on the driver's cursor; the connection is in autocommit, so the statement
        # commits itself (before session 12 the floor never committed: one transaction for the whole run).
        run_prepared(self.conns[i], "intake", params)

    def close(self) -> None:
        """Close the connections."""
        for conn in self.conns:
            conn.close()
        self.engine.dispose()


def _figures(count: int, latencies: list[float], elapsed: float) -> dict:
    quantiles = statistics.quantiles(latencies, n=100)
    return {"requests": count, "per_s": round(count / elapsed, 1), "p50_ms": round(quantiles[49] * 1000, 2),
            "p99_ms": round(quantiles[98] * 1000, 2)}


def start_server(url: str, workers: int, tree: str | None = None) -> tuple[subprocess.Popen, int]:
    """Start ``gridlink serve`` on a free loopback port; return the process and the port. ``tree``: serve the
    code of another checkout (bench/versus.py) with this virtual environment."""
    port = free_port()
    env = dict(os.environ, GRIDLINK_DATABASE_URL=url, **({"PYTHONPATH": tree} if tree else {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning"], env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/api/v1/health")
            if probe.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the server did not start")


class Http:
    """POST /api/v1/cases from keep-alive connections, one per client.

    The client is a minimal HTTP/1.1 one (a socket, a prebuilt request, the reply read by Content-Length):
    it runs on the same two cores as the server and PostgreSQL, and ``http.client`` spent 0.4 ms of CPU per
    request parsing headers through the ``email`` package, as much as a third of the server's own work.
    The floor's client is likewise lean (a prepared statement on a direct connection).
    """

    def __init__(self, port: int, clients: int, token: str) -> None:
        self.port, self.clients, self.token = port, clients, token.encode()
        self.sockets: list[socket.socket | None] = [None] * clients
        self.errors: list[int] = []

    def begin(self) -> None:
        """Open fresh connections (the server closes keep-alive connections idle for 5 s)."""
        for i, sock in enumerate(self.sockets):
            if sock is not None:
                sock.close()
            self.sockets[i] = socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def work(self, i: int, body: dict) -> None:
        """Send one report on connection ``i`` and read the whole reply."""
        payload = json.dumps(body).encode()
        sock = self.sockets[i]
        if sock is None:
            sock = self.sockets[i] = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(b"POST /api/v1/cases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (self.token, len(payload), payload))
        status, closing = _read_reply(sock)
        if closing:
            sock.close()
            self.sockets[i] = None
        if status not in (200, 201, 422):
            self.errors.append(status)


def _read_reply(sock: socket.socket) -> tuple[int, bool]:
    """Read one HTTP/1.1 reply with a Content-Length; return its status and whether the server closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-reply")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    fields = dict(line.split(b":", 1) for line in lines[1:])
    fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
    length = int(fields.get(b"content-length", b"0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-reply")
        rest += chunk
    return status, fields.get(b"connection", b"").lower() == b"close"


def interleaved(reports: list[dict], clients: int, seconds: float, rounds: int, runners: dict) -> dict:
    """Run each runner for ``seconds / rounds`` in turn, ``rounds`` times, so that both sides see the same
    machine (these VMs drift by tens of per cent within a minute); return totals and per-round rates."""
    totals = {name: {"count": 0, "elapsed": 0.0, "latencies": [], "rates": []} for name in runners}
    offset = 0
    for _ in range(rounds):
        for name, runner in runners.items():
            runner.begin()
            count, latencies, elapsed = _spread(reports[offset:] + reports[:offset], clients, seconds / rounds,
                                                runner.work)
            offset = (offset + count) % len(reports)
            total = totals[name]
            total["count"] += count
            total["elapsed"] += elapsed
            total["latencies"] += latencies
            total["rates"].append(count / elapsed)
    out = {}
    for name, total in totals.items():
        out[name] = _figures(total["count"], total["latencies"], total["elapsed"])
        out[name]["per_round"] = [round(rate, 1) for rate in total["rates"]]
    return out


def bulk(port: int, reports: list[dict], size: int, token: str) -> dict:
    """POST one batch of ``size`` fresh reports as a GeoJSON FeatureCollection; time it end to end."""
    features = [{"type": "Feature", "geometry": body["location"],
                 "properties": {"category": body["category"], "description": body["description"]}}
                for body in reports[:size]]
    payload = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("POST", "/api/v1/cases/bulk", body=payload,
                       headers={"Content-Type": "application/geo+json", "Authorization": f"Bearer {token}"})
    reply = connection.getresponse()
    report = json.loads(reply.read())
    seconds = time.perf_counter() - started
    if reply.status != 200:  # a refused batch is no timing: say why instead of printing None counts
        print(f"WARNING: the batch was answered {reply.status}: {report.get('title')}: {report.get('detail')}",
              file=sys.stderr)
    return {"rows": size, "seconds": round(seconds, 2), "rows_per_s": round(size / seconds), "status": reply.status,
            "created": report.get("created"), "duplicates": report.get("duplicates"),
            "refused": report.get("refused"), "megabytes": round(len(payload) / 1e6, 1)}


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--rounds", type=int, default=6, help="floor and HTTP alternate this many times")
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--bulk-only", action="store_true", help="skip the sustained runs (bulk timing only)")
    parser.add_argument("--shared", action="store_true",
                        help="floor and HTTP write into one copy (default: each into its own copy of the template)")
    args = parser.parse_args()
    url = prepare(DatabaseSettings())
    # Each side writes into its own copy of the same template unless --shared: on one copy, each round met
    # the cases, dead row versions and vacuum work the other side's rounds had left (BENCHMARKS.md, intake).
    floor_url = url if args.shared else fresh_copy(DatabaseSettings(), SCRATCH + "_floor")
    token = bench_token(url)
    if args.bulk_only:
        server, port = start_server(url, args.workers)
        try:
            batch = bulk(port, sample_reports(url, args.bulk, seed=11), args.bulk, token)
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"bulk: {batch['rows']:,} reports in {batch['seconds']} s ({batch['rows_per_s']:,}/s): "
              f"{batch['created']} created, {batch['duplicates']} duplicates, {batch['refused']} refused")
        return
    reports = sample_reports(url, 20_000)
    server, port = start_server(url, args.workers)
    floor = Floor(floor_url, args.clients)
    try:
        client = Http(port, args.clients, token)
        _spread(reports[::-1], args.clients, 3, client.work)  # warm-up: pools, caches, prepared plans
        _spread(reports[::-1], args.clients, 3, floor.work)
        runs = interleaved(reports, args.clients, args.seconds, args.rounds, {"floor": floor, "http": client})
        base, served = runs["floor"], runs["http"]
        served["errors"] = len(client.errors)
        served["error_statuses"] = {str(k): v for k, v in sorted(Counter(client.errors).items())}
        batch = bulk(port, sample_reports(url, args.bulk, seed=11), args.bulk, token)
    finally:
        floor.close()
        server.terminate()
        server.wait(timeout=30)
    round_ratios = [h / f for h, f in zip(served["per_round"], base["per_round"], strict=True)]
    result = {"machine": machine(), "copies": "shared" if args.shared else "one per side",
              "clients": args.clients, "workers": args.workers, "seconds": args.seconds, "floor": base,
              "http": served, "ratio_http_over_floor": round(served["per_s"] / base["per_s"], 2),
              "ratio_median_of_rounds": round(statistics.median(round_ratios), 2), "bulk": batch}
    print(f"\n{'one copy for both sides' if args.shared else 'each side on its own copy of the template'}")
    print(f"floor (intake.sql per report, {args.clients} direct connections): {base['per_s']:8.1f} /s"
          f"  p50 {base['p50_ms']} ms  p99 {base['p99_ms']} ms")
    print(f"HTTP POST /api/v1/cases ({args.clients} clients, {args.workers} workers): {served['per_s']:8.1f} /s"
          f"  p50 {served['p50_ms']} ms  p99 {served['p99_ms']} ms  errors {served['errors']}"
          f" {served['error_statuses'] or ''}")
    print(f"ratio HTTP / floor: {result['ratio_http_over_floor']} (median of {args.rounds} rounds:"
          f" {result['ratio_median_of_rounds']}; rounds floor {base['per_round']}, HTTP {served['per_round']})")
    print(f"bulk: {batch['rows']:,} reports in {batch['seconds']} s ({batch['rows_per_s']:,}/s): "
          f"{batch['created']} created, {batch['duplicates']} duplicates, {batch['refused']} refused")
    save("intake.json", result)
    if served["errors"]:
        print(f"WARNING: {served['errors']} HTTP requests were refused or failed {served['error_statuses']}: the"
              " rates above are not the intake's", file=sys.stderr)


if __name__ == "__main__":
    main()
