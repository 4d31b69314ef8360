"""Load test: the public endpoints' p99 while one account floods /ogc with expensive CQL2 requests, and while
40 clients flood the login with wrong passwords — against the same endpoints on a quiet server, in one run.

    .venv/bin/python -m bench.flood [--seconds 30] [--probes 4]

(``bench/load.py`` is the demo-build benchmark; this is issue 23's load test.)

1. The full demo (942 + 899 base grids, 680,000 components, a year of cases) is the benchmark's template
   database, shared with bench/intake.py and bench/ogc.py, built once and otherwise only read (this adds
   two accounts and their tokens). ``gridlink serve`` runs as one process on loopback, as in production.
2. Public traffic: ``--probes`` anonymous clients, each one keep-alive connection, request back to back in
   turn ``/api/v1/locate`` (a random point of Wuzhong), ``/ogc/collections/grids/items?limit=10`` with a
   random 2 km bbox, a grids vector tile at z14 (a random one of 50 around Wuzhong's centre: cached after
   its first request, as a panning map's are) and Open311 ``services.json``. Each phase's p50/p99 is over
   every request of every probe; no answer, a 429 or a 5xx counts as an error.
3. Phases, each ``--seconds`` long, after a warm-up: quiet (the probes alone); CQL2 flood (one account, 12
   clients back to back, each in turn the attack of issue 23 — ``S_DISJOINT`` with a 200-vertex polygon on
   components, now refused — a 480-vertex polygon over half of Wuzhong with limit=5000, and a
   case-insensitive ``ILIKE`` no index serves, which scans the table until the time budget stops it);
   login flood (40 clients posting wrong passwords for one existing login back to back; whatever
   throttling answers, 401 or 429, is counted); both floods at once.
4. Printed: per phase the public p50/p99 and their ratio to the quiet phase, the public p99 per endpoint,
   and what the flooders got (status counts, requests/s). Target (issue 23): public p99 under 1 s in every
   phase. Writes bench/results/flood.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import statistics
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

import morecantile

from bench import machine, save
from bench.intake import bench_token, start_server, template
from spatial.settings import DatabaseSettings

WUZHONG = (120.40, 31.05, 120.75, 31.35)  # lon/lat box inside Wuzhong's base grids (most points land in one)
CENTRE = (120.60, 31.25)
FLOOD_LOGIN = "bench.flood"
CQL2_CLIENTS = 12
LOGIN_CLIENTS = 40


def polygon(vertices: int, lon: float, lat: float, radius: float) -> str:
    """A closed WKT polygon of ``vertices`` vertices."""
    ring = [(lon + radius * math.cos(2 * math.pi * i / vertices), lat + radius * math.sin(2 * math.pi * i / vertices))
            for i in range(vertices)]
    ring.append(ring[0])
    return "POLYGON((" + ",".join(f"{x:.6f} {y:.6f}" for x, y in ring) + "))"


def expensive_paths() -> list[str]:
    """The flood's requests (see the module docstring)."""
    items = "/ogc/collections/components/items?"
    return [
        items + urllib.parse.urlencode({"filter": f"S_DISJOINT(geometry, {polygon(200, *CENTRE, 0.05)})"}),
        items + urllib.parse.urlencode({"filter": f"S_INTERSECTS(geometry, {polygon(480, *CENTRE, 0.15)})",
                                        "limit": 5000}),
        items + urllib.parse.urlencode({"filter": "name ILIKE 'zz%'", "limit": 100}),
    ]


class Client:
    """One keep-alive HTTP connection that reconnects after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
        """The status of one request (0: the connection failed)."""
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.connection.request(method, path, body=body, headers=headers or {})
            reply = self.connection.getresponse()
            reply.read()
            if reply.getheader("connection", "").lower() == "close":
                self.close()
            return reply.status
        except (OSError, http.client.HTTPException):
            self.close()
            return 0

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def public_requests(seed: int) -> Callable[[], tuple[str, str]]:
    """An endless round of (endpoint, path) for one probe."""
    rng = random.Random(seed)
    tms = morecantile.tms.get("WebMercatorQuad")
    centre = tms.tile(*CENTRE, 14)
    tiles = [(centre.x + dx, centre.y + dy) for dx in range(-3, 4) for dy in range(-3, 4)][:50]
    endpoints = ["locate", "ogc grids", "tile", "open311 services"]
    turn = [0]

    def nxt() -> tuple[str, str]:
        name = endpoints[turn[0] % len(endpoints)]
        turn[0] += 1
        if name == "locate":
            lon, lat = rng.uniform(WUZHONG[0], WUZHONG[2]), rng.uniform(WUZHONG[1], WUZHONG[3])
            return name, f"/api/v1/locate?lon={lon:.5f}&lat={lat:.5f}"
        if name == "ogc grids":
            lon, lat = rng.uniform(WUZHONG[0], WUZHONG[2] - 0.02), rng.uniform(WUZHONG[1], WUZHONG[3] - 0.02)
            box = f"{lon:.4f},{lat:.4f},{lon + 0.02:.4f},{lat + 0.02:.4f}"
            return name, f"/ogc/collections/grids/items?limit=10&bbox={box}&f=json"
        if name == "tile":
            x, y = rng.choice(tiles)
            return name, f"/tiles/grids/14/{x}/{y}.mvt"
        return name, "/open311/v2/services.json"

    return nxt


def run_phase(port: int, seconds: float, probes: int, floods: list[Callable[[threading.Event], None]]) -> dict:
    """Run the probes (and ``floods``, each in its own threads) for ``seconds``; the probes' figures."""
    stop = threading.Event()
    samples: list[tuple[str, float, int]] = []
    lock = threading.Lock()

    def probe(i: int) -> None:
        client, nxt, mine = Client(port), public_requests(1000 + i), []
        while not stop.is_set():
            name, path = nxt()
            started = time.perf_counter()
            status = client.call("GET", path)
            mine.append((name, time.perf_counter() - started, status))
        client.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=flood, args=(stop,), daemon=True) for flood in floods]
    threads += [threading.Thread(target=probe, args=(i,), daemon=True) for i in range(probes)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=180)
    return figures(samples)


def failed(status: int) -> bool:
    """Whether a public request failed: no answer, throttled, or a server error (a point of the box outside
    every grid is a 422 answer, not a failure)."""
    return status == 0 or status == 429 or status >= 500


def figures(samples: list[tuple[str, float, int]]) -> dict[str, Any]:
    """p50/p99 in ms overall and per endpoint, request and error counts."""
    def pct(values: list[float]) -> dict[str, float]:
        if len(values) < 2:
            return {"p50_ms": 0.0, "p99_ms": 0.0}
        q = statistics.quantiles(values, n=100, method="inclusive")
        return {"p50_ms": round(q[49] * 1000, 1), "p99_ms": round(q[98] * 1000, 1)}

    out: dict[str, Any] = {"requests": len(samples), "errors": sum(1 for _, _, s in samples if failed(s)),
                           **pct([t for _, t, _ in samples])}
    out["endpoints"] = {name: {"requests": sum(1 for n, _, _ in samples if n == name),
                               **pct([t for n, t, _ in samples if n == name])}
                        for name in sorted({n for n, _, _ in samples})}
    return out


class Flood:
    """Flooding clients and what they got back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()

    def _loop(self, stop: threading.Event, send: Callable[[Client, int], int]) -> None:
        client, mine, i = Client(self.port), Counter[int](), 0
        while not stop.is_set():
            mine[send(client, i)] += 1
            i += 1
        client.close()
        with self.lock:
            self.statuses.update(mine)

    def cql2(self, token: str, offset: int) -> Callable[[threading.Event], None]:
        """One of the account's CQL2 flooders (``offset`` staggers which request each starts with)."""
        paths, headers = expensive_paths(), {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return lambda stop: self._loop(stop, lambda c, i: c.call("GET", paths[(i + offset) % len(paths)],
                                                                    headers=headers))

    def login(self) -> Callable[[threading.Event], None]:
        """One wrong-password flooder."""
        body = urllib.parse.urlencode({"username": FLOOD_LOGIN, "password": "not the password"}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return lambda stop: self._loop(stop, lambda c, i: c.call("POST", "/api/v1/auth/token", body, headers))


def main() -> None:
    """Run the phases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="length of each phase")
    parser.add_argument("--probes", type=int, default=4, help="anonymous clients measuring the public endpoints")
    args = parser.parse_args()
    url = template(DatabaseSettings())  # the full demo, built once
    token = bench_token(url, FLOOD_LOGIN)
    server, port = start_server(url, workers=1)
    phases: dict[str, dict] = {}
    floods: dict[str, dict] = {}
    try:
        run_phase(port, 5, args.probes, [])  # warm-up: connections, caches, plans
        phases["quiet"] = run_phase(port, args.seconds, args.probes, [])
        for name, make in (("cql2 flood", lambda f: [f.cql2(token, i) for i in range(CQL2_CLIENTS)]),
                           ("login flood", lambda f: [f.login() for _ in range(LOGIN_CLIENTS)]),
                           ("both floods", lambda f: [f.cql2(token, i) for i in range(CQL2_CLIENTS)]
                            + [f.login() for _ in range(LOGIN_CLIENTS)])):
            flood = Flood(port)
            phases[name] = run_phase(port, args.seconds, args.probes, make(flood))
            total = sum(flood.statuses.values())
            floods[name] = {"requests": total, "per_s": round(total / args.seconds, 1),
                            "statuses": {str(k): v for k, v in sorted(flood.statuses.items())}}
    finally:
        server.terminate()
        server.wait(timeout=30)
    quiet = phases["quiet"]
    print(f"\n{'phase':14} {'public p50':>11} {'p99':>9} {'p99/quiet':>10} {'requests':>9} {'errors':>7}"
          "   flood: requests/s, statuses")
    for name, got in phases.items():
        ratio = got["p99_ms"] / quiet["p99_ms"] if quiet["p99_ms"] else 0
        flood_text = (f"   {floods[name]['per_s']}/s {floods[name]['statuses']}" if name in floods else "")
        print(f"{name:14} {got['p50_ms']:9.1f}ms {got['p99_ms']:7.1f}ms {ratio:10.2f} {got['requests']:9d}"
              f" {got['errors']:7d}{flood_text}")
    print(f"\n{'public p99 (ms)':18}" + "".join(f"{n:>14}" for n in phases))
    for endpoint in quiet["endpoints"]:
        print(f"{endpoint:18}" + "".join(f"{p['endpoints'].get(endpoint, {}).get('p99_ms', 0):14.1f}"
                                         for p in phases.values()))
    worst = max(p["p99_ms"] for p in phases.values())
    print(f"\nworst public p99: {worst:.1f} ms — target < 1000 ms: {'met' if worst < 1000 else 'MISSED'}")
    save("flood.json", {"machine": machine(), "seconds": args.seconds, "probes": args.probes,
                        "cql2_clients": CQL2_CLIENTS, "login_clients": LOGIN_CLIENTS, "phases": phases,
                        "floods": floods, "ratio_p99_to_quiet": {n: round(p["p99_ms"] / quiet["p99_ms"], 2)
                                                                 for n, p in phases.items() if quiet["p99_ms"]}})
    print(json.dumps(floods, ensure_ascii=False))


if __name__ == "__main__":
    main()
