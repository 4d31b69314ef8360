"""Issue 22's read-throughput measurement (bench/scale.py, part ``replicas``) proves that the replicas served
the reads by the transactions each node ran (``pg_stat_database``). These tests hold that proof to account
against a real primary with two real replicas (made by ``gridlink db replica add``): without replicas every read
is the primary's, with one it is that replica's, with two they share them — and a node that served nothing
counts nothing. Own throw-away clusters, never the shared one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bench.intake import start_server
from bench.scale import answering, measure_reads, read_mix, transactions
from spatial.store import replicas
from spatial.store.cluster import Cluster
from tests.standby import gridlink, report, request, world_primary

CLIENTS, WORKERS, SECONDS = 2, 1, 2.0


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[dict[str, Cluster], str, str, list[str]]]:
    """The world with a few cases on a primary, replicas r1 and r2, the read mix that answers 200 on it:
    (nodes by name, the primary's URL, an admin's token, the paths)."""
    from sqlalchemy import create_engine

    with world_primary("replica_reads") as (primary, url, token):
        server, port = start_server(url, workers=1)
        try:
            for n in range(12):
                status, _, body = request(port, "POST", "/api/v1/cases", token, report(n))
                assert status == 201, body
            engine = create_engine(url)
            with engine.connect() as conn:
                mix = read_mix(conn, places=6)
            engine.dispose()
            paths, _dropped = answering(port, token, mix)
        finally:
            server.terminate()
            server.wait(timeout=30)
        for name in ("r1", "r2"):
            assert f"replica {name} streaming" in gridlink(primary.home, "db", "replica", "add", "--name", name)
        found = {"primary": primary, "r1": replicas.replica(primary, "r1"), "r2": replicas.replica(primary, "r2")}
        yield found, url, token, paths


def _measure(nodes, names: list[str]) -> dict:
    found, url, token, paths = nodes
    read_urls = [found[name].state().url("gridlink") for name in names]
    return measure_reads(url, read_urls, found, token, paths, CLIENTS, SECONDS, WORKERS, warm_s=0.5)


def test_the_read_mix_holds_every_kind_of_routed_read_and_answers_200(nodes) -> None:
    paths = nodes[3]
    for kind in ("/tiles/components/", "/tiles/cases/", "/ogc/collections/components/items",
                 "/ogc/collections/cases/items", "/api/v1/cases?", "/api/v1/kpi?"):
        assert any(kind in path for path in paths), kind
    _, _, token, _ = nodes
    server, port = start_server(nodes[1], workers=1)
    try:
        status, _, body = request(port, "GET", next(p for p in paths if "/api/v1/kpi?" in p), token)
        assert status == 200 and json.loads(body)["totals"]["reported"] > 0, body  # the cases just posted
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_without_replicas_the_primary_serves_every_read(nodes) -> None:
    result = _measure(nodes, [])
    assert result["all_200"], result["statuses"]
    spent = result["transactions"]
    assert spent["r1"] == spent["r2"] == 0  # configured nowhere: not asked once (nor counted by asking)
    assert spent["primary"] >= result["requests_with_warm_up"] > 0


def test_one_replica_serves_the_reads_and_the_other_none(nodes) -> None:
    result = _measure(nodes, ["r1"])
    assert result["all_200"], result["statuses"]
    spent, requests = result["transactions"], result["requests_with_warm_up"]
    # every read but those racing the first lag check (which go to the primary) ran on r1
    assert spent["r1"] >= requests - CLIENTS * WORKERS
    assert spent["r2"] == 0
    assert spent["primary"] < spent["r1"]  # left on the primary: start-up, token lookups, the lag checks


def test_two_replicas_share_the_reads(nodes) -> None:
    result = _measure(nodes, ["r1", "r2"])
    assert result["all_200"], result["statuses"]
    spent, requests = result["transactions"], result["requests_with_warm_up"]
    assert spent["r1"] + spent["r2"] >= requests - CLIENTS * WORKERS
    assert min(spent["r1"], spent["r2"]) >= requests // 4  # in turn: about half each
    assert transactions(nodes[0]) == transactions(nodes[0])  # asking counts nothing
