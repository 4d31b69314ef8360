"""Cost limits on /ogc (SECURITY.md "Cost limits on /ogc"; issue 23, findings 6 and 11) on the known-answer
world: odd languages fall back to the default, CQL2 filters are bounded (vertices, predicates no index can
serve on the large collections), a statement over the time budget is a 503 OGC exception, and one caller's
expensive requests cannot take every thread that serves /ogc.

No assertion here reads a clock: slow statements are made by holding a table lock in another transaction
(a statement waiting for a lock counts against ``statement_timeout`` like one that computes), and the tests
wait for conditions (backends waiting on that lock), with generous timeouts only so that a failure does not
hang the run.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.conftest import admin_headers
from tests.live import serving


def ring(vertices: int, lon: float = 120.06, lat: float = 31.17, radius: float = 0.005) -> str:
    """A closed polygon (WKT) with ``vertices`` distinct vertices around a point of grid 320506001001002."""
    points = [(lon + radius * math.cos(2 * math.pi * i / vertices), lat + radius * math.sin(2 * math.pi * i / vertices))
              for i in range(vertices)]
    points.append(points[0])
    return "POLYGON((" + ",".join(f"{x:.6f} {y:.6f}" for x, y in points) + "))"


def _ogc_exception(reply, status: int, code: str) -> dict:
    """The OGC API exception JSON of ``reply``, checked for ``status`` and ``code``."""
    assert reply.status_code == status, reply.text[:500]
    assert reply.headers["content-type"].startswith("application/json"), reply.headers["content-type"]
    body = reply.json()
    assert body["code"] == code, body
    return body


# --- finding 11: Accept-Language and ?lang= ------------------------------------------------------------------

ODD_LANGUAGES = ["fr", "*", "garbage!!", "", "x" * 300, "fr-FR,de;q=0.8", "de-DE;q=oops", "zh", "zh-CN", "zh-TW",
                 "en", "en-GB", "en-US,en;q=0.9"]
OGC_PAGES = ["/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/grids",
             "/ogc/collections/grids/queryables", "/ogc/collections/grids/items?limit=2",
             "/ogc/collections/grids/items/320506001001002", "/ogc/collections/grids/items?f=html&limit=1"]


@pytest.mark.parametrize("value", ODD_LANGUAGES)
def test_any_language_falls_back_to_the_default(world_client: TestClient, value: str) -> None:
    english = value.startswith("en")
    for path in OGC_PAGES:
        for reply in (world_client.get(path, headers={"Accept-Language": value}),
                      world_client.get(path + ("&" if "?" in path else "?") + urllib.parse.urlencode({"lang": value}))):
            assert reply.status_code == 200, (path, value, reply.text[:300])
            assert reply.headers["content-language"] == ("en-US" if english else "zh"), (path, value)
            if "f=html" not in path:
                assert isinstance(reply.json(), dict)


# --- finding 6: bounded filters ------------------------------------------------------------------------------

def test_filter_geometries_have_a_vertex_limit(world_client: TestClient) -> None:
    from spatial.features import MAX_FILTER_VERTICES

    def items(polygon: str):
        return world_client.get("/ogc/collections/grids/items", params={"filter": f"S_INTERSECTS(geometry, {polygon})"},
                                headers={"Accept": "application/json"})

    fits = items(ring(MAX_FILTER_VERTICES - 1))  # a closed ring repeats its first vertex
    assert fits.status_code == 200, fits.text
    assert [f["id"] for f in fits.json()["features"]] == ["320506001001002"]
    body = _ogc_exception(items(ring(MAX_FILTER_VERTICES + 10)), 400, "InvalidParameterValue")
    assert "vertices" in body["description"] and f"{MAX_FILTER_VERTICES:,}" in body["description"]
    # Several geometries count together.
    half = ring(MAX_FILTER_VERTICES // 2 + 10)
    both = world_client.get("/ogc/collections/grids/items", headers={"Accept": "application/json"},
                            params={"filter": f"S_INTERSECTS(geometry, {half}) OR S_INTERSECTS(geometry, {half})"})
    _ogc_exception(both, 400, "InvalidParameterValue")


def test_filters_have_a_predicate_limit(world_client: TestClient) -> None:
    from spatial.features import MAX_FILTER_PREDICATES

    def items(count: int):
        flt = " OR ".join(f"code = '3205060010010{i:02d}'" for i in range(count))
        return world_client.get("/ogc/collections/grids/items", params={"filter": flt},
                                headers={"Accept": "application/json"})

    assert items(MAX_FILTER_PREDICATES).status_code == 200
    body = _ogc_exception(items(MAX_FILTER_PREDICATES + 1), 400, "InvalidParameterValue")
    assert "predicates" in body["description"]


UNINDEXABLE = [
    ("components", f"S_DISJOINT(geometry, {ring(200)})"),
    ("components", "NOT S_INTERSECTS(geometry, POINT(120.06 31.17))"),
    ("components", "status = 'intact' AND NOT S_WITHIN(geometry, POLYGON((120 31, 120.1 31, 120.1 31.1, 120 31)))"),
    ("components", "name LIKE '%灯'"),
    ("components", "code LIKE '_205%'"),
    ("cases", f"S_DISJOINT(geometry, {ring(200)})"),
    ("cases", "NOT S_INTERSECTS(geometry, POINT(120.06 31.17))"),
]


@pytest.mark.parametrize(("collection", "flt"), UNINDEXABLE)
def test_predicates_no_index_serves_are_refused_on_large_collections(world_client: TestClient, collection: str,
                                                                     flt: str) -> None:
    reply = world_client.get(f"/ogc/collections/{collection}/items", params={"filter": flt},
                             headers={"Accept": "application/json"})
    body = _ogc_exception(reply, 400, "InvalidParameterValue")
    assert "index" in body["description"]


def test_the_same_predicates_are_served_on_small_collections_and_anchored_ones_everywhere(
        world_client: TestClient, world_engine: Engine) -> None:
    with world_engine.connect() as conn:
        grids = conn.execute(text(
            "SELECT count(*) FROM grid_geometry WHERE valid_to IS NULL AND kind = 'base'")).scalar()
    for flt, expected in ((f"S_DISJOINT(geometry, {ring(200)})", grids - 1),
                          ("NOT S_INTERSECTS(geometry, POINT(120.06 31.17))", grids - 1),
                          ("name LIKE '%第2网格'", 4)):
        reply = world_client.get("/ogc/collections/grids/items", params={"filter": flt, "limit": 100},
                                 headers={"Accept": "application/json"})
        assert reply.status_code == 200, (flt, reply.text)
        assert reply.json()["numberMatched"] == expected, flt
    for flt in ("code LIKE '3205060118%'", "S_INTERSECTS(geometry, POINT(120.01 31.15))",
                "NOT (status = 'removed')"):
        reply = world_client.get("/ogc/collections/components/items", params={"filter": flt},
                                 headers={"Accept": "application/json"})
        assert reply.status_code == 200, (flt, reply.text)
        assert reply.json()["features"], flt


# --- finding 6: the time budget ------------------------------------------------------------------------------

def _lock(engine: Engine, table: str):
    """A connection holding an ACCESS EXCLUSIVE lock on ``table`` until it is rolled back and closed."""
    conn = engine.connect()
    conn.begin()
    conn.execute(text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
    return conn


def test_a_statement_over_the_budget_is_a_503_ogc_exception(world_engine: Engine, monkeypatch) -> None:
    from api.app import create_app

    monkeypatch.setenv("GRIDLINK_OGC_STATEMENT_TIMEOUT_MS", "300")
    url = world_engine.url.render_as_string(hide_password=False)
    with TestClient(create_app(url=url), headers={**admin_headers(), "Accept": "application/json"}) as client:
        locker = _lock(world_engine, "component")
        try:
            for path in ("/ogc/collections/components/items?limit=5",
                         "/ogc/collections/components/items?filter=status%3D%27intact%27",
                         "/ogc/collections/components/items/3205060118000001",
                         "/ogc/collections/components/tiles/WebMercatorQuad/14/6698/13653"):
                reply = client.get(path)
                body = _ogc_exception(reply, 503, "ServiceUnavailable")
                assert "budget" in body["description"], body
                assert reply.headers["retry-after"].isdigit()
        finally:
            locker.rollback()
            locker.close()
        assert client.get("/ogc/collections/components/items?limit=5").status_code == 200


def test_what_escapes_an_ogc_route_is_an_ogc_exception(world_client: TestClient) -> None:
    # A NUL byte in an item id reached psycopg2 (issue 23, finding 9: its 4xx is the hostile-input work's);
    # whatever the status, the reply is OGC exception JSON, never Starlette's text/plain 500.
    reply = world_client.get("/ogc/collections/grids/items/abc%00")
    assert reply.status_code >= 400 and reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["code"] and "NUL" not in body["description"] and "psycopg2" not in body["description"]


# --- finding 6: one caller cannot take every thread ----------------------------------------------------------

def _get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept": "application/json", **(headers or {})})
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def _waiting_on_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND application_name = 'gridlink'")).scalar())


def test_one_caller_cannot_take_every_ogc_thread(world_engine: Engine, monkeypatch) -> None:
    monkeypatch.setenv("GRIDLINK_OGC_PER_CALLER", "2")
    monkeypatch.setenv("GRIDLINK_OGC_HEAVY_THREADS", "3")
    monkeypatch.setenv("GRIDLINK_OGC_STATEMENT_TIMEOUT_MS", "120000")  # held by the lock, not by the budget
    admin = admin_headers()
    expensive = "/ogc/collections/components/items?" + urllib.parse.urlencode({"filter": "status = 'intact'"})
    flood = 10
    with serving(world_engine.url.render_as_string(hide_password=False)) as port:
        locker = _lock(world_engine, "component")
        pool = ThreadPoolExecutor(max_workers=flood)
        try:
            futures = [pool.submit(_get, port, expensive, admin, 120) for _ in range(flood)]
            # All but the caller's two admitted requests are refused at once (on a server without the limit
            # they would all wait for the lock, and time out here).
            refused = []
            for done in as_completed(futures, timeout=60):
                refused.append(done.result())
                if len(refused) == flood - 2:
                    break
            for status, headers, body in refused:
                assert status == 429, body[:300]
                assert json.loads(body)["code"] == "TooManyRequests" and headers["retry-after"].isdigit()
            deadline = time.monotonic() + 60
            while _waiting_on_locks(world_engine) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_on_locks(world_engine) == 2
            # While they wait, everything else of /ogc is served: public pages, tiles, and another caller's
            # expensive request (anonymous, on the grids).
            for path in ("/ogc/collections/grids/items?limit=5", "/ogc/collections", "/ogc/",
                         "/ogc/collections/grids/items/320506001001002",
                         "/ogc/collections/grids/tiles/WebMercatorQuad/10/418/853",
                         "/ogc/collections/grids/items?" + urllib.parse.urlencode({"filter": "level = 4"})):
                status, _, body = _get(port, path, timeout=30)
                assert status in (200, 204), (path, status, body[:300])
            assert _get(port, "/api/v1/locate?lon=120.06&lat=31.17", timeout=30)[0] == 200
        finally:
            locker.rollback()
            locker.close()
            admitted = [f.result(timeout=120) for f in futures]
            pool.shutdown()
        assert sorted(status for status, _, _ in admitted) == [200, 200] + [429] * (flood - 2)
        # The slots are given back: the caller is served again.
        assert _get(port, expensive, admin)[0] == 200
