"""A throw-away primary with the known-answer world (tests/world.py) under ``.gridlink/test-clusters/<tag>``,
its replicas made by the ``gridlink db replica`` commands, and small HTTP helpers for live servers — for the
replica, failover and stateless tests. Never the shared cluster of ``GRIDLINK_DATABASE_URL``."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from spatial.settings import PROJECT_ROOT
from spatial.store.cluster import Cluster

PASSWORD = "a long enough password"


def gridlink(home: Path, *args: str) -> str:
    """Run ``gridlink ARGS`` on the embedded cluster in ``home``; its output (AssertionError when it fails)."""
    env = {k: v for k, v in os.environ.items() if k != "GRIDLINK_DATABASE_URL"}
    done = subprocess.run([sys.executable, "-m", "api.cli", *args], env=dict(env, GRIDLINK_HOME=str(home)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"gridlink {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def world_primary(tag: str) -> Iterator[tuple[Cluster, str, str]]:
    """A started primary holding the migrated world and an admin; yield (cluster, its URL, the admin's token).
    Stops it and its replicas afterwards and deletes them."""
    from alembic import command
    from sqlalchemy import create_engine

    from migrations import alembic_config
    from spatial.access.accounts import add_user, create_token
    from spatial.reference.load import load_reference
    from tests.world import build_world

    home = PROJECT_ROOT / ".gridlink" / "test-clusters" / tag
    _remove(home)
    cluster = Cluster(home, log=lambda *_: None)
    try:
        gridlink(home, "db", "start")
        url = cluster.state().url("gridlink")
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        with engine.begin() as conn:
            load_reference(conn)
            build_world(conn)
            add_user(conn, "scale.admin", role="admin", scope="*", password=PASSWORD)
            token = create_token(conn, "scale.admin", ttl=None)[0]
        engine.dispose()
        yield cluster, url, token
    finally:
        _remove(home)


def _remove(home: Path) -> None:
    """Stop every cluster under ``home`` (replicas first) and delete the folder."""
    for statefile in sorted(home.glob("replicas/*/cluster.json")):
        Cluster(statefile.parent, log=lambda *_: None).stop()
    if (home / "cluster.json").exists():
        Cluster(home, log=lambda *_: None).stop()
    shutil.rmtree(home, ignore_errors=True)


def sql(cluster: Cluster, statement: str, params: tuple = (), dbname: str = "gridlink") -> list[tuple]:
    """Run one statement on ``cluster`` as its superuser (autocommit); the rows it returns, if any."""
    state = cluster.state()
    assert state is not None
    conn = psycopg2.connect(host="127.0.0.1", port=state.port, user="gridlink", password=state.password,
                            dbname=dbname)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def request(port: int, method: str, path: str, token: str, body: dict | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to the live server on ``port``: (status, headers in lower case, body)."""
    sent = {"Authorization": f"Bearer {token}", **({"Content-Type": "application/json"} if body else {}),
            **(headers or {})}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=sent)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def report(n: int, description: str = "scale test") -> dict:
    """A valid case report inside the world, at a place that depends on ``n``."""
    return {"category": "E010101", "source": "inspector", "description": description,
            "location": {"type": "Point", "coordinates": [120.01 + (n % 90) * 0.002, 31.11 + (n % 40) * 0.002]}}


def eventually(check: Callable[[], bool], what: str, within_s: float = 60) -> None:
    """Wait until ``check()`` holds (a deadline against hanging, not a speed threshold)."""
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)
