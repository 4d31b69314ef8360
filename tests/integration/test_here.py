"""The map's questions over HTTP (issue 20) on the real PostGIS world: what is at a point (grids, teams with
phone numbers only for the roles that may see them, special grids, nearby components within the radius), the
assignment preview (equal to what intake then stores; nothing stored; a duplicate named only to those who may
read it), the caller's own recent reports, and the category tree (search, ETag)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from tests.integration.test_query_plans import _plan_indexes
from tests.world import DISTRICT, fresh_accounts, grid_code

PASSWORD = "a long enough password"
SPECIAL = f"{DISTRICT}S0001"
ACCOUNTS = {
    "here.insp": ("inspector", DISTRICT), "here.insp.east": ("inspector", f"{DISTRICT}002"),
    "here.viewer": ("viewer", DISTRICT), "here.lights": ("handler", "LIGHTING"),
    "here.chief": ("grid_chief", grid_code(1, 1, 1)), "here.disp": ("dispatcher", DISTRICT),
    "here.insp2": ("inspector", DISTRICT),
}


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


@pytest.fixture(scope="module")
def teams(world_engine):
    """Teams for base grid 1-1-4 and the special grid (removed afterwards: team_member keeps no history)."""
    rows = [(grid_code(1, 1, 4), "chief", "王网格长", "13800000001"),
            (grid_code(1, 1, 4), "inspector", "李巡查员", "13800000002"),
            (SPECIAL, "chief", "赵景区网格长", "13800000003")]
    with world_engine.begin() as conn:
        for row in rows:
            conn.execute(text("INSERT INTO team_member (grid_code, role, name, phone) VALUES (:g, :r, :n, :p)"),
                         dict(zip("grnp", row, strict=True)))
    yield rows
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM team_member WHERE phone LIKE '138000000%'"))


def auth(tokens: dict[str, str], login: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[login]}"}


def test_here_names_grids_teams_and_phones_only_for_staff_who_may_call(client, tokens, teams) -> None:
    where = {"lon": 120.16, "lat": 31.12}  # base grid 1-1-4, inside the scenic special grid
    seen = {}
    for login in ("here.insp", "here.disp", "here.viewer", "here.lights", "here.insp.east"):
        reply = client.get("/api/v1/here", params=where, headers=auth(tokens, login))
        assert reply.status_code == 200, reply.text
        seen[login] = reply.json()
    body = seen["here.insp"]
    assert body["grid"]["code"] == grid_code(1, 1, 4) and body["town"]["code"] == f"{DISTRICT}001"
    assert [s["code"] for s in body["special_grids"]] == [SPECIAL]
    assert body["teams"][grid_code(1, 1, 4)] == [
        {"role": "chief", "name": "王网格长", "phone": "13800000001"},
        {"role": "inspector", "name": "李巡查员", "phone": "13800000002"}]
    assert body["teams"][SPECIAL] == [{"role": "chief", "name": "赵景区网格长", "phone": "13800000003"}]
    assert body["phones_shown"] and seen["here.disp"]["phones_shown"]
    # A viewer, a department's handler and an inspector of another town see names and roles, not numbers.
    for login in ("here.viewer", "here.lights", "here.insp.east"):
        assert not seen[login]["phones_shown"], login
        members = [m for team in seen[login]["teams"].values() for m in team]
        assert len(members) == 3 and all("phone" not in m for m in members), login
    assert client.get("/api/v1/here", params=where, headers={"Authorization": ""}).status_code == 401


def test_here_lists_components_within_the_radius_nearest_first(client, tokens) -> None:
    near = client.get("/api/v1/here", params={"lon": 120.0301, "lat": 31.15}, headers=auth(tokens, "here.insp"))
    assert near.status_code == 200, near.text
    # The water manhole cover 10 m away; its retired neighbour 19 m east of it is not on the street any more.
    components = near.json()["components"]
    assert [c["code"] for c in components] == ["3205060101000001"]
    assert 9 < components[0]["distance_m"] < 11 and components[0]["class_code"] == "0101"
    short = client.get("/api/v1/here", params={"lon": 120.0301, "lat": 31.15, "radius": 5},
                       headers=auth(tokens, "here.insp"))
    assert short.status_code == 200 and short.json()["components"] == []  # the cover is 9.5 m away
    for bad in ({"radius": 0}, {"radius": 201}, {"lon": 200}):
        params = {"lon": 120.0301, "lat": 31.15} | bad
        assert client.get("/api/v1/here", params=params, headers=auth(tokens, "here.insp")).status_code in (400, 422)
    outside = client.get("/api/v1/here", params={"lon": 121.5, "lat": 31.1}, headers=auth(tokens, "here.insp"))
    assert outside.status_code == 422 and "nearest_grid" in outside.json()


def test_components_near_uses_the_gist_index(world_engine) -> None:
    from spatial.cases.here import COMPONENTS_NEAR

    with world_engine.connect() as conn, conn.begin():
        used = _plan_indexes(conn, text(COMPONENTS_NEAR), {"lon": 120.03, "lat": 31.15, "deg": 0.001,
                                                            "radius": 50.0, "limit": 20})
    assert "ix_component_geom" in used


def _counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(text('SELECT (SELECT count(*) FROM "case"), (SELECT count(*) FROM audit_log)')).one())


def test_preview_is_what_intake_then_assigns_and_stores_nothing(client, tokens, world_engine) -> None:
    report = {"category": "E010402", "location": {"type": "Point", "coordinates": [120.0101, 31.15]}}
    before = _counts(world_engine)
    shown = client.post("/api/v1/cases/preview", json=report, headers=auth(tokens, "here.insp"))
    assert shown.status_code == 200, shown.text
    assert _counts(world_engine) == before
    preview = shown.json()
    stored = client.post("/api/v1/cases", json=report, headers=auth(tokens, "here.insp")).json()
    for key in ("grid", "community", "town", "district", "special_grids", "owner", "component"):
        assert preview[key] == stored[key], key
    assert preview["component"]["code"] == "3205060118000001" and preview["category"]["grade"] == "B"
    gap = datetime.fromisoformat(stored["deadline"]) - datetime.fromisoformat(preview["deadline"])
    assert abs(gap.total_seconds()) < 60  # the same limit on the calendar, counted from a moment later
    assert preview["duplicate"] is None
    # Now the stored case is the open original a second report would be linked to.
    again = client.post("/api/v1/cases/preview", json=report, headers=auth(tokens, "here.insp")).json()
    assert again["duplicate"] == {"id": stored["id"], "case_no": stored["case_no"], "state": "reported"}


def test_preview_hides_a_duplicate_the_caller_may_not_read_and_refuses_like_intake(client, tokens) -> None:
    across = {"category": "E010101", "location": {"type": "Point", "coordinates": [120.0502, 31.15]}}  # grid 1-1-2
    assert client.post("/api/v1/cases", json=across, headers=auth(tokens, "here.insp")).status_code == 201
    mine = {"category": "E010101", "location": {"type": "Point", "coordinates": [120.0499, 31.15]}}  # grid 1-1-1
    chief = client.post("/api/v1/cases/preview", json=mine, headers=auth(tokens, "here.chief"))
    assert chief.status_code == 200, chief.text
    assert chief.json()["duplicate"] == {"hidden": True}  # 29 m away, but in a grid outside the chief's area
    assert client.post("/api/v1/cases/preview", json=mine, headers=auth(tokens, "here.viewer")).status_code == 403
    assert client.post("/api/v1/cases/preview", json=mine, headers=auth(tokens, "here.insp.east")).status_code == 403
    unknown = mine | {"category": "E999999"}
    assert client.post("/api/v1/cases/preview", json=unknown, headers=auth(tokens, "here.insp")).status_code == 422
    assert client.post("/api/v1/cases/preview", json=mine, headers={"Authorization": ""}).status_code == 401


def test_my_cases_are_my_own_reports_newest_first(client, tokens) -> None:
    ids = []
    for lon, login in ((120.06, "here.insp2"), (120.07, "here.insp"), (120.08, "here.insp2")):
        reply = client.post("/api/v1/cases", headers=auth(tokens, login),
                            json={"category": "E010101", "location": {"type": "Point", "coordinates": [lon, 31.17]}})
        ids.append(reply.json()["id"])
    photo = client.post(f"/api/v1/cases/{ids[2]}/photos", headers=auth(tokens, "here.insp2"),
                        files=[("photo", ("a.png", _png(), "image/png"))])
    assert photo.status_code == 201, photo.text
    reply = client.get("/api/v1/me/cases", headers=auth(tokens, "here.insp2"))
    assert reply.status_code == 200, reply.text
    cases = reply.json()["cases"]
    assert [c["id"] for c in cases] == [ids[2], ids[0]]
    assert [c["state"] for c in cases] == ["reported", "reported"] and [c["photos"] for c in cases] == [1, 0]
    assert cases[0]["updated_at"]
    assert [c["id"] for c in client.get("/api/v1/me/cases", headers=auth(tokens, "here.insp")).json()["cases"]] == [
        ids[1]]
    assert client.get("/api/v1/me/cases", headers=auth(tokens, "here.viewer")).json() == {"cases": []}
    assert client.get("/api/v1/me/cases", params={"limit": 51}, headers=auth(tokens, "here.insp")).status_code == 422


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def test_category_tree_search_and_etag(client, world_engine) -> None:
    anonymous = {"Authorization": ""}
    whole = client.get("/api/v1/categories", headers=anonymous)
    assert whole.status_code == 200, whole.text
    body = whole.json()
    with world_engine.connect() as conn:
        total, leaves = conn.execute(text("SELECT count(*), count(time_limit) FROM event_category")).one()
    assert (body["count"], body["leaves"]) == (total, leaves)
    seen: set[str] = set()
    for node in body["categories"]:  # tree order: every parent before its children
        assert node["parent"] is None or node["parent"] in seen
        seen.add(node["code"])
    light = next(n for n in body["categories"] if n["code"] == "E010402")
    assert light == {"code": "E010402", "parent": "E0104", "level": 3, "name_zh": "路灯不亮",
                     "name_en": "street light out", "leaf": True, "grade": "B", "time_limit": 1,
                     "time_unit": "working_days", "flow": "component"}
    found = client.get("/api/v1/categories", params={"q": "路灯"}, headers=anonymous).json()["categories"]
    assert {"E01", "E0104", "E010402"} <= {n["code"] for n in found}
    assert all("路灯" in n["name_zh"] or any(m["parent"] == n["code"] for m in found) for n in found)
    english = client.get("/api/v1/categories", params={"q": "STREET LIGHT"}, headers=anonymous).json()["categories"]
    assert "E010402" in {n["code"] for n in english}
    branch = client.get("/api/v1/categories", params={"q": "E0104"}, headers=anonymous).json()["categories"]
    assert {n["code"] for n in branch} >= {"E01", "E0104", "E010401", "E010402", "E010403"}
    cached = client.get("/api/v1/categories", headers=anonymous | {"If-None-Match": whole.headers["etag"]})
    assert cached.status_code == 304 and not cached.content
