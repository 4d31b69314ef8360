"""Issue 22 item 2: ``gridlink db replica`` makes hot standbys of the embedded cluster. Own throw-away
clusters, never the shared one."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest

from spatial.store import replicas
from spatial.store.cluster import Cluster
from tests.standby import eventually, gridlink, sql, world_primary


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster, str, str]]:
    """A primary with the world and one replica ``r1`` made by the CLI: (primary, replica, URLs…, token)."""
    with world_primary("replica") as (primary, url, token):
        out = gridlink(primary.home, "db", "replica", "add", "--name", "r1")
        assert "replica r1 streaming on 127.0.0.1:" in out
        standby = replicas.replica(primary, "r1")
        yield primary, standby, url, token


def test_replica_answers_reads_refuses_writes_and_catches_up(pair) -> None:
    primary, standby, _url, _token = pair
    assert sql(standby, "SELECT pg_is_in_recovery()") == [(True,)]
    # what the primary held when the replica was made is there (the world's grids)…
    assert sql(standby, "SELECT count(*) FROM grid") == sql(primary, "SELECT count(*) FROM grid") != [(0,)]
    # … a write is refused …
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        sql(standby, "CREATE TABLE refused (id int)")
    # … and a write on the primary arrives
    sql(primary, "CREATE TABLE kept (id int PRIMARY KEY, note text)")
    sql(primary, "INSERT INTO kept VALUES (1, '吴中区')")
    eventually(lambda: bool(sql(standby, "SELECT to_regclass('kept') IS NOT NULL")[0][0])
               and sql(standby, "SELECT note FROM kept") == [("吴中区",)], "the replica replays the write")
    sql(primary, "DROP TABLE kept")

    status = gridlink(primary.home, "db", "status")
    assert "replica r1: 127.0.0.1:" in status and "running, standby, streaming" in status
    # the slot keeps the primary's WAL for the replica
    assert sql(primary, "SELECT active FROM pg_replication_slots WHERE slot_name = 'gridlink_r1'") == [(True,)]


def test_replica_remove_drops_its_slot_and_its_folder(pair) -> None:
    primary = pair[0]
    gridlink(primary.home, "db", "replica", "add", "--name", "gone")
    assert "replica gone:" in gridlink(primary.home, "db", "replica", "list")
    assert "replica gone removed" in gridlink(primary.home, "db", "replica", "remove", "gone")
    assert sql(primary, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'gridlink_gone'") == [(0,)]
    assert not (primary.home / "replicas" / "gone").exists()
    assert "gone" not in gridlink(primary.home, "db", "replica", "list")
