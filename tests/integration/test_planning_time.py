"""Time travel over grid plans (issue 19, item 5) against real PostGIS, on a copy of the known-answer world of
tests/world.py of its own (the tests commit): OGC ``datetime`` intervals on the grid collections, over plain
HTTP and through GDAL against a live server.

Known answers: the world's grids are valid from 2024-01-01. One plan, committed effective 2025-01-01, moves the
boundary between base grids 001 and 002 of community 320506001001 to lon 120.04 (001's east edge: 120.05
before, 120.04 after) and splits grid 003 at lon 120.125 into 003 and the new grid 005 (created then). A
second plan, effective 2025-07-01, renames grid 002 from 测试1-1第2网格 to 新二网格 (names are versioned with
the shapes, migration 0022).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import text

from spatial.access.accounts import add_user, create_token
from tests.conftest import migrated_engine
from tests.live import serving
from tests.world import build_world, grid_code

G1, G2, G3 = grid_code(1, 1, 1), grid_code(1, 1, 2), grid_code(1, 1, 3)
COMMUNITY = G1[:12]
G5 = COMMUNITY + "005"
EFFECTIVE = "2025-01-01T00:00:00Z"
RENAMED = "2025-07-01T00:00:00Z"
OLD_NAME, NEW_NAME = "测试1-1第2网格", "新二网格"
ITEMS = "/ogc/collections/grids/items"


@pytest.fixture(scope="module")
def history():
    """The world with one plan committed effective 2025-01-01 (a boundary move and a split)."""
    from api.app import create_app
    from spatial.reference.load import load_reference

    engine = migrated_engine("gridlink_test_planning_time")
    with engine.begin() as conn:
        load_reference(conn)
        build_world(conn)
        add_user(conn, "admin", role="admin", scope="*", password="correct horse battery staple")
        auth = {"Authorization": f"Bearer {create_token(conn, 'admin', label='tests', ttl=None)[0]}"}
    with TestClient(create_app(url=engine.url.render_as_string(hide_password=False)), headers=auth) as client:
        plan = client.post("/api/v1/plans", json={"title": "move and split"}).json()["id"]
        for edit in ({"op": "move", "level": 4, "line": {"type": "LineString",
                                                         "coordinates": [[120.04, 31.2], [120.04, 31.1]]}},
                     {"op": "split", "code": G3, "new_code": G5, "name": "新网格",
                      "line": {"type": "LineString", "coordinates": [[120.125, 31.2], [120.125, 31.1]]}}):
            reply = client.post(f"/api/v1/plans/{plan}/edits", json=edit)
            assert reply.status_code == 200, reply.text
        committed = client.post(f"/api/v1/plans/{plan}/commit", json={"effective_at": EFFECTIVE})
        assert committed.status_code == 200 and committed.json()["state"] == "committed", committed.text
        rename = client.post("/api/v1/plans", json={"title": "rename 002"}).json()["id"]
        reply = client.post(f"/api/v1/plans/{rename}/edits", json={"op": "rename", "code": G2, "name": NEW_NAME})
        assert reply.status_code == 200, reply.text
        renamed = client.post(f"/api/v1/plans/{rename}/commit", json={"effective_at": RENAMED})
        assert renamed.status_code == 200 and renamed.json()["state"] == "committed", renamed.text
        yield client, engine, committed.json()["version"], rename
    engine.dispose()


def _grids(client, when: str) -> dict[str, dict]:
    reply = client.get(ITEMS, params={"parent_code": COMMUNITY, "datetime": when, "f": "json", "limit": 100})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["numberMatched"] == body["numberReturned"] == len(body["features"])
    codes = [f["id"] for f in body["features"]]
    assert len(codes) == len(set(codes))  # each grid once, however many of its shapes the interval holds
    return {f["id"]: f for f in body["features"]}


def _east(feature: dict) -> float:
    return round(shape(feature["geometry"]).bounds[2], 6)


def test_datetime_intervals_give_the_grids_valid_during_them_with_their_last_shape(history) -> None:
    client, _, version, _ = history
    old = {G1: 120.05, G2: 120.1, G3: 120.15, grid_code(1, 1, 4): 120.2}
    new = {**old, G1: 120.04, G3: 120.125, G5: 120.15}
    for when, expected in (("2024-06-01T00:00:00Z/2024-12-31T23:59:59Z", old),  # before the plan only
                           ("../2024-12-31T00:00:00Z", old),
                           ("2024-06-01T00:00:00Z/2025-06-01T00:00:00Z", new),  # across it: the later shapes
                           ("2025-06-01T00:00:00Z/..", new),
                           ("2025-01-01T00:00:00Z/2025-01-01T00:00:00Z", new),  # its instant: the new shapes
                           ("../..", new),
                           ("2024-12-31T23:59:59Z", old)):                       # an instant still works
        got = _grids(client, when)
        assert {code: _east(f) for code, f in got.items()} == expected, when
    across = _grids(client, "2024-06-01T00:00:00Z/2025-06-01T00:00:00Z")
    assert across[G1]["properties"]["version_id"] == version and across[G4]["properties"]["version_id"] == 1
    assert _grids(client, "2023-01-01T00:00:00Z/2023-12-31T00:00:00Z") == {}  # before the world's grids
    assert set(_grids(client, "2020-01-01/2024-06-01")) == set(old)  # dates alone, without offsets
    # the special grids' collection takes intervals too
    specials = client.get("/ogc/collections/special-grids/items",
                          params={"datetime": "2024-01-01T00:00:00Z/..", "f": "json"}).json()
    assert [f["id"] for f in specials["features"]] == ["320506S0001"]


G4 = grid_code(1, 1, 4)


def test_any_offset_iso_8601_allows_is_read_in_utc(history) -> None:
    """PostgreSQL refuses offsets beyond ±15:59 (once a 500 through the cases' time filter): ends are sent in
    UTC. 2025-01-01T16:46+16:46 is the plan's instant, so the grids have their new shapes."""
    client, _, _, _ = history
    assert _east(_grids(client, "2025-01-01T16:46:00+16:46")[G1]) == 120.04
    assert _east(_grids(client, "2025-01-01T16:45:00+16:46")[G1]) == 120.05
    assert _east(_grids(client, "../2024-12-31T00:00:00-23:59")[G1]) == 120.05
    strip = {"lon": 120.045, "lat": 31.15}  # handed from 001 to 002 by the plan
    for at, grid in (("2025-01-01T16:46:00+16:46", G2), ("2025-01-01T16:45:00+16:46", G1)):
        reply = client.get("/api/v1/locate", params={**strip, "at": at})
        assert reply.status_code == 200 and reply.json()["grid"]["code"] == grid, reply.text
    for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):  # beyond the calendar in UTC
        assert client.get("/api/v1/locate", params={**strip, "at": at}).status_code == 400


@pytest.mark.parametrize("when", ["2025-01-01T00:00:00Z/2024-01-01T00:00:00Z", "soon/..", "2024-13-01/..",
                                  "2024-01-01T00:00:00Z/tomorrow", "0001-01-01T00:00:00+14:00/..",
                                  "../9999-12-31T23:59:59-14:00"])
def test_invalid_intervals_are_a_400_ogc_exception(history, when) -> None:
    client, _, _, _ = history
    reply = client.get(ITEMS, params={"datetime": when, "f": "json"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "InvalidParameterValue" and "datetime" in reply.json()["description"]


def test_gdal_reads_the_grids_of_an_interval_from_a_live_server(history, tmp_path) -> None:
    if shutil.which("ogrinfo") is None:
        if os.environ.get("CI"):
            pytest.fail("GDAL (ogrinfo) is missing: the test command installs it (scripts/test)")
        pytest.skip("GDAL (ogrinfo) is not installed")
    _, engine, _, _ = history
    with serving(engine.url.render_as_string(hide_password=False)) as port:
        base = f"http://127.0.0.1:{port}{ITEMS}?f=json&limit=100&parent_code={COMMUNITY}"
        counts = {}
        for when in ("../2024-12-31T00:00:00Z", "2024-06-01T00:00:00Z/2025-06-01T00:00:00Z"):
            out = subprocess.run(["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", f"{base}&datetime={when}"],
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            features = json.loads(out.stdout)["features"]
            counts[when] = sorted(f["properties"]["code"] for f in features)
    assert counts["../2024-12-31T00:00:00Z"] == [G1, G2, G3, G4]
    assert counts["2024-06-01T00:00:00Z/2025-06-01T00:00:00Z"] == [G1, G2, G3, G4, G5]
    with engine.connect() as conn:  # what GDAL read is what the database held then
        assert conn.execute(text("SELECT count(*) FROM grid WHERE parent_code = :c"), {"c": COMMUNITY}).scalar() == 5


def _names(client, when: str) -> dict[str, str]:
    return {code: f["properties"]["name"] for code, f in _grids(client, when).items()}


def test_a_rename_keeps_the_old_name_for_time_travel_and_the_history_lists_both(history) -> None:
    client, _, _, rename = history
    point = {"lon": 120.07, "lat": 31.15}  # inside grid 002 before and after the move
    located = {at: client.get("/api/v1/locate", params={**point, **({"at": at} if at else {})}).json()["grid"]
               for at in ("2024-06-01T00:00:00Z", "2025-03-01T00:00:00Z", "2025-08-01T00:00:00Z", None)}
    assert [(g["code"], g["name"]) for g in located.values()] == [(G2, OLD_NAME)] * 2 + [(G2, NEW_NAME)] * 2
    assert _names(client, "2025-03-01T00:00:00Z")[G2] == OLD_NAME
    assert _names(client, "2024-06-01T00:00:00Z/2025-06-30T00:00:00Z")[G2] == OLD_NAME
    assert _names(client, "2025-03-01T00:00:00Z/..")[G2] == NEW_NAME
    assert _names(client, "2025-08-01T00:00:00Z")[G2] == NEW_NAME
    now = client.get(ITEMS, params={"code": G2, "f": "json"}).json()["features"]
    assert [f["properties"]["name"] for f in now] == [NEW_NAME]
    shapes = client.get(f"/api/v1/grids/{G2}/history").json()
    assert [(v["name"], v["valid_from"][:10]) for v in shapes["versions"]] == [
        (OLD_NAME, "2024-01-01"), (OLD_NAME, "2025-01-01"), (NEW_NAME, "2025-07-01")]
    assert [(n["name"], n["valid_from"][:10], (n["valid_to"] or "")[:10]) for n in shapes["names"]] == [
        (OLD_NAME, "2024-01-01", "2025-07-01"), (NEW_NAME, "2025-07-01", "")]
    # Rolled back, the old name comes back as a version of its own; the renamed span stays in the history.
    assert client.post(f"/api/v1/plans/{rename}/rollback").status_code == 200
    after = client.get(f"/api/v1/grids/{G2}/history").json()
    assert after["name"] == OLD_NAME
    assert [n["name"] for n in after["names"]] == [OLD_NAME, NEW_NAME, OLD_NAME]
    assert client.get("/api/v1/locate", params=point).json()["grid"]["name"] == OLD_NAME
    assert _names(client, "2025-08-01T00:00:00Z")[G2] == NEW_NAME


def test_the_migration_keeps_existing_names_as_the_current_version() -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from migrations import alembic_config
    from tests.conftest import fresh_database

    url = fresh_database("gridlink_test_name_versions")
    config = alembic_config(url)
    command.upgrade(config, "0023_kpi_rollup")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO grid_version (id, effective_at, author) VALUES (1, '2024-01-01', 't'),"
                          " (2, '2024-06-01', 't')"))
        conn.execute(text("INSERT INTO grid (code, level, kind, name) VALUES ('320506', 1, 'district', '吴中区')"))
        for version, start, end in ((1, "2024-01-01", "2024-06-01"), (2, "2024-06-01", None)):
            conn.execute(text("INSERT INTO grid_geometry (grid_code, version_id, kind, geom, valid_from, valid_to)"
                              " VALUES ('320506', :v, 'district', ST_GeomFromText(:w, 4326), :f, :t)"),
                         {"v": version, "w": "MULTIPOLYGON(((120 31,121 31,121 32,120 31)))", "f": start, "t": end})
    command.upgrade(config, "head")
    with engine.begin() as conn:
        names = conn.execute(text("SELECT name FROM grid_geometry ORDER BY valid_from")).scalars().all()
        assert names == ["吴中区", "吴中区"]
        conn.execute(text("UPDATE grid SET name = '新吴中' WHERE code = '320506'"))  # a writer that names no name
        conn.execute(text("UPDATE grid_geometry SET valid_to = '2025-01-01' WHERE valid_to IS NULL"))
        conn.execute(text("INSERT INTO grid_geometry (grid_code, version_id, kind, geom, valid_from) VALUES"
                          " ('320506', 2, 'district', ST_GeomFromText(:w, 4326), '2025-01-01')"),
                     {"w": "MULTIPOLYGON(((120 31,121 31,121 32,120 31)))"})
        names = conn.execute(text("SELECT name FROM grid_geometry ORDER BY valid_from")).scalars().all()
        assert names == ["吴中区", "吴中区", "新吴中"]  # the trigger names a new row after its grid
    engine.dispose()
    command.downgrade(config, "0023_kpi_rollup")
