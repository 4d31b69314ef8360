"""Benchmark: workflow actions over HTTP against their floor, and the live feed's delay and cost (issue 17).

    .venv/bin/python -m bench.workflow [--seconds 10] [--rounds 2] [--clients 4] [--small] [--only actions|feed]

1. A scratch copy of the full-demo template (bench/intake.py's, upgraded to head in the copy only), or with
   ``--small`` (or when the template is busy) a fresh small demo. Cases to act on are reported first through
   the domain (``create_case``) in Wuzhong.
2. Actions: each client walks its cases through a realistic loop — register, dispatch, accept, handle (a note
   and photos), check (one in five fails: rework, handle, check again), close, evaluate — as an admin
   account. Floor: the same statements without HTTP (``act`` then ``get_case`` in one transaction, what the
   route runs) on direct connections; HTTP: ``POST /api/v1/cases/{id}/actions/{action}`` with ``If-Match``
   from lean keep-alive clients against ``gridlink serve --workers 2``. The two alternate in rounds.
3. Feed delay: five feed clients follow ``/api/v1/events/stream`` while intake runs paced at ``--rate``
   (200 cases/s); the delay of each report event is the client's receipt time minus the event's ``at`` (the
   intake statement's time, a few ms before its commit, so the figure is an upper bound), p50 and p99.
4. Intake cost of the feed: HTTP intake (bench/intake.py's client) alternating without and with 50 connected
   feed clients (consoles of Wuzhong's towns: ``?area=`` a town, one in ten unfiltered), the ratio of rates.
   The consoles are read in a process of their own (``Consoles``), never in the intake client's.
Prints a table; writes bench/results/workflow.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import selectors
import socket
import statistics
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, text

from bench import machine, save
from bench.intake import TEMPLATE, Http, _read_reply, _spread, bench_token, interleaved, sample_reports, start_server
from spatial.access.accounts import add_user, create_token
from spatial.access.principal import Principal
from spatial.cases.actions import ActionInput, act
from spatial.cases.intake import create_case
from spatial.cases.read import get_case
from spatial.cases.schemas import CASE_CREATE
from spatial.reference.cache import ReferenceCache
from spatial.settings import DatabaseSettings
from spatial.store.db import database_url

SCRATCH = "gridlink_bench_workflow"
LOOP: list[tuple[str, dict[str, Any]]] = [("register", {}), ("dispatch", {}), ("accept", {}), ("handle", {"photos": ["photo://bench/1"]}),
        ("check", {"result": "pass"}), ("close", {}), ("evaluate", {"satisfaction": "satisfied"})]
REWORK: list[tuple[str, dict[str, Any]]] = [("check", {"result": "fail"}), ("rework", {}), ("handle", {"photos": ["photo://bench/2"]}),
          ("check", {"result": "pass"})]


def scratch(settings: DatabaseSettings, small: bool) -> str:
    """A scratch database at head: a copy of the full-demo template, or a fresh small demo."""
    from alembic import command

    from migrations import alembic_config
    from spatial.demo.build import build_demo

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        try:
            if small:
                raise RuntimeError("small demo asked for")
            conn.execute(text(f'CREATE DATABASE "{SCRATCH}" TEMPLATE "{TEMPLATE}"'))
        except Exception as exc:  # the template is in use (or absent): the small demo instead
            print(f"no copy of {TEMPLATE} ({str(exc).splitlines()[0]}): small demo")
            small = True
            conn.execute(text(f'CREATE DATABASE "{SCRATCH}"'))
    admin.dispose()
    url = database_url(settings, SCRATCH)
    command.upgrade(alembic_config(url), "head")
    if small:
        engine = create_engine(url)
        build_demo(engine, small=True, progress=False)
        engine.dispose()
    return url


def admin_account(url: str) -> tuple[Principal, str]:
    """The acting account (an admin: it acts for every unit) and its token."""
    engine = create_engine(url)
    with engine.begin() as conn:
        add_user(conn, "bench.admin", role="admin", scope="*", password="bench password, not a secret")
        token = create_token(conn, "bench.admin", label="bench", ttl=None)[0]
        account_id = conn.execute(text("SELECT id FROM account WHERE login = 'bench.admin'")).scalar_one()
    engine.dispose()
    return Principal(account_id, "bench.admin", "admin", "*"), token


def report_cases(url: str, count: int) -> list[int]:
    """Report ``count`` cases through the domain; the ids of those that opened (not duplicates)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        ref = ReferenceCache.load(conn)
    ids = []
    with engine.begin() as conn:
        for body in sample_reports(url, count, seed=23):
            case = create_case(conn, ref, CASE_CREATE.validate_python({**body, "source": "inspector"}),
                               actor="bench")[0]
            if case["state"] == "reported":
                ids.append(case["id"])
    engine.dispose()
    return ids


class Walks:
    """Per client, its cases and where each stands in the loop; ``next(i)`` the action to take now."""

    def __init__(self, ids: list[int], clients: int, seed: int) -> None:
        rng = random.Random(seed)
        self.todo = [[(case, self._steps(rng)) for case in ids[i::clients]] for i in range(clients)]
        self.revision = {case: 1 for case in ids}

    @staticmethod
    def _steps(rng: random.Random) -> list[tuple[str, dict]]:
        steps = list(LOOP)
        if rng.random() < 0.2:
            steps[4:5] = REWORK
        return steps

    def next(self, i: int) -> tuple[int, str, dict]:
        """The next action of client ``i``: (case, action, data)."""
        case, steps = self.todo[i][0]
        action, data = steps.pop(0)
        if not steps:
            self.todo[i].pop(0)
        return case, action, data


class FloorActions:
    """``act`` + ``get_case`` in one transaction per action, on direct connections (what the route runs)."""

    def __init__(self, url: str, clients: int, walks: Walks, by: Principal) -> None:
        self.engine = create_engine(url, pool_size=clients)
        with self.engine.connect() as conn:
            self.ref = ReferenceCache.load(conn)
        self.conns = [self.engine.connect() for _ in range(clients)]
        self.walks, self.by = walks, by

    def begin(self) -> None:
        """Nothing to do: direct connections stay open."""

    def work(self, i: int, _body: Any) -> None:
        """Take client ``i``'s next action."""
        case, action, data = self.walks.next(i)
        conn = self.conns[i]
        with conn.begin():
            outcome = act(conn, self.ref, case, action, ActionInput(note="bench", data=data), by=self.by,
                          expected_revision=self.walks.revision[case])
            get_case(conn, self.ref, case, by=self.by)
        self.walks.revision[case] = outcome.revision

    def close(self) -> None:
        """Close the connections."""
        for conn in self.conns:
            conn.close()
        self.engine.dispose()


class HttpActions:
    """``POST /api/v1/cases/{id}/actions/{action}`` with ``If-Match`` from lean keep-alive clients."""

    def __init__(self, port: int, clients: int, walks: Walks, token: str) -> None:
        self.port, self.walks, self.token = port, walks, token.encode()
        self.sockets: list[socket.socket | None] = [None] * clients
        self.errors: list[int] = []

    def begin(self) -> None:
        """Open fresh connections."""
        for i, sock in enumerate(self.sockets):
            if sock is not None:
                sock.close()
            self.sockets[i] = socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def work(self, i: int, _body: Any) -> None:
        """Take client ``i``'s next action over HTTP."""
        case, action, data = self.walks.next(i)
        payload = json.dumps({"note": "bench", "data": data}).encode()
        sock = self.sockets[i] or socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sockets[i] = sock
        sock.sendall(b"POST /api/v1/cases/%d/actions/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nAuthorization: Bearer %s\r\nIf-Match: \"%d\"\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (case, action.encode(), self.token,
                                                         self.walks.revision[case], len(payload), payload))
        status, closing = _read_reply(sock)
        if closing:
            sock.close()
            self.sockets[i] = None
        if status == 200:
            self.walks.revision[case] += 1
        else:
            self.errors.append(status)


class Consoles:
    """Feed clients on raw sockets, read in a process of their own: counts messages and, if asked, report
    delays. (In the benchmark's own process the reader thread took the GIL from the intake client's threads,
    so the "with consoles" side paid for the consoles' parsing as well as the server's fan-out.)"""

    def __init__(self, port: int, token: str, queries: list[str], delays: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop, ready = context.Event(), context.Event()
        self.results, child = context.Pipe(duplex=False)
        self.process = context.Process(target=_follow_consoles, args=(port, token, queries, delays, self.stop,
                                                                     ready, child), daemon=True)
        self.process.start()
        if not ready.wait(60):
            self.process.kill()
            raise RuntimeError("the consoles never connected")
        self.messages, self.delays = 0, list[float]()

    def close(self) -> None:
        """Disconnect every client; keep what they counted."""
        self.stop.set()
        self.messages, self.delays = self.results.recv()
        self.process.join(10)


def _follow_consoles(port: int, token: str, queries: list[str], keep_delays: bool, stop, ready, results) -> None:
    """The consoles' process: connect them all, tell ``ready`` once each has its first bytes (the stream's
    ``retry``: it is subscribed), read until ``stop``, send back (messages, delays)."""
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytes] = {}
    for query in queries:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET /api/v1/events/stream%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                     b"Authorization: Bearer %s\r\n\r\n" % (query.encode(), token.encode()))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        buffers[sock] = b""
    started: set[socket.socket] = set()
    messages, delays = 0, list[float]()
    while not stop.is_set():
        for key, _ in selector.select(0.2):
            sock = key.fileobj  # type: ignore[assignment]
            try:
                chunk = sock.recv(262144)
            except BlockingIOError:
                continue
            started.add(sock)
            if len(started) == len(buffers):
                ready.set()
            *complete, buffers[sock] = (buffers[sock] + chunk).split(b"\n\n")
            messages += _read_messages(complete, time.time(), delays if keep_delays else None)
    for sock in buffers:
        selector.unregister(sock)
        sock.close()
    results.send((messages, delays))


def _read_messages(complete: list[bytes], now: float, delays: list[float] | None) -> int:
    """Count the SSE messages; with ``delays``, add the delay of each report event (receipt − its ``at``)."""
    count = 0
    for message in complete:
        for line in message.split(b"\n"):
            if line.startswith(b"data: "):
                count += 1
                if delays is not None:
                    event = json.loads(line[6:])
                    if event["kind"] == "report":
                        delays.append(now - datetime.fromisoformat(event["at"]).timestamp())
    return count


def paced_intake(port: int, token: str, reports: list[dict], rate: float, seconds: float, clients: int = 4) -> int:
    """POST reports at ``rate`` per second in all (open loop, ``clients`` connections); return how many."""
    http = Http(port, clients, token)
    http.begin()
    sent = [0] * clients
    start = time.perf_counter()

    def loop(i: int) -> None:
        n = i
        while True:
            due = start + n / rate
            if due - start >= seconds:
                return
            time.sleep(max(0.0, due - time.perf_counter()))
            http.work(i, reports[n % len(reports)])
            sent[i] += 1
            n += clients

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(sent)


def feed_delay(port: int, token: str, reports: list[dict], rate: float, seconds: float) -> dict:
    """Report delays seen by five consoles while intake runs at ``rate``."""
    consoles = Consoles(port, token, [""] * 5, delays=True)
    time.sleep(1)
    sent = paced_intake(port, token, reports, rate, seconds)
    expected = 5 * sent
    time.sleep(2)
    consoles.close()
    quantiles = statistics.quantiles(consoles.delays, n=100)
    return {"rate": rate, "seconds": seconds, "reported": sent, "achieved_per_s": round(sent / seconds, 1),
            "delays": len(consoles.delays), "expected_deliveries": expected, "p50_ms": round(quantiles[49] * 1000, 1),
            "p99_ms": round(quantiles[98] * 1000, 1), "max_ms": round(max(consoles.delays) * 1000, 1)}


class Plain:
    """Intake alone: the consoles of the other side are gone first."""

    def __init__(self, http: Http, other: WithConsoles) -> None:
        self.http, self.other = http, other

    def begin(self) -> None:
        """Disconnect the other side's consoles, open fresh connections."""
        self.other.end()
        self.http.begin()

    def work(self, i: int, body: dict) -> None:
        """One report."""
        self.http.work(i, body)


class WithConsoles:
    """An intake runner that has ``count`` consoles connected while it runs."""

    def __init__(self, http: Http, port: int, token: str, towns: list[str], count: int) -> None:
        self.http, self.port, self.token, self.count = http, port, token, count
        self.queries = ["" if i % 10 == 0 else f"?area={towns[i % len(towns)]}" for i in range(count)]
        self.consoles: Consoles | None = None
        self.received = 0

    def begin(self) -> None:
        """Connect the consoles (a round's previous ones are closed by ``end``)."""
        self.end()
        self.http.begin()
        self.consoles = Consoles(self.port, self.token, self.queries)
        time.sleep(0.5)

    def work(self, i: int, body: dict) -> None:
        """One report."""
        self.http.work(i, body)

    def end(self) -> None:
        """Disconnect the consoles."""
        if self.consoles is not None:
            time.sleep(0.5)
            self.consoles.close()
            self.received += self.consoles.messages
            self.consoles = None


def _towns(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        towns = list(conn.execute(text("SELECT code FROM grid WHERE level = 2 AND code LIKE '320506%' ORDER BY code"))
                     .scalars())
    engine.dispose()
    return towns or ["320506"]


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="per side and phase, split over the rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=200, help="paced intake during the feed delay run")
    parser.add_argument("--consoles", type=int, default=50)
    parser.add_argument("--small", action="store_true", help="the small demo instead of the full one")
    parser.add_argument("--only", choices=("actions", "feed"), help="run one part only (both by default)")
    args = parser.parse_args()
    url = scratch(DatabaseSettings(), args.small)
    by, token = admin_account(url)
    partner = bench_token(url)
    ids = report_cases(url, 4000) if args.only != "feed" else []
    # The intake account is a partner (the hotline system): its reports are hotline calls (other sources: 403).
    reports = [{**body, "source": "hotline"} for body in sample_reports(url, 20_000, seed=29)]
    os.environ["GRIDLINK_API_FEED_PER_CALLER"] = str(args.consoles + 10)
    server, port = start_server(url, args.workers)
    half = len(ids) // 2
    floor_walks, http_walks = Walks(ids[:half], args.clients, 1), Walks(ids[half:], args.clients, 2)
    floor = FloorActions(url, args.clients, floor_walks, by)
    actions: dict = {}
    delay: dict = {}
    costs: dict = {}
    consoles: WithConsoles | None = None
    try:
        if args.only != "feed":
            http = HttpActions(port, args.clients, http_walks, token)
            actions = interleaved([{}], args.clients, args.seconds, args.rounds, {"floor": floor, "http": http})
            actions["http"]["errors"] = len(http.errors)
        if args.only != "actions":
            delay, costs, consoles = feed(args, url, port, token, partner, reports)
    finally:
        floor.close()
        server.terminate()
        server.wait(timeout=60)
    _result(args, actions, delay, costs, consoles.received if consoles else 0)


def feed(args: argparse.Namespace, url: str, port: int, token: str, partner: str,
         reports: list[dict]) -> tuple[dict, dict, WithConsoles]:
    """The feed's part: the delay at ``--rate``, then intake without and with ``--consoles`` consoles."""
    delay = feed_delay(port, partner, reports[:10_000], args.rate, args.seconds)
    consoles = WithConsoles(Http(port, args.clients, partner), port, token, _towns(url), args.consoles)
    intake = Plain(Http(port, args.clients, partner), consoles)
    intake.begin()
    _spread(reports[10_000:], args.clients, 2, intake.work)  # warm-up
    costs = interleaved(reports[10_000:], args.clients, args.seconds, args.rounds,
                        {"intake": intake, "with_consoles": consoles})
    consoles.end()
    return delay, costs, consoles


def _result(args: argparse.Namespace, actions: dict, delay: dict, costs: dict, received: int) -> None:
    """Print the table and save bench/results/workflow.json (``workflow_feed.json`` for ``--only feed``)."""
    result: dict = {"machine": machine(), "clients": args.clients, "workers": args.workers, "seconds": args.seconds,
                    "rounds": args.rounds, "actions": actions}
    if actions:
        base, served = actions["floor"], actions["http"]
        result["actions_ratio_http_over_floor"] = round(served["per_s"] / base["per_s"], 2)
        print(f"\nactions, floor (act + get_case, {args.clients} direct connections): {base['per_s']:8.1f} /s"
              f"  p50 {base['p50_ms']} ms  p99 {base['p99_ms']} ms  rounds {base['per_round']}")
        print(f"actions over HTTP ({args.clients} clients, {args.workers} workers): {served['per_s']:8.1f} /s"
              f"  p50 {served['p50_ms']} ms  p99 {served['p99_ms']} ms  rounds {served['per_round']}"
              f"  errors {served['errors']}")
        print(f"ratio HTTP / floor: {result['actions_ratio_http_over_floor']}")
    if costs:
        _feed_result(args, result, delay, costs, received)
    save("workflow.json" if args.only is None else f"workflow_{args.only}.json", result)


def _feed_result(args: argparse.Namespace, result: dict, delay: dict, costs: dict, received: int) -> None:
    plain, watched = costs["intake"], costs["with_consoles"]
    result.update({"feed_delay": delay, "intake": costs, "consoles": args.consoles, "console_messages": received,
                   "intake_ratio_with_over_without": round(watched["per_s"] / plain["per_s"], 2)})
    print(f"feed delay at {delay['achieved_per_s']} reports/s (5 consoles, {delay['delays']} deliveries):"
          f" p50 {delay['p50_ms']} ms  p99 {delay['p99_ms']} ms  max {delay['max_ms']} ms")
    print(f"intake without consoles {plain['per_s']} /s (rounds {plain['per_round']}), with {args.consoles}"
          f" consoles {watched['per_s']} /s (rounds {watched['per_round']}; {received:,} messages delivered):"
          f" ratio {result['intake_ratio_with_over_without']}")


if __name__ == "__main__":
    main()
