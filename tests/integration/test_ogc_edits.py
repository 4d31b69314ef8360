"""OGC API Features Part 4 on components: bearer tokens, owner scopes, ETag / If-Match, validation, and a
history that outlives a deleted component."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from spatial.access.accounts import add_user, create_token

ITEMS = "/ogc/collections/components/items"
NEW = "3205060118000777"  # district 320506, class 0118 (street light), serial 000777
PASSWORD = "correct horse battery staple"


def _feature(code: str = NEW, lon: float = 120.02, lat: float = 31.16, **props) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"code": code, "name": "测试路灯", "owner_key": "LIGHTING", **props}}


@pytest.fixture
def tokens(world_engine) -> dict[str, str]:
    """Bearer tokens for an admin, the lighting office (owner) and another owner."""
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE label IS DISTINCT FROM 'tests'"))
        conn.execute(text("DELETE FROM account WHERE login <> 'test-admin'"))
        conn.execute(text("DELETE FROM component WHERE code = :c"), {"c": NEW})
        owners = [k for (k,) in conn.execute(text("SELECT key FROM department ORDER BY key"))]
        other = next(k for k in owners if k != "LIGHTING")
        add_user(conn, "admin", role="admin", scope="*", password=PASSWORD)
        add_user(conn, "lighting", role="owner", scope="LIGHTING", password=PASSWORD)
        add_user(conn, "other", role="owner", scope=other, password=PASSWORD)
        add_user(conn, "viewer", role="viewer", scope="320506", password=PASSWORD)
        return {login: create_token(conn, login)[0] for login in ("admin", "lighting", "other", "viewer")}


def _auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def test_create_read_replace_delete_with_etags(client: TestClient, tokens, world_engine) -> None:
    assert client.post(ITEMS, json=_feature(), headers={"Authorization": ""}).status_code == 401
    assert client.post(ITEMS, json=_feature(), headers=_auth(tokens["viewer"])).status_code == 403
    assert client.post(ITEMS, json=_feature(), headers=_auth(tokens["other"])).status_code == 403
    created = client.post(ITEMS, json=_feature(), headers=_auth(tokens["lighting"]))
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(f"/collections/components/items/{NEW}")
    assert client.post(ITEMS, json=_feature(), headers=_auth(tokens["admin"])).status_code == 409

    read = client.get(f"{ITEMS}/{NEW}")
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    props = read.json()["properties"]
    assert props["grid_code"] == "320506001001001" and props["class_code"] == "0118"
    assert client.get(f"{ITEMS}/{NEW}", headers={"If-None-Match": '"1"'}).status_code == 304

    moved = _feature(lon=120.06, lat=31.17, status="damaged")
    assert client.put(f"{ITEMS}/{NEW}", json=moved, headers=_auth(tokens["lighting"])).status_code == 428
    replaced = client.put(f"{ITEMS}/{NEW}", json=moved, headers=_auth(tokens["lighting"], **{"If-Match": '"1"'}))
    assert replaced.status_code == 204 and replaced.headers["etag"] == '"2"'
    stale = client.put(f"{ITEMS}/{NEW}", json=moved, headers=_auth(tokens["admin"], **{"If-Match": '"1"'}))
    assert stale.status_code == 412  # a second editor who read revision 1 does not overwrite unseen
    again = client.get(f"{ITEMS}/{NEW}").json()["properties"]
    assert again["grid_code"] == "320506001001002" and again["status"] == "damaged"

    # PATCH: a JSON merge patch of the feature; what it does not name stays.
    patch = {"properties": {"name": "修好的路灯", "status": "intact"}}
    assert client.patch(f"{ITEMS}/{NEW}", json=patch, headers=_auth(tokens["other"], **{"If-Match": '"2"'})
                        ).status_code == 403
    patched = client.patch(f"{ITEMS}/{NEW}", json=patch, headers=_auth(tokens["lighting"], **{"If-Match": '"2"'}))
    assert patched.status_code == 204 and patched.headers["etag"] == '"3"', patched.text
    after = client.get(f"{ITEMS}/{NEW}").json()
    assert after["properties"]["name"] == "修好的路灯" and after["properties"]["status"] == "intact"
    assert after["geometry"]["coordinates"] == [120.06, 31.17] and after["properties"]["owner_key"] == "LIGHTING"
    assert client.patch(f"{ITEMS}/{NEW}", json=[1], headers=_auth(tokens["lighting"], **{"If-Match": '"3"'})
                        ).status_code == 400

    assert client.delete(f"{ITEMS}/{NEW}", headers=_auth(tokens["other"], **{"If-Match": '"3"'})).status_code == 403
    assert client.delete(f"{ITEMS}/{NEW}", headers=_auth(tokens["lighting"], **{"If-Match": '"3"'})).status_code == 204
    assert client.get(f"{ITEMS}/{NEW}").status_code == 404
    with world_engine.connect() as conn:
        actions = [a for (a,) in conn.execute(text(
            "SELECT action FROM component_history WHERE component_code = :c ORDER BY id"), {"c": NEW})]
    assert actions[-4:] == ["create", "status", "status", "delete"]


@pytest.mark.parametrize(("feature", "fragment"), [
    (_feature(code="3205060118"), "16 digits"),
    (_feature(code="3205069999000001"), "unknown component class"),
    (_feature(code="3205990118000001"), "unknown district"),
    (_feature(lon=121.9, lat=31.9), "outside district"),
    (_feature(status="glowing"), "status must be"),
    (_feature(owner_key="NOBODY"), "unknown department"),
    (_feature(colour="red"), "unknown properties"),
    ({**_feature(), "geometry": {"type": "LineString", "coordinates": [[120.02, 31.16], [120.03, 31.16]]}},
     "is a Point, not a LineString"),
    ({**_feature(), "geometry": {"type": "Point", "coordinates": [120.02]}}, "not valid GeoJSON"),
    ({"type": "FeatureCollection", "features": []}, "GeoJSON Feature"),
])
def test_bad_features_are_refused_and_nothing_is_stored(client: TestClient, tokens, world_engine, feature,
                                                        fragment) -> None:
    reply = client.post(ITEMS, json=feature, headers=_auth(tokens["admin"]))
    assert reply.status_code == 400, reply.text
    assert fragment in reply.json()["description"]
    with world_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM component WHERE code = :c"), {"c": NEW}).scalar() == 0


def test_components_in_use_are_retired_not_deleted(client: TestClient, tokens) -> None:
    light = "3205060118000001"
    created = client.post("/api/v1/cases", json={"category": "E010402", "component_code": light})
    assert created.status_code == 201, created.text
    etag = client.get(f"{ITEMS}/{light}").headers["etag"]
    refused = client.delete(f"{ITEMS}/{light}", headers=_auth(tokens["admin"], **{"If-Match": etag}))
    assert refused.status_code == 409 and "removed" in refused.json()["description"]
    towns = client.post("/ogc/collections/towns/items", json=_feature(), headers=_auth(tokens["admin"]))
    assert towns.status_code == 405


def test_part4_is_declared_and_documented(world_client: TestClient) -> None:
    classes = world_client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update" in classes
    document = world_client.get("/ogc/openapi?f=json").json()
    for collection in ("components", "special-grids", "grids"):
        assert "post" in document["paths"][f"/collections/{collection}/items"], collection
        assert {"put", "patch", "delete"} <= set(document["paths"][f"/collections/{collection}/items/{{featureId}}"])
    assert "post" not in document["paths"]["/collections/towns/items"]


SPECIAL = "/ogc/collections/special-grids/items"
PARK = "320506P0901"


def _park(west: float = 120.02, name: str = "测试园区") -> dict:
    ring = [[west, 31.02], [west + 0.03, 31.02], [west + 0.03, 31.05], [west, 31.05], [west, 31.02]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"code": PARK, "name": name}}


@pytest.fixture
def planner(world_engine, tokens) -> str:
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM grid_geometry WHERE grid_code = :c"), {"c": PARK})
        conn.execute(text("DELETE FROM grid WHERE code = :c"), {"c": PARK})
        add_user(conn, "planner", role="planner", scope="320506", password=PASSWORD)
        return create_token(conn, "planner")[0]


def test_special_grids_are_drawn_redrawn_and_retired_with_history(client: TestClient, tokens, planner,
                                                                  world_engine) -> None:
    assert client.post(SPECIAL, json=_park(), headers=_auth(tokens["lighting"])).status_code == 403
    drawn = client.post(SPECIAL, json=_park(), headers=_auth(planner))
    assert drawn.status_code == 201, drawn.text
    located = client.get("/api/v1/locate", params={"lon": 120.03, "lat": 31.03}).json()
    assert PARK in [s["code"] for s in located["special_grids"]]  # assignment sees it at once
    etag = client.get(f"{SPECIAL}/{PARK}").headers["etag"]
    moved = client.put(f"{SPECIAL}/{PARK}", json=_park(west=120.30, name="新园区"),
                       headers=_auth(planner, **{"If-Match": etag}))
    assert moved.status_code == 204, moved.text
    stale = client.put(f"{SPECIAL}/{PARK}", json=_park(), headers=_auth(planner, **{"If-Match": etag}))
    assert stale.status_code == 412
    assert PARK not in [s["code"] for s in client.get(
        "/api/v1/locate", params={"lon": 120.03, "lat": 31.03}).json()["special_grids"]]
    retired = client.delete(f"{SPECIAL}/{PARK}", headers=_auth(planner, **{"If-Match": moved.headers["etag"]}))
    assert retired.status_code == 204
    assert client.get(f"{SPECIAL}/{PARK}").status_code == 404
    with world_engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*), count(valid_to) FROM grid_geometry WHERE grid_code = :c"),
                            {"c": PARK}).one()
    assert tuple(kept) == (2, 2)  # both shapes kept, both closed


@pytest.mark.parametrize(("feature", "fragment"), [
    ({**_park(), "properties": {"code": "320506X0001", "name": "x"}}, "E/P/S/C"),
    ({**_park(), "properties": {"code": PARK}}, "name must be"),
    ({**_park(), "geometry": {"type": "Point", "coordinates": [120.02, 31.02]}}, "Polygon or MultiPolygon"),
    (_park(west=120.39), "outside district"),
])
def test_bad_special_grids_are_refused(client: TestClient, planner, feature, fragment) -> None:
    reply = client.post(SPECIAL, json=feature, headers=_auth(planner))
    assert reply.status_code == 400 and fragment in reply.json()["description"]
    assert client.get(f"{SPECIAL}/{PARK}").status_code == 404


def test_upper_levels_stay_read_only_here(client: TestClient, tokens) -> None:
    reply = client.put("/ogc/collections/communities/items/320506001001", json=_park(),
                       headers=_auth(tokens["admin"], **{"If-Match": '"1"'}))
    assert reply.status_code == 405 and "read-only" in reply.json()["description"]


LIGHT = "3205060118000001"   # the world's street light, owned by LIGHTING
SCENIC = "320506S0001"       # the world's scenic area, a special grid of district 320506


@pytest.fixture
def elsewhere(world_engine, tokens) -> str:
    """A token of a planner of another district (320507): out of scope for the special grids of 320506."""
    with world_engine.begin() as conn:
        add_user(conn, "planner.elsewhere", role="planner", scope="320507", password=PASSWORD)
        return create_token(conn, "planner.elsewhere")[0]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_who_may_edit_is_decided_before_if_match(client: TestClient, tokens, planner, elsewhere,
                                                 method) -> None:
    """RFC 9110 §13.2.1: without If-Match, an anonymous caller gets 401 and a caller who may not edit the item
    403 — not 428, which only the item's legitimate editor gets."""
    def send(path: str, feature: dict, token: str | None) -> int:
        headers = _auth(token) if token else {"Authorization": ""}
        body = {} if method == "delete" else {"json": feature}
        return client.request(method.upper(), path, headers=headers, **body).status_code

    light, scenic = _feature(code=LIGHT), {**_park(), "properties": {"code": SCENIC, "name": "测试景区"}}
    for path, feature, foreign, editor in ((f"{ITEMS}/{LIGHT}", light, tokens["other"], tokens["lighting"]),
                                           (f"{SPECIAL}/{SCENIC}", scenic, elsewhere, planner)):
        assert send(path, feature, None) == 401, path
        assert send(path, feature, tokens["viewer"]) == 403, path      # a role that edits nothing
        assert send(path, feature, foreign) == 403, path               # another owner, another district
        assert send(path, feature, editor) == 428, path
        assert send(path, feature, tokens["admin"]) == 428, path
    assert send(f"{ITEMS}/3205060118999999", light, tokens["lighting"]) == 404  # no such item: before If-Match


def test_who_may_edit_is_decided_before_the_body_is_read(client: TestClient, tokens) -> None:
    junk = b"{not json"
    for headers, status in (({"Authorization": ""}, 401), (_auth(tokens["viewer"]), 403),
                            (_auth(tokens["lighting"]), 400)):
        reply = client.post(ITEMS, content=junk, headers={**headers, "Content-Type": "application/geo+json"})
        assert reply.status_code == status, reply.text
    reply = client.put(f"{ITEMS}/{LIGHT}", content=junk, headers=_auth(tokens["other"], **{"If-Match": '"1"'}))
    assert reply.status_code == 403, reply.text
