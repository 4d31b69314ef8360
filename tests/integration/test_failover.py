"""Issue 22 item 3: failover under intake load. A server pointed at the primary and its standby by one
multi-host URL with ``target_session_attrs=read-write`` takes reports while the primary is stopped and the
standby promoted (``gridlink db promote``); it reconnects by itself, no acknowledged report is lost and none is
stored twice (the clients retry with their Idempotency-Key). Own throw-away clusters, never the shared one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

from spatial.store import replicas
from spatial.store.db import libpq_uri
from tests.live import serving
from tests.standby import eventually, gridlink, report, request, sql, world_primary

CLIENTS = 4


def test_several_hosts_become_one_libpq_uri() -> None:
    url = ("postgresql+psycopg2://gridlink:p%40ss@/gridlink?host=127.0.0.1:5001&host=127.0.0.1:5002"
           "&target_session_attrs=read-write")
    assert libpq_uri(url) == "postgresql://gridlink:p%40ss@127.0.0.1:5001,127.0.0.1:5002/gridlink" \
                             "?target_session_attrs=read-write"
    assert libpq_uri("postgresql+psycopg2://u:p@127.0.0.1:5001/g") == "postgresql://u:p@127.0.0.1:5001/g"


class Reporter(threading.Thread):
    """Posts reports one after another, each retried with its own key until acknowledged (201, or 200 for a
    retry of one that was stored); notes every acknowledged case and every 503 seen."""

    def __init__(self, port: int, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.stop = port, token, stop
        self.acknowledged: dict[str, int] = {}  # key → case id
        self.unavailable = 0
        self.failures: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            key = uuid.uuid4().hex
            n += 1
            while True:
                try:
                    status, _, body = request(self.port, "POST", "/api/v1/cases", self.token,
                                              report(n, description=key), {"Idempotency-Key": key})
                except OSError:  # the reply was lost: the report may or may not be stored; the key decides
                    status, body = 0, b""
                if status in (200, 201):
                    self.acknowledged[key] = json.loads(body)["id"]
                    break
                if status not in (0, 503):
                    self.failures.append(f"{status} {body[:200]!r}")
                    return
                self.unavailable += 1
                time.sleep(0.2)


def test_failover_under_intake_load_loses_nothing_and_stores_nothing_twice(monkeypatch) -> None:
    with world_primary("failover") as (primary, _url, token):
        gridlink(primary.home, "db", "replica", "add", "--name", "r1")
        standby = replicas.replica(primary, "r1")
        password = primary.state().password
        both = (f"postgresql+psycopg2://gridlink:{password}@/gridlink?host=127.0.0.1:{primary.state().port}"
                f"&host=127.0.0.1:{standby.state().port}&target_session_attrs=read-write")
        monkeypatch.setenv("GRIDLINK_API_PUBLIC_PER_MINUTE", "1000000")
        with serving(both) as port:
            stop = threading.Event()
            clients = [Reporter(port, token, stop) for _ in range(CLIENTS)]
            for client in clients:
                client.start()
            eventually(lambda: sum(len(c.acknowledged) for c in clients) >= 40, "reports are taken")
            primary.stop()
            stopped_at = len(set().union(*(c.acknowledged for c in clients)))
            assert "replica r1 promoted" in gridlink(primary.home, "db", "promote")
            # the server finds the new primary by itself: reports are acknowledged again
            eventually(lambda: len(set().union(*(c.acknowledged for c in clients))) >= stopped_at + 40,
                       "reports are taken by the promoted standby")
            stop.set()
            for client in clients:
                client.join(timeout=60)
                assert not client.is_alive()
                assert client.failures == []
        assert sum(c.unavailable for c in clients) > 0  # the clients did see the primary go
        acknowledged = {key: case for c in clients for key, case in c.acknowledged.items()}
        assert sql(standby, "SELECT pg_is_in_recovery()") == [(False,)]
        # the old primary is not started again beside the new one (two primaries: split brain)
        refused = subprocess.run([sys.executable, "-m", "api.cli", "db", "start"], capture_output=True, text=True,
                                 env={**{k: v for k, v in os.environ.items() if k != "GRIDLINK_DATABASE_URL"},
                                      "GRIDLINK_HOME": str(primary.home)})
        assert refused.returncode == 1 and "replica r1 was promoted" in refused.stderr
        assert not primary.running()
        stored = dict(sql(standby, 'SELECT description, id FROM "case"'))
        rows = sql(standby, 'SELECT count(*), count(DISTINCT description) FROM "case"')[0]
        assert rows[0] == rows[1]  # no report stored twice
        lost = {key for key, case in acknowledged.items() if stored.get(key) != case}
        assert lost == set()  # every acknowledged report is on the new primary, under the id it was given
        assert set(stored) <= set(acknowledged)  # and nothing that no client was told of
