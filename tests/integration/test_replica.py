"""Issue 22 item 2: ``gridlink db replica`` makes hot standbys of the embedded cluster, and the server sends
the heavy reads (case lists, OGC items) to them — but never a read that must see the caller's own write to
one that has not replayed it, and never to a replica that lags too far or is dead. Own throw-away clusters,
never the shared one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg2
import pytest

from spatial.store import replicas
from spatial.store.cluster import Cluster
from tests.live import serving
from tests.standby import eventually, gridlink, report, request, sql, world_primary


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


def _ids(port: int, token: str, headers: dict[str, str] | None = None) -> set[int]:
    status, _, body = request(port, "GET", "/api/v1/cases?limit=500", token, headers=headers)
    assert status == 200, body
    return {case["id"] for case in json.loads(body)["cases"]}


def _ogc_ids(port: int, token: str, headers: dict[str, str] | None = None) -> set[int]:
    status, _, body = request(port, "GET", "/ogc/collections/cases/items?limit=500&f=json", token,
                              headers=headers)
    assert status == 200, body
    return {int(feature["id"]) for feature in json.loads(body)["features"]}


def _routed(monkeypatch, url: str, standby: Cluster, **limits: str):
    monkeypatch.setenv("GRIDLINK_READ_DATABASE_URL", standby.state().url("gridlink"))
    monkeypatch.setenv("GRIDLINK_DB_READ_CHECK_EVERY_S", "0.1")
    for key, value in limits.items():
        monkeypatch.setenv(f"GRIDLINK_DB_READ_MAX_LAG_{key.upper()}", value)
    return serving(url)


def test_reads_go_to_the_replica_but_the_callers_own_write_is_read_back(pair, monkeypatch) -> None:
    _primary, standby, url, token = pair
    with _routed(monkeypatch, url, standby, bytes=str(1 << 30), s="3600") as port:
        sql(standby, "SELECT pg_wal_replay_pause()")
        try:
            status, headers, body = request(port, "POST", "/api/v1/cases", token, report(1))
            assert status == 201, body
            case = json.loads(body)["id"]
            seen = headers["gridlink-lsn"]
            # the list without the caller's LSN is served by the paused replica: the new case is not there yet
            assert case not in _ids(port, token)
            # with it, the primary answers (the replica has not replayed that far): the caller sees its case
            assert case in _ids(port, token, {"Gridlink-LSN": seen})
            # a value that is not an LSN is taken as "not replayed anywhere": the primary
            assert case in _ids(port, token, {"Gridlink-LSN": "latest"})
            # OGC items alike
            assert case not in _ogc_ids(port, token)
            assert case in _ogc_ids(port, token, {"Gridlink-LSN": seen})
        finally:
            sql(standby, "SELECT pg_wal_replay_resume()")
        # replay resumed: the replica has the case, and serves the caller's read with its LSN too
        eventually(lambda: case in _ids(port, token), "the replica catches up")
        assert case in _ids(port, token, {"Gridlink-LSN": seen})


def test_a_lagging_replica_is_skipped(pair, monkeypatch) -> None:
    _primary, standby, url, token = pair
    with _routed(monkeypatch, url, standby, bytes="0", s="3600") as port:
        sql(standby, "SELECT pg_wal_replay_pause()")
        try:
            status, _, body = request(port, "POST", "/api/v1/cases", token, report(2))
            assert status == 201, body
            case = json.loads(body)["id"]
            # no LSN sent, but the paused replica is behind by more than the 0 bytes allowed: the primary reads
            assert case in _ids(port, token)
        finally:
            sql(standby, "SELECT pg_wal_replay_resume()")
    with _routed(monkeypatch, url, standby, bytes=str(1 << 30), s="0.2") as port:
        sql(standby, "SELECT pg_wal_replay_pause()")
        try:
            status, _, body = request(port, "POST", "/api/v1/cases", token, report(3))
            assert status == 201, body
            case = json.loads(body)["id"]
            # within the byte limit, but behind without replaying anything for longer than 0.2 s: skipped
            eventually(lambda: case in _ids(port, token), "the stuck replica is skipped")
        finally:
            sql(standby, "SELECT pg_wal_replay_resume()")


def test_a_dead_replica_is_skipped(pair, monkeypatch) -> None:
    primary, standby, url, token = pair
    with _routed(monkeypatch, url, standby, bytes=str(1 << 30), s="3600") as port:
        status, _, body = request(port, "POST", "/api/v1/cases", token, report(4))
        assert status == 201, body
        case = json.loads(body)["id"]
        eventually(lambda: case in _ids(port, token), "the replica has the case")
        standby.stop()
        try:
            sql(primary, "SELECT 1")  # the primary goes on
            status, _, body = request(port, "POST", "/api/v1/cases", token, report(5))
            assert status == 201, body  # writes never touch the replica
            later = json.loads(body)["id"]

            def answered() -> bool:  # a read racing the replica's death may get a 503 with Retry-After
                status, _, body = request(port, "GET", "/api/v1/cases?limit=500", token)
                return status == 200 and later in {c["id"] for c in json.loads(body)["cases"]}

            eventually(answered, "reads move to the primary")
            for _ in range(5):
                assert later in _ids(port, token)
        finally:
            standby.start()
