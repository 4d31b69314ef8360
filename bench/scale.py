"""Benchmark, the first parts of issue 22's scale measurements: what PgBouncer (Debian ``pgbouncer``) costs and
what it breaks for gridlink's drivers; how long writes stop in a failover, and whether any are lost.

    .venv/bin/python -m bench.scale [--part pgbouncer|failover|all] [--seconds 3] [--rounds 3] [--clients 8]

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
    args.add_argument("--part", choices=("pgbouncer", "failover", "all"), default="all")
    args.add_argument("--seconds", type=float, default=3)
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--clients", type=int, default=8)
    options = args.parse_args()
    results = {}
    if options.part in ("failover", "all"):
        results["failover"] = failover()
    if options.part in ("pgbouncer", "all"):
        results["pgbouncer"] = pgbouncer(options)
    save("scale.json", results)
    return 0


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
    from spatial.store import replicas

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
    state = cluster.state()
    assert state is not None
    conn = psycopg2.connect(host="127.0.0.1", port=state.port, user=SUPERUSER, password=state.password,
                            dbname="gridlink")
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall()
    finally:
        conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
