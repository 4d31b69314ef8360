"""OGC API Features Part 4 on base grids (spatial/grids/edits.py): grow, split and merge keep every community
partitioned (no gap, no overlap), keep history, rebind components, and refuse what would break the
partition — on a world of its own, since the edits are committed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from spatial.access.accounts import add_user, create_token
from spatial.grids.topology import check_partition
from tests.conftest import migrated_engine
from tests.world import grid_code

ITEMS = "/ogc/collections/grids/items"
PASSWORD = "a long enough password"
G1, G2, G3, G4 = (grid_code(1, 1, n) for n in (1, 2, 3, 4))  # community 320506001001: lon 120.00–120.20
NEW = "320506001001005"
H1, H2, H3, H4 = (grid_code(2, 1, n) for n in (1, 2, 3, 4))  # community 320506002001: lon 120.20–120.40
# Planners at every scope level over H2 (and a planner of the neighbouring community), besides the admin.
ACCOUNTS = (("admin", "admin", "*"), ("planner.town1", "planner", "320506001"),
            ("planner.town2", "planner", "320506002"), ("planner.grid", "planner", H2),
            ("planner.community", "planner", "320506002001"), ("planner.other", "planner", "320506002002"),
            ("planner.district", "planner", "320506"), ("planner.h4", "planner", H4))


@pytest.fixture(scope="module")
def grid_world() -> Iterator[tuple[Engine, TestClient, dict[str, str]]]:
    """A world database of its own, an app on it, and tokens of an admin and two planners."""
    from api.app import create_app
    from spatial.reference.load import load_reference
    from tests.world import build_world

    engine = migrated_engine("gridlink_test_grid_edits")
    with engine.begin() as conn:
        load_reference(conn)
        build_world(conn)
        for login, role, scope in ACCOUNTS:
            add_user(conn, login, role=role, scope=scope, password=PASSWORD)
        tokens = {login: create_token(conn, login)[0] for login, _, _ in ACCOUNTS}
    with TestClient(create_app(url=engine.url.render_as_string(hide_password=False))) as client:
        yield engine, client, tokens
    engine.dispose()


def _auth(token: str, etag: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **({"If-Match": etag} if etag else {})}


def _grid(code: str, x0: float, y0: float, x1: float, y1: float, name: str = "改划网格") -> dict:
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}}


def _etag(client: TestClient, code: str) -> str:
    return client.get(f"{ITEMS}/{code}").headers["etag"]


def _partitioned(engine: Engine) -> None:
    with engine.connect() as conn:
        report = check_partition(conn, 3, "320506")
    assert report.ok, (report.gaps, report.overlaps)


def _area_deg2(engine: Engine, code: str) -> float:
    with engine.connect() as conn:
        return float(conn.execute(text("SELECT ST_Area(geom) FROM grid_geometry WHERE grid_code = :c"
                                       " AND valid_to IS NULL"), {"c": code}).scalar_one())


def test_growing_a_grid_moves_the_boundary_and_keeps_the_partition(grid_world) -> None:
    engine, client, tokens = grid_world
    with engine.begin() as conn:  # the water manhole cover at lon 120.03 belongs to grid 001
        conn.execute(text("UPDATE component SET grid_code = :g WHERE code = '3205060101000001'"), {"g": G1})
    before = _etag(client, G2)
    reply = client.put(f"{ITEMS}/{G2}", json=_grid(G2, 120.02, 31.1, 120.10, 31.2),
                       headers=_auth(tokens["planner.town1"], before))
    assert reply.status_code == 204, reply.text
    assert reply.headers["etag"] != before and _etag(client, G2) == reply.headers["etag"]
    assert _etag(client, G1) == reply.headers["etag"]  # the neighbour changed in the same version
    assert abs(_area_deg2(engine, G1) - 0.02 * 0.1) < 1e-9 and abs(_area_deg2(engine, G2) - 0.08 * 0.1) < 1e-9
    _partitioned(engine)
    located = client.get("/api/v1/locate", params={"lon": 120.03, "lat": 31.15}).json()
    assert located["grid"]["code"] == G2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT grid_code FROM component WHERE code = '3205060101000001'")).scalar() == G2
        kept = conn.execute(text("SELECT count(*) FROM grid_geometry WHERE grid_code IN (:a, :b)"
                                 " AND valid_to IS NOT NULL"), {"a": G1, "b": G2}).scalar()
        assert kept == 2  # the old shapes stay, closed
        assert conn.execute(text("SELECT name FROM grid WHERE code = :c"), {"c": G2}).scalar() == "改划网格"


@pytest.mark.parametrize(("shape", "status", "fragment"), [
    ((120.12, 31.1, 120.15, 31.2), 400, "gives up"),              # shrinking would leave a gap
    ((120.10, 31.05, 120.16, 31.2), 400, "outside its community"),
    ((120.10, 31.1, 120.20, 31.2), 409, "swallow"),               # grid 004 would vanish
])
def test_edits_that_would_break_the_partition_are_refused(grid_world, shape, status, fragment) -> None:
    engine, client, tokens = grid_world
    etag = _etag(client, G3)
    reply = client.put(f"{ITEMS}/{G3}", json=_grid(G3, *shape), headers=_auth(tokens["admin"], etag))
    assert reply.status_code == status and fragment in reply.json()["description"], reply.text
    assert _etag(client, G3) == etag
    _partitioned(engine)


def test_concurrency_and_scope(grid_world) -> None:
    engine, client, tokens = grid_world
    feature = _grid(G3, 120.10, 31.1, 120.16, 31.2)
    assert client.put(f"{ITEMS}/{G3}", json=feature, headers=_auth(tokens["admin"])).status_code == 428
    assert client.put(f"{ITEMS}/{G3}", json=feature, headers=_auth(tokens["admin"], '"999"')).status_code == 412
    etag = _etag(client, G3)
    assert client.put(f"{ITEMS}/{G3}", json=feature, headers=_auth(tokens["planner.town2"], etag)).status_code == 403
    assert client.put(f"{ITEMS}/{G3}", json=feature, headers={"If-Match": etag}).status_code == 401
    assert client.post("/ogc/collections/towns/items", json=feature,
                       headers=_auth(tokens["admin"])).status_code == 405
    assert _etag(client, G3) == etag
    _partitioned(engine)


def test_split_then_merge(grid_world) -> None:
    engine, client, tokens = grid_world
    area_before = _area_deg2(engine, G3)
    made = client.post(ITEMS, json=_grid(NEW, 120.12, 31.15, 120.14, 31.2, "新拆网格"),
                       headers=_auth(tokens["planner.town1"]))
    assert made.status_code == 201, made.text
    assert made.headers["location"].endswith(f"/collections/grids/items/{NEW}")
    assert abs(_area_deg2(engine, G3) - (area_before - 0.02 * 0.05)) < 1e-9
    _partitioned(engine)
    assert client.get("/api/v1/locate", params={"lon": 120.13, "lat": 31.17}).json()["grid"]["code"] == NEW
    assert client.post(ITEMS, json=_grid(NEW, 120.12, 31.15, 120.14, 31.2),
                       headers=_auth(tokens["admin"])).status_code == 409  # codes are never reused
    merged = client.delete(f"{ITEMS}/{NEW}", headers=_auth(tokens["planner.town1"], made.headers["etag"]))
    assert merged.status_code == 204, merged.text
    assert abs(_area_deg2(engine, G3) - area_before) < 1e-9
    assert client.get(f"{ITEMS}/{NEW}").status_code == 404
    _partitioned(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT retired_at IS NOT NULL FROM grid WHERE code = :c"), {"c": NEW}).scalar()
        actions = [a for (a,) in conn.execute(text("SELECT action FROM audit_log WHERE action LIKE 'base_grid.%'"
                                                   " ORDER BY id"))]
    assert actions[-2:] == ["base_grid.create", "base_grid.delete"]


def test_a_grid_with_open_cases_is_not_merged(grid_world) -> None:
    engine, client, tokens = grid_world
    case = client.post("/api/v1/cases", headers=_auth(tokens["admin"]), json={
        "category": "E010101", "location": {"type": "Point", "coordinates": [120.17, 31.15]}})
    assert case.status_code == 201 and case.json()["grid"]["code"] == G4
    reply = client.delete(f"{ITEMS}/{G4}", headers=_auth(tokens["admin"], _etag(client, G4)))
    assert reply.status_code == 409 and "open cases" in reply.json()["description"]
    _partitioned(engine)



def test_patch_renames_without_moving(grid_world) -> None:
    engine, client, tokens = grid_world
    area, etag = _area_deg2(engine, G4), _etag(client, G4)
    reply = client.patch(f"{ITEMS}/{G4}", json={"properties": {"name": "更名网格"}},
                         headers=_auth(tokens["planner.town1"], etag))
    assert reply.status_code == 204, reply.text
    assert client.get(f"{ITEMS}/{G4}").json()["properties"]["name"] == "更名网格"
    assert _area_deg2(engine, G4) == pytest.approx(area)
    _partitioned(engine)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_who_may_edit_is_decided_before_if_match(grid_world, method) -> None:
    """RFC 9110 §13.2.1: without If-Match, an anonymous caller gets 401 and a planner of another town 403 —
    not 428, which only the grid's legitimate editors get; an unknown grid is 404."""
    engine, client, tokens = grid_world
    feature = _grid(G3, 120.10, 31.1, 120.16, 31.2)

    def send(code: str, headers: dict[str, str]) -> int:
        body = {} if method == "delete" else {"json": feature}
        return client.request(method.upper(), f"{ITEMS}/{code}", headers=headers, **body).status_code

    assert send(G3, {}) == 401
    assert send(G3, _auth(tokens["planner.town2"])) == 403
    assert send(G3, _auth(tokens["planner.town1"])) == 428
    assert send(G3, _auth(tokens["admin"])) == 428
    assert send(grid_code(1, 1, 9), _auth(tokens["admin"])) == 404
    _partitioned(engine)


def _shapes(engine: Engine) -> dict[str, tuple[int, str]]:
    """Every current base grid geometry of community 320506002001: code → (version, WKB hex)."""
    with engine.connect() as conn:
        return {code: (version, geom) for code, version, geom in conn.execute(text(
            "SELECT gg.grid_code, gg.version_id, encode(ST_AsBinary(gg.geom), 'hex') FROM grid_geometry gg"
            " JOIN grid g ON g.code = gg.grid_code WHERE gg.valid_to IS NULL AND g.parent_code = '320506002001'"))}


def _west_edge(engine: Engine, code: str) -> float:
    with engine.connect() as conn:
        return float(conn.execute(text("SELECT ST_XMin(geom) FROM grid_geometry WHERE grid_code = :c"
                                       " AND valid_to IS NULL"), {"c": code}).scalar_one())


# Issue 23, finding 2: an edit changes the edited grid and every neighbour whose shape it moves; the caller's
# scope must cover all of them. A planner of one base grid may rename it, but neither grow it into a
# neighbour, split a new grid off, nor merge it into a neighbour; planners of its community, town or district
# (and admins) may do all three. Run in this order: each allowed edit leaves the community partitioned.
@pytest.mark.parametrize(("login", "allowed", "serial"), [
    ("planner.grid", False, 5), ("planner.other", False, 6), ("planner.community", True, 7),
    ("planner.town2", True, 8), ("planner.district", True, 9), ("admin", True, 10)])
def test_an_edit_needs_a_scope_that_covers_every_grid_it_changes(grid_world, login, allowed, serial) -> None:
    engine, client, tokens = grid_world
    before = _shapes(engine)
    west = _west_edge(engine, H2)
    grow = client.put(f"{ITEMS}/{H2}", json=_grid(H2, west - 0.002, 31.1, 120.30, 31.2),
                      headers=_auth(tokens[login], _etag(client, H2)))
    new = f"320506002001{serial:03d}"
    split = client.post(ITEMS, json=_grid(new, 120.33, 31.18, 120.34, 31.2, "拆分"), headers=_auth(tokens[login]))
    if not allowed:
        merge = client.delete(f"{ITEMS}/{H2}", headers=_auth(tokens[login], _etag(client, H2)))
        assert (grow.status_code, split.status_code, merge.status_code) == (403, 403, 403), (grow.text, merge.text)
        assert _shapes(engine) == before  # nothing changed: not H2, not its neighbours
        assert client.get(f"{ITEMS}/{new}").status_code == 404
        _partitioned(engine)
        return
    assert (grow.status_code, split.status_code) == (204, 201), (grow.text, split.text)
    assert _west_edge(engine, H2) == pytest.approx(west - 0.002) and _west_edge(engine, new) == pytest.approx(120.33)
    merge = client.delete(f"{ITEMS}/{new}", headers=_auth(tokens[login], split.headers["etag"]))
    assert merge.status_code == 204, merge.text
    assert client.get(f"{ITEMS}/{new}").status_code == 404
    _partitioned(engine)


def test_a_planner_of_one_grid_may_still_rename_it(grid_world) -> None:
    """The rule is about what changes: a PUT that keeps the shape changes no neighbour, so the planner of
    that one grid may make it (and a PATCH of the name)."""
    engine, client, tokens = grid_world
    before = _shapes(engine)
    feature = client.get(f"{ITEMS}/{H4}").json()
    reply = client.put(f"{ITEMS}/{H4}", json={"type": "Feature", "geometry": feature["geometry"],
                                               "properties": {"code": H4, "name": "只改名"}},
                       headers=_auth(tokens["planner.h4"], _etag(client, H4)))
    assert reply.status_code == 204, reply.text
    patched = client.patch(f"{ITEMS}/{H4}", json={"properties": {"name": "再改名"}},
                           headers=_auth(tokens["planner.h4"], reply.headers["etag"]))
    assert patched.status_code == 204, patched.text
    after = _shapes(engine)
    assert {c: v for c, v in after.items() if c != H4} == {c: v for c, v in before.items() if c != H4}
    assert client.get(f"{ITEMS}/{H4}").json()["properties"]["name"] == "再改名"
    _partitioned(engine)
