"""Roles and scopes (spatial/access/scope.py): every write endpoint refuses a place or item outside the caller's
area or ownership, reads never leak across areas, personal data only to admins and dispatchers, web
sessions need their CSRF token, and every write leaves one append-only audit row."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.world import DISTRICT, case_count, fresh_accounts, grid_code

PASSWORD = "a long enough password"
WEST = [120.06, 31.17]    # town 001, community 001, grid 002
WEST_OTHER = [120.01, 31.17]  # town 001, community 001, grid 001
EAST = [120.30, 31.05]    # town 002, community 002, grid 003
SCENIC = [120.18, 31.12]  # town 001, community 001, grid 004, inside special grid 320506S0001
ACCOUNTS = {
    "disp.west": ("dispatcher", f"{DISTRICT}001"),
    "insp.grid": ("inspector", grid_code(1, 1, 2)),
    "chief.scenic": ("grid_chief", f"{DISTRICT}S0001"),
    "view.east": ("viewer", f"{DISTRICT}002"),
    "partner.east": ("partner", f"{DISTRICT}002"),
    "lights": ("handler", "LIGHTING"),
    "planner.other": ("planner", "320507"),
}


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


def _as(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}" if token else ""}


def _report(where: list[float], **extra) -> dict:
    return {"category": "E010101", "location": {"type": "Point", "coordinates": where},
            **extra}


@pytest.mark.parametrize(("login", "where", "status"), [
    ("disp.west", WEST, 201), ("disp.west", EAST, 403),
    ("insp.grid", WEST, 201), ("insp.grid", WEST_OTHER, 403),
    ("chief.scenic", SCENIC, 201), ("chief.scenic", WEST, 403),
    ("partner.east", EAST, 201), ("partner.east", WEST, 403),
    ("view.east", EAST, 403), ("lights", WEST, 403), ("planner.other", WEST, 403),
    (None, WEST, 401),
])
@pytest.mark.parametrize("keyed", [False, True], ids=["fast path", "keyed route"])
def test_reports_outside_the_area_are_refused_and_not_stored(client: TestClient, tokens, world_engine, login,
                                                             where, status, keyed) -> None:
    headers = _as(tokens[login] if login else None)
    if keyed:
        headers["Idempotency-Key"] = f"scope-{login}-{where[0]}"
    before = case_count(world_engine)
    reply = client.post("/api/v1/cases", json=_report(where), headers=headers)
    assert reply.status_code == status, reply.text
    assert case_count(world_engine) == before + (status == 201)
    if status != 201:
        assert reply.headers["content-type"] == "application/problem+json"


def test_bulk_refuses_rows_outside_the_area(client: TestClient, tokens, world_engine) -> None:
    batch = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": where},
         "properties": {"category": "E010101", "source": "hotline"}} for where in (WEST, EAST)]}
    reply = client.post("/api/v1/cases/bulk", json=batch, headers=_as(tokens["disp.west"]))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["created"], body["refused"]) == (1, 1)
    assert "outside your area" in next(r for r in body["results"] if r["status"] == "refused")["reason"]
    assert client.post("/api/v1/cases/bulk", json=batch, headers=_as(tokens["view.east"])).status_code == 403
    assert client.post("/api/v1/cases/bulk", json=batch, headers=_as(None)).status_code == 401
    assert case_count(world_engine) == 1


def test_open311_partner_keys_report_only_in_their_area(client: TestClient, tokens, world_engine) -> None:
    form = {"service_code": "E010101", "lat": WEST[1], "long": WEST[0], "api_key": tokens["partner.east"]}
    refused = client.post("/open311/v2/requests.json", data=form, headers=_as(None))
    assert refused.status_code == 403 and case_count(world_engine) == 0
    form.update(lat=EAST[1], long=EAST[0])
    assert client.post("/open311/v2/requests.json", data=form, headers=_as(None)).status_code == 201


def _two_cases(client: TestClient) -> tuple[int, int]:
    reporter = {"name": "张三", "phone": "13800000000"}
    west = client.post("/api/v1/cases", json=_report(WEST, reporter=reporter)).json()["id"]
    east = client.post("/api/v1/cases", json=_report(EAST, reporter=reporter)).json()["id"]
    return west, east


def test_reads_stay_inside_the_scope(client: TestClient, tokens) -> None:
    west, east = _two_cases(client)

    def listed(login: str | None) -> list[int]:
        reply = client.get("/api/v1/cases", headers=_as(tokens[login] if login else None))
        return [c["id"] for c in reply.json()["cases"]] if reply.status_code == 200 else reply.status_code

    assert listed("disp.west") == [west] and listed("view.east") == [east] and listed("insp.grid") == [west]
    assert listed("lights") == [] and listed(None) == 401
    assert sorted(listed("partner.east") + listed("disp.west")) == [west, east]
    assert client.get(f"/api/v1/cases/{east}", headers=_as(tokens["disp.west"])).status_code == 403
    assert client.get(f"/api/v1/cases/{west}", headers=_as(tokens["view.east"])).status_code == 403
    assert client.get(f"/api/v1/cases/{west}", headers=_as(None)).status_code == 401
    # Reporters' personal data: dispatchers yes, inspectors and viewers no.
    assert client.get(f"/api/v1/cases/{west}", headers=_as(tokens["disp.west"])).json()["reporter"]["phone"]
    assert "reporter" not in client.get(f"/api/v1/cases/{west}", headers=_as(tokens["insp.grid"])).json()
    page = client.get("/api/v1/cases", headers=_as(tokens["view.east"])).json()["cases"]
    assert all("reporter" not in c for c in page)


def test_ogc_and_tiles_need_an_account_and_keep_cases_in_scope(client: TestClient, tokens) -> None:
    west, east = _two_cases(client)
    for path in ("/ogc/collections/components/items", "/ogc/collections/cases/items",
                 f"/ogc/collections/cases/items/{west}", "/tiles/components/16/54394/26555.mvt",
                 "/tiles/cases/14/13598/6639.mvt", "/ogc/collections/cases/tiles/WebMercatorQuad/14/6639/13598"):
        assert client.get(path, headers=_as(None)).status_code == 401, path
    assert client.get("/ogc/collections/grids/items", headers=_as(None)).status_code == 200
    assert client.get("/tiles/grids/12/3400/1660.mvt", headers=_as(None)).status_code in (200, 204)
    items = client.get("/ogc/collections/cases/items", headers=_as(tokens["view.east"])).json()["features"]
    assert [f["id"] for f in items] == [east]
    assert client.get(f"/ogc/collections/cases/items/{west}", headers=_as(tokens["view.east"])).status_code == 404
    assert client.get(f"/ogc/collections/cases/items/{west}", headers=_as(tokens["disp.west"])).status_code == 200
    # QGIS speaks HTTP Basic only: a token as the password reads too.
    basic = client.get("/ogc/collections/cases/items", auth=("token", tokens["view.east"]), headers=_as(None))
    assert [f["id"] for f in basic.json()["features"]] == [east]


def test_case_tiles_show_only_the_readers_cases(client: TestClient, tokens) -> None:
    import mapbox_vector_tile
    import morecantile

    west, east = _two_cases(client)
    quad = morecantile.tms.get("WebMercatorQuad")

    def ids(login: str) -> set[int]:
        found = set()
        for lon, lat in (WEST, EAST):
            t = quad.tile(lon, lat, 14)
            reply = client.get(f"/tiles/cases/14/{t.x}/{t.y}.mvt", headers=_as(tokens[login]))
            if reply.status_code == 200:
                layer = mapbox_vector_tile.decode(reply.content).get("cases", {})
                found |= {f["properties"]["id"] for f in layer.get("features", [])}
        return found

    assert ids("view.east") == {east} and ids("disp.west") == {west}
    assert ids("lights") == set()


def test_cross_owner_and_cross_area_edits_are_refused(client: TestClient, tokens, world_engine) -> None:
    grid = {"type": "Feature", "properties": {"code": f"{DISTRICT}S0009", "name": "别人的景区"},
            "geometry": {"type": "Polygon", "coordinates": [[[120.02, 31.02], [120.04, 31.02], [120.04, 31.04],
                                                            [120.02, 31.04], [120.02, 31.02]]]}}
    reply = client.post("/ogc/collections/special-grids/items", json=grid, headers=_as(tokens["planner.other"]))
    assert reply.status_code == 403
    light = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.02, 31.16]},
             "properties": {"code": "3205060118000077", "name": "灯", "owner_key": "LIGHTING"}}
    for login in ("lights", "disp.west", "view.east"):  # a handler is not the owner; others have no owner
        reply = client.post("/ogc/collections/components/items", json=light, headers=_as(tokens[login]))
        assert reply.status_code == 403, login
    with world_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grid WHERE code = :c"),
                            {"c": f"{DISTRICT}S0009"}).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM component WHERE code = '3205060118000077'")).scalar() == 0


def test_who_you_are_is_decided_before_the_body(client: TestClient, tokens, world_engine) -> None:
    """An anonymous write with a body that would not validate is a 401, not a 400 or 422 (RFC 9110 §13.2.1);
    the same body from an account is refused for what it is."""
    invalid = {"category": 5, "location": "here"}
    for path in ("/api/v1/cases", "/api/v1/cases/bulk", "/ogc/collections/components/items"):
        assert client.post(path, json=invalid, headers=_as(None)).status_code == 401, path
    assert client.post("/api/v1/cases", json=invalid, headers=_as(tokens["disp.west"])).status_code == 422
    assert client.post("/ogc/collections/components/items", json=invalid,
                       headers=_as(tokens["planner.other"])).status_code == 403  # a planner edits no components
    assert case_count(world_engine) == 0


def test_every_write_is_audited_and_the_log_is_append_only(client: TestClient, tokens, world_engine) -> None:
    with world_engine.connect() as conn:
        start = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    made = client.post("/api/v1/cases", json=_report(WEST), headers=_as(tokens["disp.west"])).json()
    client.post("/api/v1/cases", json=_report(EAST), headers=_as(tokens["disp.west"]))  # refused: no row
    keyed = client.post("/api/v1/cases", json=_report(WEST_OTHER), headers={**_as(tokens["insp.grid"]),
                                                                            "Idempotency-Key": "audit-1"})
    assert keyed.status_code == 403
    with world_engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, role, action, target, client FROM audit_log WHERE id > :s"
                                 " ORDER BY id"), {"s": start}).all()
    assert [tuple(r) for r in rows] == [("disp.west", "dispatcher", "case.create", made["case_no"], "testclient")]
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), world_engine.begin() as conn:
            conn.execute(text(statement))


def test_web_sessions_need_their_csrf_token(client: TestClient, world_engine) -> None:
    browser = TestClient(client.app, base_url="https://testserver")  # the app is already started
    assert browser.post("/api/v1/auth/session", data={"username": "disp.west", "password": "wrong password!"}
                        ).status_code == 401
    opened = browser.post("/api/v1/auth/session", data={"username": "disp.west", "password": PASSWORD})
    assert opened.status_code == 200, opened.text
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    csrf = opened.json()["csrf_token"]
    assert browser.get("/api/v1/auth/session").json()["csrf_token"] == csrf
    forged = browser.post("/api/v1/cases", json=_report(WEST))
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
    assert browser.post("/api/v1/cases", json=_report(WEST), headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert case_count(world_engine) == 0
    made = browser.post("/api/v1/cases", json=_report(WEST), headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    assert browser.get("/api/v1/cases").json()["cases"][0]["id"] == made.json()["id"]
    assert browser.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert browser.get("/api/v1/cases").status_code == 401


@pytest.mark.parametrize(("login", "area", "inside"), [
    ("disp.west", f"{DISTRICT}001", WEST), ("insp.grid", grid_code(1, 1, 2), WEST),
    ("chief.scenic", f"{DISTRICT}S0001", SCENIC),
    ("lights", None, None),  # an owner's cases lie wherever its components are
])
def test_the_session_names_the_box_the_accounts_cases_lie_in(client: TestClient, tokens, world_engine, login,
                                                            area, inside) -> None:
    """The console asks for case tiles only inside ``scope_bounds`` (web/static/console/map.js)."""
    bounds = client.get("/api/v1/auth/session", headers=_as(tokens[login])).json()["scope_bounds"]
    if area is None:
        assert bounds is None
        return
    with world_engine.connect() as conn:
        extent = conn.execute(text("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)"
                                   " FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"), {"c": area}).one()
    assert bounds == pytest.approx(list(extent), abs=1e-6)
    west, south, east, north = bounds
    assert west < inside[0] < east and south < inside[1] < north


BAD_BODIES = {
    "broken JSON": ("application/json", b'{"category": '),
    "no location": ("application/json", b'{"category": "E010101"}'),
    "a form": ("application/x-www-form-urlencoded", b"category=E010101"),
}
# What an account that reports gets for each bad body, per path (unchanged: the body is judged after the caller).
AUTHORISED = {"/api/v1/cases": {"broken JSON": 422, "no location": 422, "a form": 415},
              "/api/v1/cases/bulk": {"broken JSON": 400, "no location": 400, "a form": 415}}


@pytest.mark.parametrize("body", list(BAD_BODIES))
@pytest.mark.parametrize("path", list(AUTHORISED))
@pytest.mark.parametrize(("login", "status"), [(None, 401), ("view.east", 403), ("lights", 403), ("disp.west", None)],
                         ids=["anonymous", "viewer", "handler", "dispatcher"])
def test_the_caller_is_decided_before_the_body_is_read(client: TestClient, tokens, world_engine, login, status,
                                                       path, body) -> None:
    """RFC 9110 §13.2.1 in spirit: who you are and whether you may report come before what you sent."""
    media, content = BAD_BODIES[body]
    headers = {**_as(tokens[login] if login else None), "content-type": media}
    for keyed in (False, True):  # the lean intake layer and the route alike
        reply = client.post(path, content=content, headers={**headers, **({"Idempotency-Key": "k"} if keyed else {})})
        assert reply.status_code == (status or AUTHORISED[path][body]), reply.text
        assert reply.headers["content-type"] == "application/problem+json"
        if status == 401:
            assert reply.headers["www-authenticate"].startswith("Bearer")
    assert case_count(world_engine) == 0


def test_a_session_without_its_csrf_token_is_refused_before_the_body(client: TestClient, tokens) -> None:
    reply = client.post("/api/v1/cases", content=b'{"category": ', headers={
        "Authorization": "", "content-type": "application/json", "cookie": f"gridlink_session={tokens['disp.west']}"})
    assert reply.status_code == 403 and "X-CSRF-Token" in reply.json()["detail"]
