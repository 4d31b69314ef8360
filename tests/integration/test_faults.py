"""Fault test (issue 9): clients submit cases at a steady rate, with idempotency keys and retries, while the
database is restarted mid-run. Afterwards every acknowledged case is stored exactly once, and the server
answered every request within the client's timeout — 503 with Retry-After while the database was away, never
a hang or a 500. Plain reports (the lean asyncpg path) get 503 too, and succeed again once it is back."""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from spatial.access.principal import Principal
from spatial.cases.intake import stored_key
from spatial.settings import PROJECT_ROOT
from spatial.store.cluster import Cluster
from tests.live import serving

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GRIDLINK_DATABASE_URL")), reason="an external server is configured"
)
CLIENT_TIMEOUT = 15.0
TOKEN: list[str] = []  # the inspector's bearer token in the fault cluster


@pytest.fixture
def restartable() -> Iterator[tuple[Cluster, str]]:
    """A cluster of its own (restarting the shared one would disturb other tests) holding the test world."""
    from alembic import command

    from migrations import alembic_config
    from spatial.access.accounts import add_user, create_token
    from spatial.reference.load import load_reference
    from tests.world import build_world

    home = PROJECT_ROOT / ".gridlink" / "test-clusters" / "faults"
    shutil.rmtree(home, ignore_errors=True)
    cluster = Cluster(home, log=lambda *_: None)
    url = cluster.ensure_database("gridlink")
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.begin() as conn:
        load_reference(conn)
        build_world(conn)
        add_user(conn, "fault.inspector", role="inspector", scope="320506", password="a long enough password")
        TOKEN.append(create_token(conn, "fault.inspector", ttl=None)[0])
    engine.dispose()
    yield cluster, url
    cluster.stop()
    shutil.rmtree(home, ignore_errors=True)


def _post(port: int, body: dict, key: str | None) -> tuple[int, dict[str, str], float]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN[-1]}",
               **({"Idempotency-Key": key} if key else {})}
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        connection.request("POST", "/api/v1/cases", body=json.dumps(body), headers=headers)
        reply = connection.getresponse()
        reply.read()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, time.perf_counter() - started
    finally:
        connection.close()


def _report(rng: random.Random) -> dict:
    return {"category": "E010101", "source": "inspector", "description": "fault test",
            "location": {"type": "Point", "coordinates": [round(rng.uniform(120.01, 120.19), 6),
                                                          round(rng.uniform(31.11, 31.19), 6)]}}


class _Traffic:
    """Steady clients: keyed reports retried until acknowledged, and plain reports (the lean path)."""

    def __init__(self, port: int, seconds: float) -> None:
        self.port, self.stop_at = port, time.monotonic() + seconds
        self.statuses: Counter[int] = Counter()
        self.plain: list[tuple[float, int]] = []
        self.acknowledged: list[str] = []
        self.slowest = 0.0
        self.lock = threading.Lock()

    def _note(self, status: int, took: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.slowest = max(self.slowest, took)

    def _until_acknowledged(self, key: str, body: dict) -> None:
        while time.monotonic() < self.stop_at + 20:
            try:
                status, headers, took = _post(self.port, body, key)
            except OSError:
                time.sleep(0.2)
                continue
            self._note(status, took)
            if status in (200, 201):
                with self.lock:
                    self.acknowledged.append(key)
                return
            assert status == 503 and headers.get("retry-after"), (status, headers)
            time.sleep(0.2)

    def keyed(self, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < self.stop_at:
            self._until_acknowledged(str(uuid.uuid4()), _report(rng))
            time.sleep(0.05)

    def unkeyed(self, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < self.stop_at:
            status, _, took = _post(self.port, _report(rng), None)
            with self.lock:
                self.plain.append((time.monotonic(), status))
                self.slowest = max(self.slowest, took)
            time.sleep(0.05)


def test_restart_mid_run_loses_nothing_and_never_hangs(restartable, tmp_path) -> None:
    cluster, url = restartable
    log = tmp_path / "server.log"
    with serving(url, log) as port:
        traffic = _Traffic(port, seconds=9)
        threads = [threading.Thread(target=traffic.keyed, args=(i,)) for i in range(3)]
        threads.append(threading.Thread(target=traffic.unkeyed, args=(99,)))
        for thread in threads:
            thread.start()
        time.sleep(3)
        cluster.stop()  # fast shutdown: every connection is cut
        time.sleep(1.5)
        restarted = time.monotonic()
        cluster.start()
        # However long the start took (a loaded machine), the clients go on long enough after it to show recovery.
        traffic.stop_at = max(traffic.stop_at, time.monotonic() + 6)
        for thread in threads:
            thread.join(timeout=60)

    statuses, plain = traffic.statuses, traffic.plain
    assert statuses[503] >= 1, f"no request met the outage: {statuses}"
    server_log = log.read_text(errors="replace")[-4000:]
    assert set(statuses) <= {200, 201, 503}, (statuses, server_log)
    assert {s for _, s in plain} <= {201, 503}, (Counter(s for _, s in plain), server_log)
    assert any(s == 201 for t, s in plain if t > restarted + 3), (
        "plain intake did not recover", [(round(t - restarted, 1), s) for t, s in plain])
    assert traffic.slowest < CLIENT_TIMEOUT
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = dict(conn.execute(text(
            'SELECT idempotency_key, count(*) FROM "case" WHERE idempotency_key IS NOT NULL'
            " GROUP BY idempotency_key")).all())
        inspector = conn.execute(text("SELECT id, login, role, scope FROM account"
                                      " WHERE login = 'fault.inspector'")).one()
    engine.dispose()
    # Keys are stored as digests of the caller's namespace and the key (issue 23, finding 5).
    by = Principal(inspector.id, inspector.login, inspector.role, inspector.scope)
    digests = [stored_key(key, None, by, None) for key in traffic.acknowledged]  # an account's: no report in it
    assert len(traffic.acknowledged) > 20
    assert all(stored.get(key) == 1 for key in digests), "an acknowledged case is missing or doubled"
