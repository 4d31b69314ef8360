"""The embedded cluster: created on first use, restarted without loss, one per checkout without collision."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from spatial.settings import PROJECT_ROOT
from spatial.store.cluster import Cluster, find_bindir, port_free

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GRIDLINK_DATABASE_URL")), reason="an external server is configured"
)


@pytest.fixture
def homes() -> Iterator[list[Path]]:
    """Two cluster folders inside the checkout (the postgres user can reach them; /tmp's may not)."""
    base = PROJECT_ROOT / ".gridlink" / "test-clusters"
    made = [base / "checkout-a", base / "checkout-b"]
    for home in made:
        shutil.rmtree(home, ignore_errors=True)
    yield made
    for home in made:
        Cluster(home, log=lambda *_: None).stop()
        shutil.rmtree(home, ignore_errors=True)


def _connect(cluster: Cluster):
    state = cluster.state()
    assert state is not None
    return psycopg2.connect(host="127.0.0.1", port=state.port, user="gridlink", password=state.password,
                            dbname="gridlink")


def test_restart_keeps_data_and_two_checkouts_do_not_collide(homes: list[Path]) -> None:
    find_bindir()
    first, second = (Cluster(home, log=lambda *_: None) for home in homes)
    first.ensure_database("gridlink")
    second.ensure_database("gridlink")
    assert first.state().port != second.state().port
    assert first.state().password != second.state().password
    with _connect(first) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
        cur.execute("INSERT INTO kept VALUES (1, '吴中区'), (2, '吴江区')")
    conn.close()
    with _connect(second) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('kept')")
        assert cur.fetchone() == (None,)  # the other checkout's data is not here
    conn.close()

    first.stop()
    assert not first.running()
    assert second.running()
    first.start()
    with _connect(first) as conn, conn.cursor() as cur:
        cur.execute("SELECT note FROM kept ORDER BY id")
        assert cur.fetchall() == [("吴中区",), ("吴江区",)]
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        cur.execute("SELECT PostGIS_Version()")
        assert cur.fetchone()[0].startswith("3")
    conn.close()


def test_start_moves_to_a_free_port_when_its_port_is_taken(homes: list[Path]) -> None:
    import socket

    cluster = Cluster(homes[0], log=lambda *_: None)
    cluster.init()
    taken = cluster.state().port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        assert not port_free(taken)
        cluster.start()
        assert cluster.state().port != taken
        assert cluster.running()
