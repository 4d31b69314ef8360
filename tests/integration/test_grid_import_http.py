"""Importing grids over HTTP (issue 19, item 6): ``POST /api/v1/grids/imports`` against real PostGIS — the real
Suzhou districts into an empty database, towns of the known-answer world in several formats, a gap refused
with its polygon, and who may import what, within which size."""

from __future__ import annotations

import io
import zipfile

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, shape
from sqlalchemy import text

from api.app import create_app
from api.settings import ApiSettings
from spatial.access.accounts import add_user, create_token
from tests.conftest import migrated_engine
from tests.integration.test_grid_import import REAL, _towns, _write
from tests.world import build_world

PASSWORD = "correct horse battery staple"
GEOJSON = {"Content-Type": "application/geo+json"}


def _setup(dbname: str, world: bool):
    from spatial.reference.load import load_reference

    engine = migrated_engine(dbname)
    tokens = {}
    with engine.begin() as conn:
        load_reference(conn)
        if world:
            build_world(conn)
        accounts = [("admin", "admin", "*")]
        if world:  # scopes name stored areas
            accounts += [("planner1", "planner", "320506001"), ("viewer", "viewer", "320506")]
        for login, role, scope in accounts:
            add_user(conn, login, role=role, scope=scope, password=PASSWORD)
            tokens[login] = {"Authorization": f"Bearer {create_token(conn, login, label='tests', ttl=None)[0]}"}
    return engine, tokens


@pytest.fixture(scope="module")
def empty_city():
    engine, auth = _setup("gridlink_test_import_http_empty", world=False)
    with TestClient(create_app(url=engine.url.render_as_string(hide_password=False))) as client:
        yield client, engine, auth
    engine.dispose()


@pytest.fixture(scope="module")
def town_city():
    engine, auth = _setup("gridlink_test_import_http_world", world=True)
    settings = ApiSettings(max_grid_file_bytes=200_000)
    with TestClient(create_app(url=engine.url.render_as_string(hide_password=False), api_settings=settings)) as client:
        yield client, engine, auth
    engine.dispose()


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_the_real_suzhou_file_imports_over_http_with_every_repair_listed(empty_city) -> None:
    client, engine, auth = empty_city
    body = REAL.read_bytes()
    reply = client.post("/api/v1/grids/imports", params={"level": 1, "filename": REAL.name}, content=body,
                        headers={**auth["admin"], **GEOJSON})
    assert reply.status_code == 201, reply.text
    report = reply.json()
    assert (report["state"], report["grids"], report["ok"], report["problems"]) == ("committed", 9, True, [])
    assert report["file"] == "suzhou_districts.geojson"
    kinds = sorted(r["kind"] for r in report["repairs"] if r["kind"] in ("invalid", "sliver"))
    assert kinds == ["invalid"] * 8 + ["sliver"] * 4  # the same repairs as the CLI reports
    assert all(r["location"] and r["area_m2"] >= 0 for r in report["repairs"])
    assert _count(engine, "SELECT count(*) FROM grid_geometry gg JOIN grid g ON g.code = gg.grid_code"
                          " WHERE g.level = 1 AND gg.valid_to IS NULL") == 9
    assert _count(engine, "SELECT count(*) FROM audit_log WHERE action = 'grid.import' AND actor = 'admin'"
                          " AND target = :t", t=f"plan {report['plan']}") == 1


def test_towns_import_over_http_as_a_draft_from_geopackage_and_zipped_shapefile(town_city, tmp_path) -> None:
    client, engine, auth = town_city
    gpkg = _write(tmp_path / "towns.gpkg", _towns(sliver=0.00002), driver="GPKG", epsg=4549, fields=("DM", "MC"))
    reply = client.post("/api/v1/grids/imports", content=gpkg.read_bytes(),
                        params={"level": 2, "code_field": "DM", "name_field": "MC", "store": "draft",
                                "filename": "towns.gpkg"},
                        headers={**auth["admin"], "Content-Type": "application/geopackage+sqlite3"})
    assert reply.status_code == 201, reply.text
    assert reply.json()["state"] == "draft"
    assert [r["codes"] for r in reply.json()["repairs"] if r["kind"] == "overlap"] == [["320506001", "320506002"]]
    assert _count(engine, "SELECT count(*) FROM grid_plan_edit WHERE plan_id = :p", p=reply.json()["plan"]) == 2
    assert _count(engine, "SELECT count(*) FROM grid_geometry WHERE valid_to IS NOT NULL") == 0  # a draft

    _write(tmp_path / "towns.shp", _towns(), driver="ESRI Shapefile", epsg=4490)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        for part in tmp_path.glob("towns.*"):
            if part.suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                archive.write(part, part.name)
    checked = client.post("/api/v1/grids/imports", params={"level": 2, "store": "none"}, content=packed.getvalue(),
                          headers={**auth["admin"], "Content-Type": "application/zip"})
    assert checked.status_code == 200, checked.text
    assert (checked.json()["state"], checked.json()["plan"], checked.json()["grids"]) == ("checked", None, 2)


def test_a_town_file_with_a_gap_is_refused_over_http_with_the_gap_polygon(town_city, tmp_path) -> None:
    client, engine, auth = town_city
    plans = _count(engine, "SELECT count(*) FROM grid_plan")
    path = _write(tmp_path / "gap.geojson", _towns(gap=0.01), driver="GeoJSON", epsg=4326)
    reply = client.post("/api/v1/grids/imports", params={"level": 2, "filename": "gap.geojson"},
                        content=path.read_bytes(), headers={**auth["admin"], **GEOJSON})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    problems = reply.json()["report"]["problems"]
    assert [p["kind"] for p in problems] == ["gap"]
    assert shape(problems[0]["geometry"]).symmetric_difference(box(120.2, 31.0, 120.21, 31.2)).area < 1e-12
    assert _count(engine, "SELECT count(*) FROM grid_plan") == plans  # nothing stored
    assert _count(engine, "SELECT count(*) FROM audit_log WHERE action = 'grid.import_refused'"
                          " AND target = 'gap.geojson'") == 1


def test_who_may_import_and_how_much(town_city, tmp_path) -> None:
    client, engine, auth = town_city
    plans = _count(engine, "SELECT count(*) FROM grid_plan")
    body = _write(tmp_path / "towns.geojson", _towns(), driver="GeoJSON", epsg=4326).read_bytes()
    url, params = "/api/v1/grids/imports", {"level": 2}
    assert client.post(url, params=params, content=body, headers=GEOJSON).status_code == 401
    assert client.post(url, params=params, content=body, headers={**auth["viewer"], **GEOJSON}).status_code == 403
    # a planner of town 1 may not redraw town 2
    assert client.post(url, params=params, content=body, headers={**auth["planner1"], **GEOJSON}).status_code == 403
    assert client.post(url, params=params, content=body,
                       headers={**auth["admin"], "Content-Type": "text/csv"}).status_code == 415
    big = client.post(url, params=params, content=b" " * 200_001, headers={**auth["admin"], **GEOJSON})
    assert big.status_code == 413 and "GRIDLINK_API_MAX_GRID_FILE_BYTES" in big.json()["detail"]
    garbage = client.post(url, params=params, content=b"not a grid file", headers={**auth["admin"], **GEOJSON})
    assert garbage.status_code == 400
    for name, status in (("../etc/x", 422), ("x\x00", 400)):  # no paths; no control characters (SECURITY.md)
        reply = client.post(url, params={**params, "filename": name}, content=body,
                            headers={**auth["admin"], **GEOJSON})
        assert reply.status_code == status, reply.text
    assert _count(engine, "SELECT count(*) FROM grid_plan") == plans


def test_hostile_query_values_are_a_4xx_and_store_nothing(town_city, tmp_path) -> None:
    """Every query parameter of the import with each value of the hostile corpus (tests/integration/test_hostile.py):
    a 4xx or a dry run's answer, never a 5xx, nothing stored; a time before the towns' shapes is a 409."""
    from tests.integration.test_hostile import VALUES

    client, engine, auth = town_city
    body = _write(tmp_path / "towns.geojson", _towns(), driver="GeoJSON", epsg=4326).read_bytes()
    plans = _count(engine, "SELECT count(*) FROM grid_plan")
    failures = []
    for name in ("level", "code_field", "name_field", "parent_field", "crs", "layer", "sliver_m2", "store",
                 "effective_at", "filename"):
        for label, value in VALUES.items():
            params = {"level": 2, "store": "none", name: value}
            reply = client.post("/api/v1/grids/imports", params=params, content=body,
                                headers={**auth["admin"], **GEOJSON})
            if reply.status_code >= 500 or (reply.status_code not in (200, 400, 413, 422)):
                failures.append(f"{name} {label}: {reply.status_code} {reply.text[:200]}")
    assert not failures, "\n".join(failures)
    assert _count(engine, "SELECT count(*) FROM grid_plan") == plans
    early = client.post("/api/v1/grids/imports", params={"level": 2, "effective_at": "2001-01-01T00:00:00Z"},
                        content=body, headers={**auth["admin"], **GEOJSON})
    assert early.status_code == 409 and _count(engine, "SELECT count(*) FROM grid_plan") == plans
