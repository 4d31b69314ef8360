"""Importing special grids (issue 19, item 1: level ``special``) through the CLI and over HTTP, on the known-answer
world of tests/world.py (district 320506 = lon 120.0–120.4, lat 31.0–31.2; scenic grid 320506S0001 = the box
120.15–120.25 × 31.05–31.15). Special grids overlay the base grids and each other, so the partition rules do
not hold them: what is checked is codes, validity, inside the district (coverage), the same shape given twice.

Known answers: the enterprise grid E0001 crosses the two towns and overlaps S0001 (a partition import would
refuse both: an overlap and the district left uncovered); the commercial grid C0001 reaches ~560 m² past the
district's east edge (clipped); S0001 comes again with a new name and shape (redrawn, its old shape kept).
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, box, shape
from sqlalchemy import text

from api.app import create_app
from api.cli import main
from tests.integration.test_grid_import import _write
from tests.integration.test_grid_import_http import GEOJSON, _count, _setup

E1, P1, C1, S1 = "320506E0001", "320506P0001", "320506C0001", "320506S0001"
OVERLAY = [(E1, "测试企业", MultiPolygon([box(120.18, 31.08, 120.22, 31.12)])),
           (P1, "测试园区", MultiPolygon([box(120.30, 31.00, 120.35, 31.05)])),
           (C1, "测试商圈", MultiPolygon([box(120.39, 31.10, 120.400005, 31.11)])),
           (S1, "新景区", MultiPolygon([box(120.15, 31.05, 120.26, 31.15)]))]


@pytest.fixture(scope="module")
def city():
    engine, auth = _setup("gridlink_test_import_special", world=True)
    with engine.begin() as conn:
        from spatial.access.accounts import add_user, create_token

        add_user(conn, "district-planner", role="planner", scope="320506", password="correct horse battery staple")
        token = create_token(conn, "district-planner", label="tests", ttl=None)[0]
        auth["district-planner"] = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(url=engine.url.render_as_string(hide_password=False))) as client:
        yield client, engine, auth
    engine.dispose()


def test_special_grids_import_through_the_cli_as_an_overlay_and_are_stored_as_a_plan(city, tmp_path, monkeypatch,
                                                                                    capsys) -> None:
    client, engine, auth = city
    cases = {}
    for label, lon, lat in (("both", 120.2, 31.1), ("widened", 120.255, 31.1), ("park", 120.32, 31.02),
                            ("closed", 120.19, 31.09), ("none", 120.01, 31.01)):
        reply = client.post("/api/v1/cases", headers=auth["admin"], json={
            "category": "E010101", "location": {"type": "Point", "coordinates": [lon, lat]},
            "description": f"case {label}", "source": "inspector"})
        assert reply.status_code == 201, reply.text
        cases[label] = reply.json()["id"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE \"case\" SET state = 'closed' WHERE id = :i"), {"i": cases["closed"]})
    path = _write(tmp_path / "special.geojson", OVERLAY, driver="GeoJSON", epsg=4326)
    # the same file as towns' partition would be refused: the grids overlap and leave the district uncovered
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    out = tmp_path / "report.json"
    assert main(["import", "grids", str(path), "--level", "special", "--report", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["state"], report["level"], report["grids"], report["problems"]) == ("committed", "special", 4, [])
    clipped = [r for r in report["repairs"] if r["kind"] == "clipped"]
    assert [r["codes"] for r in clipped] == [[C1, "320506"]] and 400 < clipped[0]["area_m2"] < 700
    assert "clipped" in capsys.readouterr().out
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT g.code, g.level, g.kind, g.name, g.parent_code, gg.kind, round(ST_XMax(gg.geom)::numeric, 6)::float"
            " FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL"
            " WHERE g.level IS NULL ORDER BY g.code")).all()
        assert [tuple(r) for r in stored] == [
            (C1, None, "commercial", "测试商圈", "320506", "commercial", 120.4),  # clipped to the district
            (E1, None, "enterprise", "测试企业", "320506", "enterprise", 120.22),
            (P1, None, "park", "测试园区", "320506", "park", 120.35),
            (S1, None, "scenic", "新景区", "320506", "scenic", 120.26)]
        shapes = conn.execute(text("SELECT round(ST_XMax(geom)::numeric, 2)::float, valid_to IS NULL FROM grid_geometry"
                                   " WHERE grid_code = :c ORDER BY valid_from"), {"c": S1}).all()
        assert [tuple(r) for r in shapes] == [(120.25, False), (120.26, True)]  # redrawn; the old shape kept
        plan = conn.execute(text("SELECT state, source FROM grid_plan WHERE id = :p"), {"p": report["plan"]}).one()
        assert tuple(plan) == ("committed", "import")
        base = conn.execute(text("SELECT count(*) FROM grid_geometry WHERE kind = 'base' AND valid_to IS NOT NULL"))
        assert base.scalar() == 0  # the partition is untouched
        # open cases under the changed special grids take the special grids covering them now; a closed one
        # keeps what it was handled under; one under no changed special grid is not looked at
        specials = dict(conn.execute(text("SELECT id, special_grid_codes FROM \"case\"")).all())
    assert {label: specials[i] for label, i in cases.items()} == {
        "both": [E1, S1], "widened": [S1], "park": [P1], "closed": [S1], "none": []}
    where = client.get("/api/v1/locate", params={"lon": 120.2, "lat": 31.1}, headers=auth["admin"]).json()
    assert sorted(s["code"] for s in where["special_grids"]) == [E1, S1]
    items = client.get("/ogc/collections/special-grids/items", params={"f": "json", "limit": 50}).json()
    assert {f["id"] for f in items["features"]} >= {E1, P1, C1, S1}


def test_special_grids_break_only_their_own_rules_and_are_refused_over_http(city, tmp_path) -> None:
    client, engine, auth = city
    plans = _count(engine, "SELECT count(*) FROM grid_plan")
    bad = [("320506E0002", "同形甲", MultiPolygon([box(120.01, 31.01, 120.02, 31.02)])),
           ("320506P0002", "同形乙", MultiPolygon([box(120.01, 31.01, 120.02, 31.02)])),  # the same shape twice
           ("320506X0001", "坏码", MultiPolygon([box(120.05, 31.05, 120.06, 31.06)])),
           ("320506001", "镇码", MultiPolygon([box(120.05, 31.05, 120.06, 31.06)])),
           ("320599E0001", "无区", MultiPolygon([box(120.05, 31.05, 120.06, 31.06)])),
           ("320506E0003", "重复", MultiPolygon([box(120.07, 31.07, 120.08, 31.08)])),
           ("320506E0003", "重复", MultiPolygon([box(120.09, 31.07, 120.10, 31.08)])),
           ("320506C0002", "越界", MultiPolygon([box(120.35, 31.10, 120.45, 31.12)]))]
    body = _write(tmp_path / "bad.geojson", bad, driver="GeoJSON", epsg=4326).read_bytes()
    reply = client.post("/api/v1/grids/imports", params={"level": "special", "filename": "bad"}, content=body,
                        headers={**auth["admin"], **GEOJSON})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    found = sorted((p["kind"], p["codes"][0]) for p in reply.json()["report"]["problems"])
    assert found == [("bad_code", "320506001"), ("bad_code", "320506X0001"), ("duplicate", "320506E0002"),
                     ("duplicate", "320506E0003"), ("no_parent", "320599E0001"), ("outside_parent", "320506C0002")]
    outside = next(p for p in reply.json()["report"]["problems"] if p["kind"] == "outside_parent")
    assert shape(outside["geometry"]).symmetric_difference(box(120.4, 31.10, 120.45, 31.12)).area < 1e-12
    assert _count(engine, "SELECT count(*) FROM grid_plan") == plans  # nothing stored
    assert _count(engine, "SELECT count(*) FROM grid WHERE code IN ('320506E0002', '320506P0002')") == 0


def test_special_grids_are_imported_by_their_districts_planners_only(city, tmp_path) -> None:
    client, engine, auth = city
    one = [("320506E0009", "小企业", MultiPolygon([box(120.01, 31.15, 120.02, 31.16)]))]
    body = _write(tmp_path / "one.geojson", one, driver="GeoJSON", epsg=4326).read_bytes()
    url, params = "/api/v1/grids/imports", {"level": "special", "store": "draft"}
    # a town's planner plans the town's grids, not the district's overlay (SECURITY.md: special grids)
    assert client.post(url, params=params, content=body, headers={**auth["planner1"], **GEOJSON}).status_code == 403
    assert client.post(url, params=params, content=body, headers={**auth["viewer"], **GEOJSON}).status_code == 403
    assert client.post(url, params={**params, "level": "5"}, content=body,
                       headers={**auth["admin"], **GEOJSON}).status_code == 422
    reply = client.post(url, params=params, content=body, headers={**auth["district-planner"], **GEOJSON})
    assert reply.status_code == 201, reply.text
    with engine.connect() as conn:
        edit = conn.execute(text("SELECT op, level, kind, parent_code FROM grid_plan_edit WHERE plan_id = :p"),
                            {"p": reply.json()["plan"]}).one()
    assert tuple(edit) == ("create", None, "enterprise", "320506")
    committed = client.post(f"/api/v1/plans/{reply.json()['plan']}/commit", json={},
                            headers=auth["district-planner"])
    assert committed.status_code == 200, committed.text
    assert _count(engine, "SELECT count(*) FROM grid WHERE code = '320506E0009' AND level IS NULL") == 1
