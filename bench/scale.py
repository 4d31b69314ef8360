"""Benchmark, issue 22's scale measurements: what PgBouncer (Debian ``pgbouncer``) costs and what it breaks for
gridlink's drivers; how long writes stop in a failover, and whether any are lost; read throughput with no, one
and two replicas; the province against the city.

    .venv/bin/python -m bench.scale [--part pgbouncer|failover|province|replicas|all] [--seconds 3] [--rounds 3]
                                    [--clients 8] [--workers 2] [--fraction 0.1] [--district 320501] [--requests 200]
                                    [--keep]

Part ``replicas``: read throughput with no, one and two streaming replicas. The small demo on a throw-away
primary (``.gridlink/bench-replicas``, built like the failover part's) with two hot standbys made by
``spatial/store/replicas.py``; for each setting a ``gridlink serve --workers W`` (default 2, one per core) with
``GRIDLINK_READ_DATABASE_URLS`` naming none, one or both replicas; N client threads (``--clients``) cycle
through the same read mix for S seconds (``--seconds``) — the reads spatial/store/routing.py sends to replicas:
z14 component and case tiles, OGC items pages (components and cases, bbox), the case list (newest, by town, by
period) and KPIs of the data's last 30 days (the whole map by town, one town by grid) — at places and dates
taken from the data (``read_mix``). The settings alternate in R rounds (``--rounds``; each round starts with
the next setting), a fresh server each time, 1 s of untimed warm-up first. Prints requests/s (median of the
rounds), p50 / p95 (all rounds' samples), the ratio to no replica, whether every answer was 200, and the
transactions each node ran meanwhile (``pg_stat_database`` of ``gridlink``, read after the server has stopped so
every backend has flushed its counts) — which proves that the replicas served the reads.

Part ``province``: the same operations on the city (the Suzhou demo, database ``gridlink_bench_scale_city``,
built once and reused while the generator is unchanged) and on the province (``gridlink demo --scale
province --fraction F``, spatial/demo/province.py, in the scratch database ``gridlink_bench_scale_province``,
dropped afterwards unless ``--keep``), each with its own ``gridlink serve`` (one worker) and one keep-alive
client; each row is a median in ms and the ratio province / city:
locate (``--requests`` points in random base grids of the whole map), intake (POST /api/v1/cases at the same
points, categories that need no component), OGC items (limit=100, bbox around the 40 busiest base grids of
the district — Wuzhong 320506 in the city, ``--district`` in the province — as wide as the 100th nearest
component, so both pages hold 100 features), a cold z14 component tile at those grids, the KPI of the month
(one district by grid, the whole map by district), and the commit of one boundary move of the district's
busiest grid (bench/planning.py's move, rolled back; ``--rounds`` times). Prints the sizes, the cases each
KPI reads and what each move reassigned, so that "proportional to the area touched" can be read off.

Part ``failover``: the small demo on a throw-away primary with a replica (``spatial/store/replicas.py``), one
``gridlink serve`` on a two-host URL with ``target_session_attrs=read-write``, 4 clients posting reports with
Idempotency-Keys (retried with them until acknowledged); after 5 s the primary is stopped (fast shutdown) and
the replica promoted at once (what patroni does after its leader TTL; that wait is not part of this figure).
Prints the seconds without an acknowledged write, acknowledged reports lost and reports stored twice.

Part ``pgbouncer``:

A throw-away embedded cluster (``.gridlink/bench-scale``) and a PgBouncer in front of it (run as the cluster's
account, transaction mode, 4 server connections, on a free port) — never the shared cluster.

1. Round trips: N client threads, each with its own open psycopg2 connection, run a one-row indexed read in a
   transaction (BEGIN; SELECT; COMMIT: what a gridlink request does) for S seconds; direct and through
   PgBouncer alternate in R rounds. Ratio = through / direct throughput.
2. Connection per request: the same, but each transaction opens and closes its connection (a client without a
   pool: CLI calls, short scripts). Ratio as above.
3. What breaks in transaction mode, tried, not assumed: the asyncpg pool as the lean intake path sets it up
   (prepared statements, startup settings), asyncpg with ``statement_cache_size=0``, psycopg2 with
   ``options=-c statement_timeout=…`` (what ``make_engine`` sends), and LISTEN (the token watcher).
Prints one table; writes bench/results/scale.json. Needs ``apt-get install pgbouncer``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import threading
import time

import psycopg2

from bench import machine, save
from spatial.settings import PROJECT_ROOT
from spatial.store import replicas
from spatial.store.cluster import SUPERUSER, Cluster
from spatial.store.pgbouncer import start_pgbouncer

HOME = PROJECT_ROOT / ".gridlink" / "bench-scale"


def throughput(port: int, password: str, clients: int, seconds: float, reconnect: bool) -> float:
    """Transactions per second of ``clients`` threads on ``port`` for ``seconds``."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def connect():
        return psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, password=password, dbname="gridlink")

    def client(i: int) -> None:
        conn = None if reconnect else connect()
        while time.monotonic() < stop:
            current = conn or connect()
            with current, current.cursor() as cur:
                cur.execute("SELECT note FROM probe WHERE id = %s", (done[i] % 1000 + 1,))
                cur.fetchone()
            if reconnect:
                current.close()
            done[i] += 1
        if conn:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


async def _asyncpg_intake_like(port: int, password: str, **options) -> str:
    import asyncpg

    pool = await asyncpg.create_pool(host="127.0.0.1", port=port, user=SUPERUSER, password=password,
                                     database="gridlink", min_size=4, max_size=4, **options)
    try:
        results = await asyncio.gather(*(pool.fetchval("SELECT note FROM probe WHERE id = $1", i % 1000 + 1)
                                         for i in range(400)))
        return f"works ({len(results)} concurrent statements)"
    finally:
        await pool.close()


def try_it(what) -> str:
    """What happened: 'works …' or the error's first line."""
    try:
        return what()
    except Exception as exc:  # the error is the finding
        return f"breaks: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"


def listen_heard(port: int, notify_port: int, password: str) -> str:
    """LISTEN through ``port``; NOTIFY directly; tell whether the listener heard it within 3 s."""
    import select

    listener = psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, password=password, dbname="gridlink")
    listener.autocommit = True
    try:
        listener.cursor().execute("LISTEN bench_scale")
        # other clients' transactions through the same PgBouncer take the server connection in between
        throughput(port, password, 4, 0.5, reconnect=False)
        talker = psycopg2.connect(host="127.0.0.1", port=notify_port, user=SUPERUSER, password=password,
                                  dbname="gridlink")
        talker.autocommit = True
        talker.cursor().execute("NOTIFY bench_scale, 'hello'")
        talker.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if select.select([listener], [], [], 0.2)[0]:
                listener.poll()
                if listener.notifies:
                    return "works (heard)"
            else:
                listener.cursor().execute("SELECT 1")  # a notification may arrive with any reply
                listener.poll()
                if listener.notifies:
                    return "works (heard)"
        return "breaks: the NOTIFY never reached the listener"
    finally:
        listener.close()


def compatibility(cluster: Cluster, password: str) -> dict[str, str]:
    """Each driver habit of gridlink tried through a fresh PgBouncer in transaction mode (one may crash it)."""
    direct = cluster.state().port  # type: ignore[union-attr]
    intake = {"server_settings": {"plan_cache_mode": "force_generic_plan", "statement_timeout": "30000"}}
    cases = {
        "asyncpg pool as the lean intake (prepared statements, startup settings)":
            lambda port: asyncio.run(_asyncpg_intake_like(port, password, **intake)),
        "asyncpg pool, prepared statements only": lambda port: asyncio.run(_asyncpg_intake_like(port, password)),
        "asyncpg pool, statement_cache_size=0":
            lambda port: asyncio.run(_asyncpg_intake_like(port, password, statement_cache_size=0)),
        "psycopg2 with options=-c statement_timeout (make_engine)": lambda port: psycopg2.connect(
            host="127.0.0.1", port=port, user=SUPERUSER, password=password, dbname="gridlink",
            options="-c statement_timeout=30000").close() or "works",
        "LISTEN (token watcher, procrastinate)": lambda port: listen_heard(port, direct, password),
    }
    found = {}
    for what, case in cases.items():
        bouncer, port = start_pgbouncer(cluster, HOME / "pgbouncer")
        try:
            found[what] = try_it(lambda case=case, port=port: case(port))
            if bouncer.poll() is not None:
                found[what] += f" — and PgBouncer itself exited (status {bouncer.returncode})"
        finally:
            bouncer.terminate()
            bouncer.wait(timeout=10)
    return found


def main() -> int:
    """Run the benchmark; print the tables."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--part", choices=("pgbouncer", "failover", "province", "replicas", "all"), default="all")
    args.add_argument("--seconds", type=float, default=3)
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--clients", type=int, default=8)
    args.add_argument("--workers", type=int, default=2, help="replicas: gridlink serve worker processes")
    args.add_argument("--fraction", type=float, default=0.1, help="province: components and cases × F")
    args.add_argument("--district", default="320501", help="province: the district of items, tiles, KPIs, move")
    args.add_argument("--requests", type=int, default=200, help="province: requests per row (locate, intake)")
    args.add_argument("--keep", action="store_true", help="province: keep its database for the next run")
    options = args.parse_args()
    results = {}
    if options.part in ("province", "all"):
        results["province"] = province(options)
    if options.part in ("failover", "all"):
        results["failover"] = failover()
    if options.part in ("pgbouncer", "all"):
        results["pgbouncer"] = pgbouncer(options)
    if options.part in ("replicas", "all"):
        results["replicas"] = replicas_part(options)
    save("scale.json", {**_saved("scale.json"), **results})
    return 0


def _saved(name: str) -> dict:
    """The results saved before (a part run alone keeps the other parts' figures)."""
    import json

    from bench import RESULTS

    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else {}


def pgbouncer(options) -> dict:
    """Part pgbouncer (see the module docstring)."""
    if shutil.which("pgbouncer") is None:
        print("pgbouncer is not installed: apt-get install pgbouncer")
        return {"skipped": "pgbouncer is not installed"}
    shutil.rmtree(HOME, ignore_errors=True)
    cluster = Cluster(HOME, log=lambda *_: None)
    cluster.ensure_database("gridlink")
    state = cluster.state()
    assert state is not None
    setup = psycopg2.connect(host="127.0.0.1", port=state.port, user=SUPERUSER, password=state.password,
                             dbname="gridlink")
    with setup, setup.cursor() as cur:
        cur.execute("CREATE TABLE probe (id int PRIMARY KEY, note text);"
                    "INSERT INTO probe SELECT i, md5(i::text) FROM generate_series(1, 1000) i")
    setup.close()
    bouncer, port = start_pgbouncer(cluster, HOME / "pgbouncer")
    try:
        result = measure(state.port, port, state.password, options)
    finally:
        bouncer.terminate()
        bouncer.wait(timeout=10)
    try:
        result["transaction_mode"] = found = compatibility(cluster, state.password)
    finally:
        cluster.stop()
        shutil.rmtree(HOME, ignore_errors=True)
    print("\nthrough PgBouncer in transaction mode:")
    for what, verdict in found.items():
        print(f"  {what}: {verdict}")
    return result


def measure(direct: int, bouncer: int, password: str, options) -> dict:
    """Alternate direct and PgBouncer rounds; try the compatibility cases; print and return everything."""
    rows = {}
    for reconnect in (False, True):
        runs: dict[str, list[float]] = {"direct": [], "pgbouncer": []}
        for _ in range(options.rounds):
            for name, port in (("direct", direct), ("pgbouncer", bouncer)):
                runs[name].append(throughput(port, password, options.clients, options.seconds, reconnect))
        label = "connection per transaction" if reconnect else "pooled connections"
        direct_tps, bouncer_tps = statistics.median(runs["direct"]), statistics.median(runs["pgbouncer"])
        rows[label] = {"direct_tps": round(direct_tps), "pgbouncer_tps": round(bouncer_tps),
                       "ratio": round(bouncer_tps / direct_tps, 2), "rounds": runs}
    print(f"PgBouncer (transaction mode, 4 server connections) vs direct, {options.clients} clients, "
          f"{options.rounds} rounds × {options.seconds} s, {machine()}")
    print(f"{'':30} {'direct tx/s':>12} {'pgbouncer tx/s':>15} {'ratio':>6}")
    for label, row in rows.items():
        print(f"{label:30} {row['direct_tps']:>12,} {row['pgbouncer_tps']:>15,} {row['ratio']:>6}")
    return {"machine": machine(), "clients": options.clients, "seconds": options.seconds, "throughput": rows,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Reporter(threading.Thread):
    """Posts reports, each retried with its own Idempotency-Key until acknowledged; notes (time, key, id)."""

    def __init__(self, port: int, token: str, bodies: list[dict], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.bodies, self.stop = port, token, bodies, stop
        self.acks: list[tuple[float, str, int]] = []
        self.refused: list[str] = []

    def run(self) -> None:
        import http.client
        import json
        import uuid

        n = 0
        while not self.stop.is_set():
            key, body = uuid.uuid4().hex, dict(self.bodies[n % len(self.bodies)])
            body["description"], body["source"], n = key, "hotline", n + 1  # a partner account reports so
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    conn.request("POST", "/api/v1/cases", body=json.dumps(body), headers={
                        "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                        "Idempotency-Key": key})
                    reply = conn.getresponse()
                    status, data = reply.status, reply.read()
                    conn.close()
                except OSError:
                    status, data = 0, b""
                if status in (200, 201):
                    self.acks.append((time.monotonic(), key, json.loads(data)["id"]))
                    break
                if status not in (0, 503):  # refused: a failure of the benchmark, not of the failover
                    self.refused.append(f"{status} {data[:200]!r}")
                    return
                time.sleep(0.1)


def failover() -> dict:
    """Part failover (see the module docstring)."""
    from alembic import command
    from sqlalchemy import create_engine

    from bench.intake import bench_token, sample_reports, start_server
    from migrations import alembic_config
    from spatial.demo.build import build_demo

    home = PROJECT_ROOT / ".gridlink" / "bench-failover"
    shutil.rmtree(home, ignore_errors=True)
    primary = Cluster(home, log=lambda *_: None)
    try:
        url = primary.ensure_database("gridlink")
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        build_demo(engine, small=True, force=True, progress=False)
        engine.dispose()
        token, bodies = bench_token(url), sample_reports(url, 500)
        standby = replicas.add(primary, "r1")
        ports = [c.state().port for c in (primary, standby)]  # type: ignore[union-attr]
        both = (f"postgresql+psycopg2://{SUPERUSER}:{primary.state().password}@/gridlink?"  # type: ignore[union-attr]
                f"host=127.0.0.1:{ports[0]}&host=127.0.0.1:{ports[1]}&target_session_attrs=read-write")
        server, port = start_server(both, workers=1)
        try:
            return _fail_over(primary, standby, port, token, bodies)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        for statefile in home.glob("replicas/*/cluster.json"):
            Cluster(statefile.parent, log=lambda *_: None).stop()
        primary.stop()
        shutil.rmtree(home, ignore_errors=True)


def _fail_over(primary: Cluster, standby: Cluster, port: int, token: str, bodies: list[dict]) -> dict:
    stop = threading.Event()
    clients = [Reporter(port, token, bodies, stop) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(5)
    stopped = time.monotonic()
    primary.stop()
    standby.promote()
    promoted = time.monotonic()
    time.sleep(8)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    refused = [r for c in clients for r in c.refused]
    if refused:
        raise RuntimeError(f"reports refused: {refused[:2]}")
    acks = sorted(a for c in clients for a in c.acks)
    before = [t for t, _, _ in acks if t < stopped]
    after = [t for t, _, _ in acks if t > promoted]
    mine = 'FROM "case" WHERE description ~ \'^[0-9a-f]{32}$\''  # the reports of this run (keys)
    rows = dict(_query_gridlink(standby, f"SELECT description, id {mine}"))
    twice = _query_gridlink(standby, f"SELECT count(*) - count(DISTINCT description) {mine}")[0][0]
    result = {
        "acknowledged": len(acks), "before_stop": len(before), "after_promotion": len(after),
        "stop_and_promote_s": round(promoted - stopped, 2),
        "seconds_without_writes": round(after[0] - before[-1], 2) if before and after else None,
        "first_write_after_promotion_s": round(after[0] - promoted, 2) if after else None,
        "lost": sum(1 for _, key, case in acks if rows.get(key) != case), "stored_twice": int(twice),
    }
    print(f"failover under intake load (4 clients, small demo, {machine()}):")
    for name, value in result.items():
        print(f"  {name}: {value}")
    return result


def _query_gridlink(cluster: Cluster, statement: str) -> list[tuple]:
    return _ask(cluster, statement, dbname="gridlink")


def _ask(cluster: Cluster, statement: str, params: tuple = (), dbname: str = "postgres") -> list[tuple]:
    """The rows of one statement on ``cluster`` as its superuser, in ``dbname``."""
    state = cluster.state()
    assert state is not None
    conn = psycopg2.connect(host="127.0.0.1", port=state.port, user=SUPERUSER, password=state.password,
                            dbname=dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------------------
# Part province: city (the Suzhou demo) against province (spatial/demo/province.py), ratio province / city.

CITY_DB = "gridlink_bench_scale_city"
PROVINCE_DB = "gridlink_bench_scale_province"
MONTH = ("2026-10-17", "2026-11-16")  # the last 30 days of both demos (DEMO_END, spatial/demo/build.py)


def _demo_database(settings, name: str, scale) -> str:
    """Database ``name`` with the demo of ``scale`` (None: the city) — built, or reused while its stamp
    (seed, sizes, generator fingerprint) matches; return its URL."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from migrations import alembic_config
    from spatial.demo.build import build_demo
    from spatial.store.db import database_url

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = database_url(settings, name)
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    started = time.perf_counter()
    report = build_demo(engine, force=True, scale=scale)
    engine.dispose()
    if not report.skipped:
        print(f"{name}: built in {time.perf_counter() - started:.0f} s: {report.seconds}")
    return url


def _drop(settings, name: str) -> None:
    from sqlalchemy import create_engine, text

    from spatial.store.db import database_url

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _admin_token(url: str) -> str:
    """A bearer token of an administrator (scope ``*``): the KPI reads every area."""
    from sqlalchemy import create_engine, text

    from spatial.access.accounts import add_user, create_token

    engine = create_engine(url)
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM account WHERE login = 'bench.scale'")).first():
            add_user(conn, "bench.scale", role="admin", scope="*", password="bench password, not a secret")
        token = create_token(conn, "bench.scale", label="bench", ttl=None)[0]
    engine.dispose()
    return token


class Client:
    """One keep-alive connection to the server; each request timed (ms)."""

    def __init__(self, port: int, token: str) -> None:
        import http.client

        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, application/geo+json"}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[float, int, bytes]:
        import json

        headers = dict(self.headers, **({"Content-Type": "application/json"} if body is not None else {}))
        started = time.perf_counter()
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        reply = self.connection.getresponse()
        data = reply.read()
        return (time.perf_counter() - started) * 1000, reply.status, data

    def median(self, method: str, paths: list, warm: int = 3) -> dict:
        """Median ms over ``paths`` (each once, after ``warm`` of them untimed), statuses, median bytes."""
        for path in paths[:warm]:
            self.request(method, *path) if isinstance(path, tuple) else self.request(method, path)
        import json

        samples: list[float] = []
        statuses: dict[int, int] = {}
        sizes: list[int] = []
        features: list[int] = []
        for path in paths[warm:]:
            ms, status, data = self.request(method, *path) if isinstance(path, tuple) else self.request(method, path)
            samples.append(ms)
            sizes.append(len(data))
            statuses[status] = statuses.get(status, 0) + 1
            if data.startswith(b'{"type":"FeatureCollection"') or data.startswith(b'{"type": "FeatureCollection"'):
                features.append(len(json.loads(data)["features"]))
        return {"ms": round(statistics.median(samples), 2), "n": len(samples), "statuses": statuses,
                "bytes": int(statistics.median(sizes)),
                "features": int(statistics.median(features)) if features else None}


def _sizes(conn) -> dict:
    from sqlalchemy import text

    row = conn.execute(text(
        "SELECT (SELECT count(*) FROM grid WHERE level = 4), (SELECT count(*) FROM component),"
        " (SELECT count(*) FROM \"case\"), (SELECT count(*) FROM case_event),"
        " pg_database_size(current_database())")).one()
    return {"base_grids": row[0], "components": row[1], "cases": row[2], "case_events": row[3],
            "database_gb": round(row[4] / 1e9, 2)}


def _samples(conn, district: str, count: int) -> dict:
    """Places to ask about: points in random base grids of the whole map; the busiest base grids of
    ``district`` (bboxes and tiles around them); report categories that need no component."""
    from sqlalchemy import text

    points = conn.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_GeometryN(ST_GeneratePoints(geom, 1, 7), 1) AS p"
        " FROM grid_geometry WHERE valid_to IS NULL AND kind = 'base' ORDER BY md5(grid_code) LIMIT :n) s"),
        {"n": count}).all()
    # the busiest base grids of the district, and around each the distance (°) to its 100th nearest component:
    # a bbox that wide holds at least 100 components in either map, so items pages have the same size
    busiest = conn.execute(text(
        "SELECT b.grid_code, ST_X(b.p), ST_Y(b.p), (SELECT max(ST_Distance(k.geom, b.p)) FROM (SELECT geom"
        "   FROM component ORDER BY geom <-> b.p LIMIT 100) k)"
        " FROM (SELECT c.grid_code, c.n, ST_PointOnSurface(gg.geom) AS p"
        "       FROM (SELECT grid_code, count(*) AS n FROM component WHERE district_code = :d GROUP BY 1"
        "             ORDER BY n DESC, grid_code LIMIT 40) c"
        "       JOIN grid_geometry gg ON gg.grid_code = c.grid_code AND gg.valid_to IS NULL) b"
        " ORDER BY b.n DESC, b.grid_code"), {"d": district}).all()
    categories = conn.execute(text(
        "SELECT code FROM event_category WHERE time_limit IS NOT NULL AND flow <> 'component' ORDER BY code"
    )).scalars().all()
    month_cases = conn.execute(text(
        "SELECT count(*) FILTER (WHERE district_code = :d), count(*) FROM \"case\""
        " WHERE reported_at >= CAST(:a AS date) AND reported_at < CAST(:b AS date)"),
        {"d": district, "a": MONTH[0], "b": MONTH[1]}).one()
    return {"points": [tuple(p) for p in points], "busiest": [tuple(b) for b in busiest],
            "categories": list(categories), "month_cases": tuple(month_cases)}


def _measure_one(url: str, district: str, options) -> dict:
    """Every operation of the province part on one database (its own server, one worker)."""
    import random

    import morecantile
    from sqlalchemy import create_engine

    from bench.intake import start_server
    from bench.planning import ACTOR, ADMIN, one_move, rolled_back
    from spatial.grids import planning

    engine = create_engine(url)
    with engine.connect() as conn:
        sizes = _sizes(conn)
        found = _samples(conn, district, options.requests + 10)
    token = _admin_token(url)
    server, port = start_server(url, workers=1)
    rng = random.Random(7)
    try:
        client = Client(port, token)
        points = found["points"]
        radius_m = statistics.median(r for *_, r in found["busiest"]) * 105_000
        result: dict = {"sizes": sizes, "items_bbox_half_width_m": round(radius_m), "district": district,
                        "month_cases_district": found["month_cases"][0],
                        "month_cases_all": found["month_cases"][1]}
        result["locate"] = client.median("GET", [f"/api/v1/locate?lon={x:.7f}&lat={y:.7f}" for x, y in points])
        bodies = [("/api/v1/cases", {"category": rng.choice(found["categories"]), "description": "bench.scale",
                                     "source": "hotline", "location": {"type": "Point", "coordinates": [
                                         round(x, 7), round(y, 7)]}}) for x, y in points]
        result["intake"] = client.median("POST", bodies)
        boxes = [f"{x - r:.6f},{y - r:.6f},{x + r:.6f},{y + r:.6f}" for _, x, y, r in found["busiest"]]
        result["items"] = client.median("GET", [f"/ogc/collections/components/items?limit=100&bbox={b}"
                                                for b in boxes])
        tms = morecantile.tms.get("WebMercatorQuad")
        tiles = [tms.tile(x, y, 14) for _, x, y, _ in found["busiest"]]
        unique = list(dict.fromkeys((t.x, t.y) for t in tiles))
        result["tile_z14"] = client.median("GET", [f"/tiles/components/14/{x}/{y}.mvt" for x, y in unique], warm=2)
        kpi = f"/api/v1/kpi?from={MONTH[0]}&to={MONTH[1]}"
        result["kpi_district"] = client.median("GET", [f"{kpi}&group=grid&area={district}"] * (options.rounds + 1),
                                               warm=1)
        result["kpi_all"] = client.median("GET", [f"{kpi}&group=district"] * (options.rounds + 1), warm=1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    grid = found["busiest"][0][0]
    commits = []
    for _ in range(options.rounds):
        def commit(conn):
            plan = one_move(conn, grid)
            started = time.perf_counter()
            done = planning.commit(conn, ADMIN, ACTOR, plan)
            return (time.perf_counter() - started) * 1000, done
        commits.append(rolled_back(engine, commit)())
    moved = commits[-1][1]["reassigned"]
    result["boundary_move"] = {"ms": round(statistics.median(ms for ms, _ in commits), 2), "n": len(commits),
                               "grid": grid, "reassigned": moved}
    engine.dispose()
    return result


def province(options) -> dict:
    """Part province (see the module docstring)."""
    import os

    from spatial.demo.province import province_scale
    from spatial.settings import DatabaseSettings

    settings = DatabaseSettings()
    city_url = _demo_database(settings, CITY_DB, None)
    province_url = _demo_database(settings, PROVINCE_DB, province_scale(options.fraction))
    try:
        load_before = os.getloadavg()
        city = _measure_one(city_url, "320506", options)
        prov = _measure_one(province_url, options.district, options)
        load_after = os.getloadavg()
    finally:
        if not options.keep:
            _drop(settings, PROVINCE_DB)
    rows = {}
    for name in ("locate", "intake", "items", "tile_z14", "kpi_district", "kpi_all", "boundary_move"):
        rows[name] = {"city_ms": city[name]["ms"], "province_ms": prov[name]["ms"],
                      "ratio": round(prov[name]["ms"] / city[name]["ms"], 2)}
    result = {"machine": machine(), "fraction": options.fraction, "load_average": [load_before, load_after],
              "city": city, "province": prov, "ratios": rows,
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _print_province(result)
    return result


def _print_province(result: dict) -> None:
    city, prov = result["city"], result["province"]
    print(f"\ncity (the Suzhou demo) vs province (spatial/demo/province.py at --fraction {result['fraction']}),"
          f" {result['machine']}, load average {result['load_average'][0][0]:.1f} → {result['load_average'][1][0]:.1f}")
    for label, side in (("city", city), ("province", prov)):
        s = side["sizes"]
        print(f"  {label}: {s['base_grids']:,} base grids, {s['components']:,} components, {s['cases']:,} cases,"
              f" {s['case_events']:,} events, {s['database_gb']} GB; district {side['district']}:"
              f" {side['month_cases_district']:,} cases in the month (all: {side['month_cases_all']:,})")
    print(f"{'':34} {'city ms':>9} {'province ms':>12} {'ratio':>6}")
    notes = {
        "items": lambda side: f"{side['items']['features']} features",
        "tile_z14": lambda side: f"{side['tile_z14']['bytes']:,} B",
        "intake": lambda side: f"statuses {side['intake']['statuses']}",
        "boundary_move": lambda side: f"reassigned {side['boundary_move']['reassigned']}",
    }
    labels = {"locate": "locate (random base grid)", "intake": "intake POST /cases (one client)",
              "items": "OGC items bbox ≥100 comps, limit=100", "tile_z14": "z14 component tile (cold)",
              "kpi_district": "KPI, one district, a month", "kpi_all": "KPI, whole map by district, a month",
              "boundary_move": "boundary move commit (busiest grid)"}
    for name, row in result["ratios"].items():
        note = f"   city {notes[name](city)}, province {notes[name](prov)}" if name in notes else ""
        print(f"{labels[name]:34} {row['city_ms']:>9} {row['province_ms']:>12} {row['ratio']:>6}{note}")


# ---------------------------------------------------------------------------------------------------------------
# Part replicas: read throughput with no, one and two streaming replicas (GRIDLINK_READ_DATABASE_URLS).

REPLICAS_HOME = PROJECT_ROOT / ".gridlink" / "bench-replicas"
REPLICA_SETTINGS = (("no replica", 0), ("one replica", 1), ("two replicas", 2))


def read_mix(conn, places: int = 30) -> list[str]:
    """The reads spatial/store/routing.py sends to replicas, at places and dates found in the data of ``conn``:
    z14 component tiles at ``places`` components and case tiles at as many cases; OGC items pages (components,
    cases; a bbox of ±0.003°) around ``places`` base grids; the case list (newest, the busiest town's, the
    period's; 4 × each) and the KPIs of the last 30 days of cases (the whole map by town, the busiest town by
    grid; 2 × each). GET paths, in a fixed order."""
    from datetime import timedelta

    import morecantile
    from sqlalchemy import text

    points = conn.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid_geometry"
        " WHERE valid_to IS NULL AND kind = 'base' ORDER BY md5(grid_code) LIMIT :n) s"), {"n": places}).all()
    last, town = conn.execute(text(
        "SELECT (SELECT (max(reported_at) AT TIME ZONE 'Asia/Shanghai')::date FROM \"case\"),"
        " (SELECT town_code FROM \"case\" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)")).one()
    if last is None:
        raise RuntimeError("read_mix needs cases in the database")
    end = last + timedelta(days=1)
    start = end - timedelta(days=30)
    # tiles where there is something to draw (an empty tile answers 204): at components and at cases
    drawn = {layer: conn.execute(text(
        f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface({column}) AS p, {key} AS k FROM {table}"
        f" ORDER BY md5({key}::text) LIMIT :n) s"), {"n": places}).all()
        for layer, table, column, key in (("components", "component", "geom", "code"),
                                          ("cases", '"case"', "location", "id"))}
    tms = morecantile.tms.get("WebMercatorQuad")
    paths = []
    for layer, where in drawn.items():
        paths += [f"/tiles/{layer}/14/{t.x}/{t.y}.mvt" for t in (tms.tile(x, y, 14) for x, y in where)]
    for x, y in points:
        box = f"{x - 0.003:.6f},{y - 0.003:.6f},{x + 0.003:.6f},{y + 0.003:.6f}"
        paths += [f"/ogc/collections/components/items?f=json&limit=100&bbox={box}",
                  f"/ogc/collections/cases/items?f=json&limit=100&bbox={box}"]
    paths += 4 * ["/api/v1/cases?limit=100", f"/api/v1/cases?limit=100&area={town}",
                  f"/api/v1/cases?limit=100&since={start}T00:00:00%2B08:00&until={end}T00:00:00%2B08:00"]
    kpi = f"/api/v1/kpi?from={start}&to={end}"
    paths += 2 * [f"{kpi}&group=town", f"{kpi}&group=grid&area={town}"]
    return paths


def answering(port: int, token: str, paths: list[str]) -> tuple[list[str], dict[str, int]]:
    """``paths`` that answer 200 once each (an empty tile answers 204), and the statuses of the others."""
    client = Client(port, token)
    kept, dropped = [], {}
    for path in dict.fromkeys(paths):
        status = client.request("GET", path)[1]
        if status == 200:
            kept.append(path)
        else:
            dropped[path] = status
    return [p for p in paths if p in kept], dropped


def drive(port: int, token: str, paths: list[str], clients: int, seconds: float) -> dict:
    """``clients`` threads, each on its own keep-alive connection, cycle through ``paths`` (each from its own
    offset) for ``seconds``; requests, requests/s, p50/p95 ms, statuses, and the latencies."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[dict[int, int]] = [{} for _ in range(clients)]

    def client(i: int) -> None:
        connection = Client(port, token)
        n = i * len(paths) // clients
        while time.monotonic() < stop:
            ms, status, _ = connection.request("GET", paths[n % len(paths)])
            latencies[i].append(ms)
            statuses[i][status] = statuses[i].get(status, 0) + 1
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    every = sorted(ms for some in latencies for ms in some)
    counts: dict[int, int] = {}
    for some in statuses:
        for status, n in some.items():
            counts[status] = counts.get(status, 0) + n
    return {"requests": len(every), "rps": round(len(every) / elapsed, 1), "p50_ms": _quantile(every, 0.5),
            "p95_ms": _quantile(every, 0.95), "statuses": counts, "latencies": every}


def _quantile(ordered: list[float], q: float) -> float | None:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None


def transactions(nodes: dict[str, Cluster], database: str = "gridlink") -> dict[str, int]:
    """Transactions (commits + rollbacks) each node has run in ``database`` (``pg_stat_database``; a standby
    counts its own read-only ones). Asked from the ``postgres`` database, so asking adds nothing. Waits until
    no client is left on ``database`` first: a backend adds its counts when it goes idle or exits."""
    counts = {}
    for name, cluster in nodes.items():
        deadline = time.monotonic() + 30
        while _ask(cluster, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                                       " AND backend_type = 'client backend'", (database,))[0][0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"clients still connected to {name}")
            time.sleep(0.1)
        counts[name] = int(_ask(
            cluster, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (database,))[0][0])
    return counts


def measure_reads(url: str, read_urls: list[str], nodes: dict[str, Cluster], token: str, paths: list[str],
                  clients: int, seconds: float, workers: int, warm_s: float = 1.0) -> dict:
    """One setting: ``gridlink serve --workers W`` on the primary ``url`` with ``read_urls`` as its replicas,
    ``warm_s`` untimed, then ``drive`` for ``seconds``; with the transactions each node of ``nodes`` ran from
    before the server started to after it stopped, and every request made (warm-up included)."""
    import os

    from bench.intake import start_server

    before = transactions(nodes)
    saved = {k: os.environ.pop(k) for k in ("GRIDLINK_READ_DATABASE_URLS", "GRIDLINK_READ_DATABASE_URL")
             if k in os.environ}
    if read_urls:
        os.environ["GRIDLINK_READ_DATABASE_URLS"] = ",".join(read_urls)
    try:
        server, port = start_server(url, workers=workers)
    finally:
        os.environ.pop("GRIDLINK_READ_DATABASE_URLS", None)
        os.environ.update(saved)
    try:
        warm = drive(port, token, paths, clients, warm_s)
        result = drive(port, token, paths, clients, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    after = transactions(nodes)
    result["transactions"] = {name: after[name] - before[name] for name in nodes}
    result["requests_with_warm_up"] = result["requests"] + warm["requests"]
    result["all_200"] = set(result["statuses"]) | set(warm["statuses"]) == {200}
    return result


def _caught_up(primary: Cluster, standbys: list[Cluster]) -> None:
    """Wait until every standby has replayed the primary's WAL position of now."""
    target = _ask(primary, "SELECT pg_current_wal_lsn()::text")[0][0]
    deadline = time.monotonic() + 120
    for standby in standbys:
        while not _ask(standby, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0]:
            if time.monotonic() > deadline:
                raise RuntimeError("a replica did not catch up")
            time.sleep(0.2)


def replicas_part(options) -> dict:
    """Part replicas (see the module docstring)."""
    import os

    from alembic import command
    from sqlalchemy import create_engine

    from bench.intake import start_server
    from migrations import alembic_config
    from spatial.demo.build import build_demo

    shutil.rmtree(REPLICAS_HOME, ignore_errors=True)
    primary = Cluster(REPLICAS_HOME, log=lambda *_: None)
    try:
        url = primary.ensure_database("gridlink")
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        build_demo(engine, small=True, force=True, progress=False)
        with engine.connect() as conn:
            sizes = _sizes(conn)
            mix = read_mix(conn)
        engine.dispose()
        token = _admin_token(url)
        standbys = [replicas.add(primary, name) for name in ("r1", "r2")]
        nodes = {"primary": primary, "r1": standbys[0], "r2": standbys[1]}
        _caught_up(primary, standbys)
        server, port = start_server(url, workers=1)
        try:
            paths, dropped = answering(port, token, mix)
        finally:
            server.terminate()
            server.wait(timeout=30)
        load_before = os.getloadavg()
        runs: dict[str, list[dict]] = {label: [] for label, _ in REPLICA_SETTINGS}
        for turn in range(options.rounds):  # each round starts with the next setting: no one always goes first
            for label, count in REPLICA_SETTINGS[turn % 3:] + REPLICA_SETTINGS[:turn % 3]:
                read_urls = [s.state().url("gridlink") for s in standbys[:count]]  # type: ignore[union-attr]
                runs[label].append(measure_reads(url, read_urls, nodes, token, paths, options.clients,
                                                 options.seconds, options.workers))
        load_after = os.getloadavg()
    finally:
        for statefile in REPLICAS_HOME.glob("replicas/*/cluster.json"):
            Cluster(statefile.parent, log=lambda *_: None).stop()
        primary.stop()
        shutil.rmtree(REPLICAS_HOME, ignore_errors=True)
    rows = {}
    for label, _ in REPLICA_SETTINGS:
        done = runs[label]
        every = sorted(ms for run in done for ms in run.pop("latencies"))
        rows[label] = {"rps": statistics.median(run["rps"] for run in done),
                       "p50_ms": _quantile(every, 0.5), "p95_ms": _quantile(every, 0.95),
                       "all_200": all(run["all_200"] for run in done),
                       "requests": sum(run["requests_with_warm_up"] for run in done),
                       "transactions": {n: sum(run["transactions"][n] for run in done) for n in nodes},
                       "rounds": done}
    reference = rows["no replica"]["rps"]
    for row in rows.values():
        row["ratio"] = round(row["rps"] / reference, 2)
    kinds = {"tiles": "/tiles/", "OGC items": "/ogc/", "case lists": "/api/v1/cases", "KPIs": "/api/v1/kpi"}
    result = {"machine": machine(), "clients": options.clients, "seconds": options.seconds,
              "rounds": options.rounds, "workers": options.workers, "sizes": sizes,
              "mix": {kind: sum(1 for p in paths if prefix in p) for kind, prefix in kinds.items()},
              "dropped": dropped, "load_average": [load_before, load_after], "settings": rows,
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _print_replicas(result)
    return result


def _print_replicas(result: dict) -> None:
    mix = ", ".join(f"{n} {kind}" for kind, n in result["mix"].items())
    print(f"\nread throughput, small demo ({result['sizes']['cases']:,} cases, {result['sizes']['components']:,}"
          f" components), gridlink serve --workers {result['workers']}, {result['clients']} clients,"
          f" {result['rounds']} rounds × {result['seconds']} s per setting, {result['machine']},"
          f" load average {result['load_average'][0][0]:.1f} → {result['load_average'][1][0]:.1f}")
    print(f"  mix of {sum(result['mix'].values())} paths: {mix}; left out (not 200): {len(result['dropped'])}")
    print(f"{'':14} {'req/s':>8} {'ratio':>6} {'p50 ms':>8} {'p95 ms':>8} {'all 200':>8}   transactions"
          f" during the setting (requests incl. warm-up)")
    for label, row in result["settings"].items():
        spread = ", ".join(f"{n} {v:,}" for n, v in row["transactions"].items())
        print(f"{label:14} {row['rps']:>8} {row['ratio']:>6} {row['p50_ms']:>8} {row['p95_ms']:>8}"
              f" {'yes' if row['all_200'] else 'NO':>8}   {spread} ({row['requests']:,})")


if __name__ == "__main__":
    raise SystemExit(main())
