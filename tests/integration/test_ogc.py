"""OGC API at /ogc on the known-answer world: landing, OpenAPI 3.0, conformance, collections, keyset pages,
filters (bbox, properties, CQL2), CRS, sorting, single items — and real OGC clients (GDAL) on a live server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from sqlalchemy import text

from api.ogc.build import NOT_OFFERED
from tests.conftest import admin_headers
from tests.live import serving

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def _get(client: TestClient, url: str, **params):
    """GET a path or one of our absolute links (built on the configured public URL) through the client."""
    parts = urllib.parse.urlsplit(url)
    reply = client.get(parts.path + (f"?{parts.query}" if parts.query else ""), params=params or None,
                       headers={"Accept": "application/json"})
    return reply


def _items(client: TestClient, collection: str, **params) -> list[dict]:
    """Every feature of a query, following the ``next`` links."""
    page = _get(client, f"/ogc/collections/{collection}/items", **params)
    assert page.status_code == 200, page.text
    body = page.json()
    found = list(body["features"])
    while (nxt := next((link["href"] for link in body["links"] if link["rel"] == "next"), None)):
        reply = _get(client, nxt)
        assert reply.status_code == 200, (nxt, reply.text)
        body = reply.json()
        found += body["features"]
    return found


def test_landing_openapi_and_conformance(world_client: TestClient) -> None:
    landing = _get(world_client, "/ogc/").json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert desc["type"].startswith("application/vnd.oai.openapi+json;version=3.0")
    document = _get(world_client, desc["href"]).json()
    assert document["openapi"].startswith("3.0")
    validate(document)  # offline: every $ref is local
    assert "https://" not in json.dumps([v for k, v in _refs(document)])
    classes = _get(world_client, "/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert not set(classes) & NOT_OFFERED


def _refs(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield k, v
            else:
                yield from _refs(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v, key)


def test_collections_are_the_specs(world_client: TestClient) -> None:
    ids = [c["id"] for c in _get(world_client, "/ogc/collections").json()["collections"]]
    assert ids == ["districts", "towns", "communities", "grids", "special-grids", "components", "cases"]
    grids = _get(world_client, "/ogc/collections/grids").json()
    assert EPSG + "3857" in grids["crs"] and EPSG + "4490" in grids["crs"]
    queryables = _get(world_client, "/ogc/collections/components/queryables").json()["properties"]
    assert {"code", "class_code", "owner_key", "status"} <= set(queryables)
    schema = _get(world_client, "/ogc/collections/components/schema").json()
    assert {"code", "status"} <= set(schema["properties"])
    for path in ("/ogc/?f=html", "/ogc/collections/grids/items?f=html&limit=3", "/ogc/conformance?f=html"):
        page = world_client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_keyset_pages_cover_the_collection_exactly_once(world_client: TestClient, world_engine) -> None:
    with world_engine.connect() as conn:
        codes = [c for (c,) in conn.execute(text(
            "SELECT g.code FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL"
            " WHERE g.level = 4 ORDER BY g.code"))]
    first = _get(world_client, "/ogc/collections/grids/items", limit=3).json()
    assert first["numberMatched"] == len(codes) and first["numberReturned"] == 3
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert "cursor=" in nxt and "limit=3" in nxt and "offset" not in nxt
    assert [f["id"] for f in _items(world_client, "grids", limit=3)] == codes
    backwards = _items(world_client, "grids", limit=5, sortby="-code")
    assert [f["id"] for f in backwards] == codes[::-1]
    assert _get(world_client, "/ogc/collections/grids/items", offset=3, limit=3).json()["features"][0]["id"] == codes[3]
    assert _get(world_client, "/ogc/collections/grids/items", offset=10_001).status_code == 400
    broken = _get(world_client, "/ogc/collections/grids/items", cursor="not-a-cursor")
    assert broken.status_code == 400


def test_filters_push_into_sql(world_client: TestClient, world_engine) -> None:
    box = _items(world_client, "grids", bbox="120.0,31.1,120.06,31.15")
    assert box and all(f["properties"]["code"].startswith("320506") for f in box)
    expected = len(box)
    with world_engine.connect() as conn:
        in_sql = conn.execute(text(
            "SELECT count(*) FROM grid_geometry gg JOIN grid g ON g.code = gg.grid_code WHERE g.level = 4"
            " AND gg.valid_to IS NULL AND ST_Intersects(gg.geom, ST_MakeEnvelope(120.0, 31.1, 120.06, 31.15, 4326))"
        )).scalar()
    assert expected == in_sql
    latlon = _items(world_client, "grids", bbox="31.1,120.0,31.15,120.06", **{"bbox-crs": EPSG + "4326"})
    assert [f["id"] for f in latlon] == [f["id"] for f in box]  # bbox-crs in latitude, longitude order
    assert _get(world_client, "/ogc/collections/grids/items", bbox="1,2,3").status_code == 400
    assert _get(world_client, "/ogc/collections/grids/items", bbox="120.1,31.1,120.0,31.2").status_code == 400
    lights = _items(world_client, "components", class_code="0118")
    assert lights and {f["properties"]["class_code"] for f in lights} == {"0118"}
    cql = _items(world_client, "grids", filter="code LIKE '320506001%' AND level = 4")
    assert cql and all(f["id"].startswith("320506001") for f in cql)
    spatial = _items(world_client, "grids", filter="S_INTERSECTS(geometry, POINT(120.06 31.17))")
    assert [f["id"] for f in spatial] == ["320506001001002"]
    assert _get(world_client, "/ogc/collections/grids/items", colour="red").status_code == 400
    assert _get(world_client, "/ogc/collections/grids/items", filter="nosuch = 1").status_code == 400
    injection = _items(world_client, "grids", filter="name = 'x; DELETE FROM grid; --'")
    assert injection == [] and _items(world_client, "grids", limit=100)


def test_crs_and_single_items(world_client: TestClient) -> None:
    plain = _get(world_client, "/ogc/collections/grids/items/320506001001002").json()
    assert plain["properties"]["name"] == "测试1-1第2网格"
    x, y = plain["geometry"]["coordinates"][0][0][0]
    assert 119 < x < 122 and 30 < y < 33  # CRS84: longitude, latitude
    flipped = _get(world_client, "/ogc/collections/grids/items/320506001001002", crs=EPSG + "4326")
    assert flipped.headers["content-crs"] == f"<{EPSG}4326>"
    assert flipped.json()["geometry"]["coordinates"][0][0][0] == [y, x]
    metres = _get(world_client, "/ogc/collections/grids/items", crs=EPSG + "3857", limit=1).json()
    mx, my = metres["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 13_000_000 < mx < 14_000_000 and 3_500_000 < my < 4_000_000
    cgcs = _get(world_client, "/ogc/collections/grids/items/320506001001002", crs=EPSG + "4490").json()
    lat, lon = cgcs["geometry"]["coordinates"][0][0][0]
    assert abs(lat - y) < 1e-4 and abs(lon - x) < 1e-4
    assert _get(world_client, "/ogc/collections/grids/items/999").status_code == 404
    assert _get(world_client, "/ogc/collections/nothing/items").status_code == 404


def test_cases_never_show_personal_data(client: TestClient) -> None:
    created = client.post("/api/v1/cases", json={
        "category": "E010101", "location": {"type": "Point", "coordinates": [120.06, 31.17]},
        "reporter": {"name": "王芳", "phone": "13800000000"}})
    assert created.status_code == 201
    [case] = _items(client, "cases")
    assert case["id"] == created.json()["id"]
    assert "王芳" not in json.dumps(case, ensure_ascii=False) and "13800000000" not in json.dumps(case)


# --- real clients -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(world_engine):
    """``gridlink serve`` on the world database, for clients outside Python."""
    if shutil.which("ogrinfo") is None:
        if os.environ.get("CI"):
            pytest.fail("GDAL (ogrinfo) is missing: the test command installs it (scripts/test)")
        pytest.skip("GDAL (ogrinfo) is not installed")
    with serving(world_engine.url.render_as_string(hide_password=False)) as port:
        yield f"http://127.0.0.1:{port}/ogc"


def _count(conn, sql: str) -> int:
    return int(conn.execute(text(sql)).scalar())


def test_gdal_lists_components_with_the_right_count(live, world_engine) -> None:
    # Components need an account: GDAL sends the token as HTTP Basic password (api/auth.py).
    token = admin_headers()["Authorization"].split()[1]
    out = subprocess.run(["ogrinfo", "--config", "GDAL_HTTP_AUTH", "BASIC", "--config", "GDAL_HTTP_USERPWD",
                          f"token:{token}", "-ro", "-so", f"OAPIF:{live}", "components"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with world_engine.connect() as conn:
        expected = _count(conn, "SELECT count(*) FROM component")
    assert f"Feature Count: {expected}" in out.stdout


def test_ogr2ogr_copies_grids_into_a_geopackage_equal_to_the_database(live, world_engine, tmp_path: Path) -> None:
    target = tmp_path / "grids.gpkg"
    copied = subprocess.run(["ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{live}", "grids"],
                            capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    dumped = subprocess.run(["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", str(target)], capture_output=True,
                            text=True, timeout=120)
    assert dumped.returncode == 0, dumped.stderr
    got = {f["properties"]["code"]: f for f in json.loads(dumped.stdout)["features"]}
    with world_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, g.name, ST_AsGeoJSON(gg.geom) FROM grid g JOIN grid_geometry gg"
            " ON gg.grid_code = g.code AND gg.valid_to IS NULL WHERE g.level = 4")).all()
    assert set(got) == {code for code, _, _ in rows}
    for code, name, geometry in rows:
        assert got[code]["properties"]["name"] == name
        ours, theirs = shapely.from_geojson(geometry), shapely.geometry.shape(got[code]["geometry"])
        assert ours.symmetric_difference(theirs).area < 1e-12


def test_owslib_lists_collections_and_pages_through_items(live, world_engine) -> None:
    from owslib.ogcapi.features import Features

    service = Features(live)
    assert "components" in [c["id"] for c in service.collections()["collections"]]
    seen, params = [], {"limit": 4}
    while True:
        page = service.collection_items("grids", **params)
        seen += [f["id"] for f in page["features"]]
        nxt = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        if nxt is None:
            break
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(nxt).query))
    with world_engine.connect() as conn:
        expected = [c for (c,) in conn.execute(text(
            "SELECT grid_code FROM grid_geometry WHERE valid_to IS NULL AND kind = 'base' ORDER BY grid_code"))]
    assert seen == expected


# QGIS's Python interpreter crashes while tearing itself down after exitQgis(): the script prints its answer,
# flushes and leaves with os._exit.
QGIS_SCRIPT = """
import json, os, sys
from qgis.core import QgsApplication, QgsVectorLayer
QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
uri = "url='" + sys.argv[1] + "' typename='components' username='token' password='" + sys.argv[2] + "'"
layer = QgsVectorLayer(uri, "components", "OAPIF")
codes = sorted(f["code"] for f in layer.getFeatures()) if layer.isValid() else []
print(json.dumps({"valid": layer.isValid(), "count": layer.featureCount(), "codes": codes}), flush=True)
os._exit(0)
"""


def test_qgis_opens_the_components_layer(live, world_engine) -> None:
    system_python = "/usr/bin/python3"
    probe = subprocess.run([system_python, "-c", "import qgis.core"], capture_output=True, timeout=120)
    if probe.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("QGIS (python3-qgis) is missing: the test command installs it (scripts/test)")
        pytest.skip("QGIS (python3-qgis) is not installed")
    # A clean environment: the system Python must not see our virtual environment's variables.
    env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.mkdtemp(), "QT_QPA_PLATFORM": "offscreen",
           "XDG_RUNTIME_DIR": tempfile.mkdtemp(), "LANG": "C.UTF-8"}
    token = admin_headers()["Authorization"].split()[1]  # QGIS authenticates with HTTP Basic
    out = subprocess.run([system_python, "-c", QGIS_SCRIPT, live, token], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    with world_engine.connect() as conn:
        codes = sorted(c for (c,) in conn.execute(text("SELECT code FROM component")))
    assert found["valid"], out.stderr
    assert found["count"] == len(codes) and found["codes"] == codes


def test_the_component_count_stays_exact(world) -> None:
    def counts() -> tuple[int, int]:
        kept = world.execute(text("SELECT n FROM row_count WHERE table_name = 'component'")).scalar()
        return int(kept), int(world.execute(text("SELECT count(*) FROM component")).scalar())

    kept, real = counts()
    assert kept == real
    insert = ("INSERT INTO component (code, class_code, district_code, manager_key, owner_key, maintainer_key,"
              " status, geom) SELECT :code, class_code, district_code, manager_key, owner_key, maintainer_key,"
              " status, geom FROM component WHERE code = '3205060118000001'")
    world.execute(text(insert), {"code": "3205060118000901"})
    world.execute(text("SET LOCAL session_replication_role = replica"))  # as bulk loads run
    world.execute(text(insert), {"code": "3205060118000902"})
    world.execute(text("SET LOCAL session_replication_role = origin"))
    assert counts() == (real + 2, real + 2)
    world.execute(text("DELETE FROM component WHERE code = '3205060118000901'"))
    assert counts() == (real + 1, real + 1)
