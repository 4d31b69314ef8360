"""Vector tiles on the known-answer world, decoded with mapbox_vector_tile: features and attributes, zoom
rules, ETag / 304, invalidation (a changed component or a new case shows in the very next request), TileJSON,
OGC API - Tiles, errors, and the GiST index under the tile statements. A unit's handlers see on the map the
cases it assists on (joint handling), as in the REST list."""

from __future__ import annotations

import json

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from spatial.store.partitions import open_span
from tests.plans import root_indexes
from tests.world import fresh_accounts
from tiles.layers import LAYERS, tile_params, tile_sql

TMS = morecantile.tms.get("WebMercatorQuad")


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    t = TMS.tile(lon, lat, z)
    return t.z, t.x, t.y


def _decode(client: TestClient, layer: str, z: int, x: int, y: int, **params) -> list[dict]:
    reply = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", params=params)
    if reply.status_code == 204:
        return []
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(reply.content)[layer]["features"]


def test_grid_tiles_carry_the_right_grids(world_client: TestClient) -> None:
    z, x, y = _tile(120.06, 31.17, 14)
    features = _decode(world_client, "grids", z, x, y)
    codes = {f["properties"]["code"] for f in features}
    assert "320506001001002" in codes
    grid = next(f for f in features if f["properties"]["code"] == "320506001001002")
    assert grid["properties"]["name"] == "测试1-1第2网格" and grid["properties"]["level"] == 4
    assert grid["geometry"]["type"] in ("Polygon", "MultiPolygon")
    towns = _decode(world_client, "towns", *_tile(120.06, 31.17, 10))
    assert {f["properties"]["level"] for f in towns} == {2}


def test_components_are_aggregated_below_their_readable_zoom(world_client: TestClient, world_engine) -> None:
    detail = _decode(world_client, "components", *_tile(120.01, 31.15, 17))
    light = next(f for f in detail if f["properties"]["code"] == "3205060118000001")
    assert light["properties"]["class_code"] == "0118" and "count" not in light["properties"]
    low = _decode(world_client, "components", *_tile(120.01, 31.15, 12))
    assert low and all(set(f["properties"]) == {"count"} for f in low)
    with world_engine.connect() as conn:
        in_district = conn.execute(text(
            "SELECT count(*) FROM component WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(:z, :x, :y),"
            " 4326))"), dict(zip(("z", "x", "y"), _tile(120.01, 31.15, 12), strict=True))).scalar()
    assert sum(f["properties"]["count"] for f in low) == in_district
    assert _decode(world_client, "components", *_tile(120.01, 31.15, 9)) == []  # below minzoom: nothing


def test_outlines_tile_holds_the_district_and_town_layers_in_one_reply(world_client: TestClient) -> None:
    """The composite layer the console draws at low zoom: one tile with the districts' and the towns' layers,
    feature for feature those of their own tiles; public like them; its TileJSON names both layers."""
    z, x, y = _tile(120.06, 31.17, 10)
    anonymous = {"Authorization": ""}
    reply = world_client.get(f"/tiles/outlines/{z}/{x}/{y}.mvt", headers=anonymous)
    assert reply.status_code == 200, reply.text
    both = mapbox_vector_tile.decode(reply.content)
    assert set(both) == {"districts", "towns"}
    for name in ("districts", "towns"):
        alone = _decode(world_client, name, z, x, y)
        assert alone and both[name]["features"] == alone
    assert reply.headers["etag"] == world_client.get(f"/tiles/outlines/{z}/{x}/{y}.mvt").headers["etag"]
    assert world_client.get("/tiles/outlines/10/0/0.mvt").status_code == 204  # nothing there: empty
    doc = world_client.get("/tiles/outlines.json").json()
    assert [layer["id"] for layer in doc["vector_layers"]] == ["districts", "towns"]
    assert "code" in doc["vector_layers"][1]["fields"]


def _vertices(geometry: dict) -> int:
    return len(json.dumps(geometry["coordinates"]).split("],")) + 1


def test_polygons_are_simplified_at_low_zoom(small_demo) -> None:
    """A whole town in one z9 tile carries far fewer vertices than it has (half a screen pixel of tolerance)."""
    layer = LAYERS["towns"]
    with small_demo.connect() as conn:
        code, lon, lat, stored = conn.execute(text(
            "SELECT g.code, ST_X(p), ST_Y(p), ST_NPoints(gg.geom) FROM grid g JOIN grid_geometry gg"
            " ON gg.grid_code = g.code AND gg.valid_to IS NULL, ST_PointOnSurface(gg.geom) p WHERE g.level = 2"
            " ORDER BY ST_NPoints(gg.geom) DESC LIMIT 1")).one()
        z, x, y = _tile(lon, lat, 9)
        data = conn.execute(text(tile_sql(layer, z)), tile_params(z, x, y)).scalar()
    features = mapbox_vector_tile.decode(bytes(data))["towns"]["features"]
    shown = _vertices(next(f for f in features if f["properties"]["code"] == code)["geometry"])
    assert shown < stored / 2, (shown, stored)


def test_etag_304_and_a_changed_component_shows_next(world_client: TestClient, world_engine) -> None:
    where = _tile(120.01, 31.15, 17)
    path = "/tiles/components/{}/{}/{}.mvt".format(*where)
    first = world_client.get(path)
    assert world_client.get(path, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    with world_engine.begin() as conn:
        conn.execute(text("UPDATE component SET status = 'damaged' WHERE code = '3205060118000001'"))
    try:
        after = world_client.get(path)  # the very next request
        assert after.headers["etag"] != first.headers["etag"]
        light = next(f for f in mapbox_vector_tile.decode(after.content)["components"]["features"]
                     if f["properties"]["code"] == "3205060118000001")
        assert light["properties"]["status"] == "damaged"
        # The tile of the older generation is gone from the cache, not left to age out.
        cache = world_client.app.state.tiles
        kept = [k for k in cache.by_group["components"] if k[1:4] == where]
        assert len(kept) == 1 and kept[0][-1] == cache.newest["components"]
    finally:
        with world_engine.begin() as conn:
            conn.execute(text("UPDATE component SET status = 'intact' WHERE code = '3205060118000001'"))


def test_case_tiles_follow_intake_and_hide_personal_data(client: TestClient) -> None:
    where = _tile(120.06, 31.17, 15)
    assert _decode(client, "cases", *where) == []
    created = client.post("/api/v1/cases", json={
        "category": "E010101", "location": {"type": "Point", "coordinates": [120.06, 31.17]},
        "reporter": {"name": "王芳", "phone": "13800000000"}}).json()
    features = _decode(client, "cases", *where)  # the very next request
    assert [f["properties"]["id"] for f in features] == [created["id"]]
    assert "王芳" not in json.dumps(features, ensure_ascii=False)
    assert _decode(client, "cases", *where, state="dispatched") == []
    assert client.get("/tiles/cases/{}/{}/{}.mvt".format(*where), params={"state": "closed"}).status_code == 400


def test_tilejson_and_errors(world_client: TestClient) -> None:
    doc = world_client.get("/tiles/components.json").json()
    assert doc["tilejson"] == "3.0.0" and doc["tiles"][0].endswith("/tiles/components/{z}/{x}/{y}.mvt")
    assert doc["vector_layers"][0]["id"] == "components" and "status" in doc["vector_layers"][0]["fields"]
    assert world_client.get("/tiles/nothing.json").status_code == 404
    missing = world_client.get("/tiles/nothing/1/0/0.mvt")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert world_client.get("/tiles/grids/3/8/0.mvt").status_code == 400


def _indexes(node: dict) -> set[str]:
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", []):
        found |= _indexes(child)
    return found


@pytest.mark.parametrize(("name", "indexes"), [
    ("grids", {"ix_grid_geometry_geom", "ix_grid_geometry_current_geom"}),
    ("components", {"ix_component_geom"}),
    ("cases", {"ix_case_location", "ix_case_open_location"}),
])
def test_tile_statements_use_the_gist_indexes(world_engine, name: str, indexes: set[str]) -> None:
    z, x, y = _tile(120.06, 31.17, 17)
    with world_engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + tile_sql(LAYERS[name], z)),
                            tile_params(z, x, y, span=open_span(conn))).scalar()
        used = root_indexes(conn, _indexes(plan[0]["Plan"]))  # the months of "case" by the parent's indexes
    assert used & indexes


def test_ogc_api_tiles_advertises_and_serves_the_same_tiles(world_client: TestClient) -> None:
    grids = world_client.get("/ogc/collections/grids", headers={"Accept": "application/json"}).json()
    link = next(x for x in grids["links"] if x["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector")
    assert link["href"].endswith("/ogc/collections/grids/tiles")
    [tileset] = world_client.get("/ogc/collections/grids/tiles").json()["tilesets"]
    template = next(x["href"] for x in tileset["links"] if x["rel"] == "item")
    assert template.endswith("/collections/grids/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    z, x, y = _tile(120.06, 31.17, 14)
    ogc = world_client.get(f"/ogc/collections/grids/tiles/WebMercatorQuad/{z}/{y}/{x}")  # row (y) before column
    plain = world_client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert ogc.status_code == 200 and ogc.content == plain.content and ogc.headers["etag"] == plain.headers["etag"]
    tms = world_client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad"
    classes = world_client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in classes
    assert world_client.get("/ogc/collections/grids/tiles/WorldCRS84Quad").status_code == 404


TILE_ACCOUNTS = {"tl.parks": ("handler", "PARKS"), "tl.lights": ("handler", "LIGHTING"),
                 "tl.chief": ("grid_chief", "320506001001002")}


def test_case_tiles_show_a_unit_the_cases_it_assists_on_as_rest_does(client: TestClient, world_engine) -> None:
    tokens = fresh_accounts(world_engine, TILE_ACCOUNTS, "a long enough password")
    where, low = _tile(120.06, 31.17, 15), _tile(120.06, 31.17, 10)

    def seen(login: str) -> tuple[list[int], int, list[int]]:
        """The case ids in the detailed tile, the count in the aggregated one, and the REST list."""
        headers = {"Authorization": f"Bearer {tokens[login]}"}
        tiles = []
        for z, x, y in (where, low):
            reply = client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", headers=headers)
            assert reply.status_code in (200, 204), reply.text
            tiles.append(mapbox_vector_tile.decode(reply.content)["cases"]["features"] if reply.content else [])
        listed = client.get("/api/v1/cases", headers=headers).json()["cases"]
        return ([f["properties"]["id"] for f in tiles[0]], sum(f["properties"]["count"] for f in tiles[1]),
                [c["id"] for c in listed])

    created = client.post("/api/v1/cases", json={
        "category": "E010101", "location": {"type": "Point", "coordinates": [120.06, 31.17]}}).json()
    case_id = created["id"]
    assert seen("tl.parks") == ([], 0, [])  # not yet its case (and the tile is now cached for its scope)
    for action, body in (("register", {}), ("dispatch", {"assist": [{"key": "PARKS"}]})):
        etag = client.get(f"/api/v1/cases/{case_id}").headers["etag"]
        reply = client.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers={"If-Match": etag})
        assert reply.status_code == 200, reply.text
    assert seen("tl.parks") == ([case_id], 1, [case_id])  # an assisting unit: on the map as in the list
    assert seen("tl.lights") == ([], 0, [])  # another department: neither
    assert seen("tl.chief") == ([case_id], 1, [case_id])  # the lead (an area scope) as before
