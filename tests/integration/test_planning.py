"""Grid plans and time travel over HTTP against real PostGIS (issue 19, items 2–6), on a copy of the known-answer
world of tests/world.py of its own (the tests commit).

Community 320506001001 is lon 120.0–120.2, lat 31.1–31.2, cut into base grids 001…004 of 0.05° each, west to
east. A line drawn down lon 120.04 cuts the strip 120.04–120.05 off grid 001, which hands it to its neighbour
002: the swept area. Known points: component A and open case a inside the strip; component B and open case
b in 001 outside it; closed case c inside the strip.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import text

from spatial.access.accounts import add_user, create_token
from spatial.grids.topology import check_partition
from tests.conftest import migrated_engine
from tests.world import build_world, grid_code

G1, G2, G3 = grid_code(1, 1, 1), grid_code(1, 1, 2), grid_code(1, 1, 3)
COMMUNITY = G1[:12]
LINE = {"type": "LineString", "coordinates": [[120.04, 31.2], [120.04, 31.1]]}
SWEPT = [("A", 120.045, 31.15), ("B", 120.035, 31.15)]
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def town():
    """The world in a database of its own, with accounts, components bound to their grids and three cases."""
    from spatial.reference.load import load_reference

    engine = migrated_engine("gridlink_test_planning")
    tokens = {}
    with engine.begin() as conn:
        load_reference(conn)
        build_world(conn)
        for login, role, scope in (("admin", "admin", "*"), ("planner1", "planner", "320506001"),
                                   ("planner2", "planner", "320506002"), ("viewer", "viewer", "320506")):
            add_user(conn, login, role=role, scope=scope, password=PASSWORD)
            tokens[login] = create_token(conn, login, label="tests", ttl=None)[0]
        for label, lon, lat in SWEPT:
            conn.execute(text(
                "INSERT INTO component (code, class_code, district_code, manager_key, owner_key, maintainer_key,"
                " status, geom) VALUES (:c, '0118', '320506', 'LIGHTING', 'LIGHTING', 'LIGHTING', 'intact',"
                " ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                {"c": f"320506011800010{ord(label) - 64}", "x": lon, "y": lat})
        conn.execute(text(
            "UPDATE component c SET grid_code = (SELECT gg.grid_code FROM grid_geometry gg WHERE gg.kind = 'base'"
            " AND ST_Covers(gg.geom, c.geom) ORDER BY gg.grid_code LIMIT 1)"))
    from api.app import create_app

    with TestClient(create_app(url=engine.url.render_as_string(hide_password=False))) as client:
        auth = {login: {"Authorization": f"Bearer {token}"} for login, token in tokens.items()}
        cases = {}
        for label, lon, lat in (("a", 120.045, 31.12), ("b", 120.035, 31.12), ("c", 120.046, 31.13)):
            reply = client.post("/api/v1/cases", headers=auth["admin"], json={
                "category": "E010101", "location": {"type": "Point", "coordinates": [lon, lat]},
                "description": f"case {label}", "source": "inspector"})
            assert reply.status_code == 201, reply.text
            cases[label] = reply.json()
        with engine.begin() as conn:
            conn.execute(text("UPDATE \"case\" SET state = 'closed' WHERE id = :i"), {"i": cases["c"]["id"]})
        yield client, engine, auth, cases
    engine.dispose()


def _grid_of(engine, *, component: str | None = None, case: int | None = None) -> str:
    with engine.connect() as conn:
        if component:
            return str(conn.execute(text("SELECT grid_code FROM component WHERE code = :c"), {"c": component}).scalar())
        return str(conn.execute(text("SELECT grid_code FROM \"case\" WHERE id = :i"), {"i": case}).scalar())


def _plan(client, auth, title: str = "plan", who: str = "admin") -> int:
    reply = client.post("/api/v1/plans", headers=auth[who], json={"title": title})
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def _edit(client, auth, plan: int, who: str = "admin", **body):
    return client.post(f"/api/v1/plans/{plan}/edits", headers=auth[who], json=body)


def test_moving_one_boundary_moves_exactly_the_swept_components_and_open_cases(town) -> None:
    client, engine, auth, cases = town
    a, b = "3205060118000101", "3205060118000102"
    assert (_grid_of(engine, component=a), _grid_of(engine, component=b)) == (G1, G1)
    assert {k: cases[k]["grid"]["code"] for k in "abc"} == {"a": G1, "b": G1, "c": G1}
    plan = _plan(client, auth, "move 001/002 to 120.04")
    reply = _edit(client, auth, plan, op="move", line=LINE, level=4)
    assert reply.status_code == 200, reply.text
    assert sorted(e["code"] for e in reply.json()["edits"]) == [G1, G2]

    preview = client.get(f"/api/v1/plans/{plan}/preview", headers=auth["admin"]).json()
    assert preview["problems"] == []
    assert [(c["code"], c["before"], c["after"]) for c in preview["components"]] == [(a, G1, G2)]
    assert [(k["id"], k["before"], k["after"]) for k in preview["open_cases"]] == [(cases["a"]["id"], G1, G2)]
    assert preview["numbers"] == {"components": 1, "open_cases": 1, "components_by_class": {"0118": 1}}
    load = {w["code"]: w for w in preview["workload"]}
    assert load[G1]["components"] == {"before": 5, "after": 4}  # the world's three, A and B
    assert load[G2]["components"] == {"before": 0, "after": 1}
    assert load[G1]["open_cases"] == {"before": 2, "after": 1} and load[G2]["open_cases"] == {"before": 0, "after": 1}
    assert load[G1]["area_m2"]["after"] == pytest.approx(load[G1]["area_m2"]["before"] * 0.8, rel=1e-3)
    assert {f["properties"]["kind"] for f in preview["geojson"]["features"]} == {"component", "case"}
    assert _grid_of(engine, component=a) == G1  # previewing changes nothing

    before = datetime.now(UTC)
    committed = client.post(f"/api/v1/plans/{plan}/commit", headers=auth["admin"], json={})
    assert committed.status_code == 200, committed.text
    assert committed.json()["reassigned"] == {"components": 1, "open_cases": 1}
    assert (_grid_of(engine, component=a), _grid_of(engine, component=b)) == (G2, G1)
    assert _grid_of(engine, case=cases["a"]["id"]) == G2
    assert _grid_of(engine, case=cases["b"]["id"]) == G1
    assert _grid_of(engine, case=cases["c"]["id"]) == G1  # closed: keeps the grid it was handled under
    with engine.connect() as conn:
        assert check_partition(conn, 3, COMMUNITY).ok
        actions = conn.execute(text("SELECT action FROM audit_log WHERE target = :t ORDER BY id"),
                               {"t": f"plan {plan}"}).scalars().all()
    assert actions == ["plan.create", "plan.edit", "plan.commit"]

    # Time travel: the point in the swept strip was 001's before the commit and is 002's after it.
    now = client.get("/api/v1/locate", params={"lon": 120.045, "lat": 31.15}).json()
    then = client.get("/api/v1/locate", params={"lon": 120.045, "lat": 31.15, "at": before.isoformat()}).json()
    assert (then["grid"]["code"], now["grid"]["code"]) == (G1, G2)
    # ... also as of a case's report: the closed case's stored assignment is what locate answered then.
    reported = client.get(f"/api/v1/cases/{cases['c']['id']}", headers=auth["admin"]).json()
    at_report = client.get("/api/v1/locate", params={"lon": 120.046, "lat": 31.13, "at": reported["reported_at"]})
    assert at_report.json()["grid"]["code"] == reported["grid"]["code"] == G1
    old = client.get("/api/v1/locate", params={"lon": 120.045, "lat": 31.15, "at": "2023-06-01T00:00:00Z"})
    assert old.status_code == 422  # before the world's grids existed: outside every grid

    # The OGC collection answers datetime with the shapes valid then; the history lists both versions.
    def east_edge(params: dict) -> float:
        items = client.get("/ogc/collections/grids/items", params={"code": G1, "f": "json", **params}).json()
        assert len(items["features"]) == 1, items
        return shape(items["features"][0]["geometry"]).bounds[2]

    assert east_edge({}) == pytest.approx(120.04)
    assert east_edge({"datetime": before.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}) == pytest.approx(120.05)
    history = client.get(f"/api/v1/grids/{G1}/history").json()
    assert [v["plan"] for v in history["versions"]] == [None, plan]
    assert history["versions"][0]["valid_to"] == history["versions"][1]["valid_from"]

    # Rolled back by a new plan: the strip, component A and open case a go back to 001.
    undone = client.post(f"/api/v1/plans/{plan}/rollback", headers=auth["admin"])
    assert undone.status_code == 200, undone.text
    assert undone.json()["reassigned"] == {"components": 1, "open_cases": 1}
    assert (_grid_of(engine, component=a), _grid_of(engine, case=cases["a"]["id"])) == (G1, G1)
    assert east_edge({}) == pytest.approx(120.05)


def _counts(engine) -> tuple[int, int, object]:
    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT (SELECT count(*) FROM component WHERE grid_code LIKE :c || '%'),"
            " (SELECT count(*) FROM \"case\" WHERE grid_code LIKE :c || '%' AND state NOT IN ('closed', 'voided')),"
            # planar area in degrees: geodesic edges would bulge differently once a vertex is added on them
            " (SELECT round(sum(ST_Area(gg.geom))::numeric, 10) FROM grid_geometry gg JOIN grid g ON g.code ="
            "  gg.grid_code WHERE gg.valid_to IS NULL AND g.level = 4 AND g.parent_code = :c)"),
            {"c": COMMUNITY}).one())  # type: ignore[return-value]


def test_a_split_and_a_merge_keep_every_count(town) -> None:
    client, engine, auth, _ = town
    before = _counts(engine)
    new = COMMUNITY + "005"
    plan = _plan(client, auth, "split 003")
    cut = {"type": "LineString", "coordinates": [[120.125, 31.2], [120.125, 31.1]]}
    assert _edit(client, auth, plan, op="split", code=G3, new_code=new, line=cut, name="新网格").status_code == 200
    assert client.post(f"/api/v1/plans/{plan}/commit", headers=auth["admin"]).status_code == 200
    assert _counts(engine) == before
    with engine.connect() as conn:
        assert check_partition(conn, 3, COMMUNITY).ok
        assert conn.execute(text("SELECT count(*) FROM grid WHERE parent_code = :c AND retired_at IS NULL"),
                            {"c": COMMUNITY}).scalar() == 5
    merged = _plan(client, auth, "merge it back")
    assert _edit(client, auth, merged, op="merge", code=new, into=G3).status_code == 200
    assert client.post(f"/api/v1/plans/{merged}/commit", headers=auth["admin"]).status_code == 200
    assert _counts(engine) == before
    with engine.connect() as conn:
        assert check_partition(conn, 3, COMMUNITY).ok
        assert conn.execute(text("SELECT retired_at IS NOT NULL FROM grid WHERE code = :c"), {"c": new}).scalar()


def test_a_plan_that_creates_an_overlap_is_refused_with_its_location(town) -> None:
    client, engine, auth, _ = town
    plan = _plan(client, auth, "grow 001 alone")
    grown = {"type": "Polygon", "coordinates": [[[120.0, 31.1], [120.06, 31.1], [120.06, 31.2], [120.0, 31.2],
                                                  [120.0, 31.1]]]}
    assert _edit(client, auth, plan, op="reshape", code=G1, polygon=grown).status_code == 200
    problems = client.get(f"/api/v1/plans/{plan}/preview", headers=auth["admin"]).json()["problems"]
    assert [(p["kind"], p["codes"]) for p in problems] == [("overlap", [G1, G2])]
    refused = client.post(f"/api/v1/plans/{plan}/commit", headers=auth["admin"])
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    overlap = refused.json()["problems"][0]
    assert shape(overlap["geometry"]).symmetric_difference(shape({"type": "Polygon", "coordinates": [[
        [120.05, 31.1], [120.06, 31.1], [120.06, 31.2], [120.05, 31.2], [120.05, 31.1]]]})).area < 1e-12
    assert 120.05 < overlap["location"][0] < 120.06 and 31.1 < overlap["location"][1] < 31.2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM grid_plan WHERE id = :p"), {"p": plan}).scalar() == "draft"


def test_who_may_plan(town) -> None:
    client, _, auth, _ = town
    assert client.post("/api/v1/plans", json={"title": "x"}).status_code == 401
    assert client.post("/api/v1/plans", headers=auth["viewer"], json={"title": "x"}).status_code == 403
    mine = _plan(client, auth, "town 1's", who="planner1")
    east = {"type": "LineString", "coordinates": [[120.24, 31.2], [120.24, 31.1]]}  # inside town 2
    assert _edit(client, auth, mine, who="planner1", op="move", line=east, level=4).status_code == 403
    assert client.get(f"/api/v1/plans/{mine}", headers=auth["planner2"]).status_code == 403
    assert client.post(f"/api/v1/plans/{mine}/commit", headers=auth["planner2"]).status_code == 403
    assert [p["id"] for p in client.get("/api/v1/plans", headers=auth["planner1"]).json()] == [mine]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert _edit(client, auth, mine, who="planner1", op="move", line=LINE, level=4).status_code == 200
    scheduled = client.post(f"/api/v1/plans/{mine}/commit", headers=auth["planner1"], json={"effective_at": future})
    assert scheduled.status_code == 200 and scheduled.json()["state"] == "scheduled", scheduled.text
    assert client.post(f"/api/v1/plans/{mine}/cancel", headers=auth["planner2"]).status_code == 403
    assert client.post(f"/api/v1/plans/{mine}/cancel", headers=auth["viewer"]).status_code == 403
    cancelled = client.post(f"/api/v1/plans/{mine}/cancel", headers=auth["planner1"])
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "draft"
    assert client.post(f"/api/v1/plans/{mine}/cancel", headers=auth["planner1"]).status_code == 409  # a draft
    bad = _edit(client, auth, mine, who="planner1", op="rename", code=G1, name="a\x00b")
    assert bad.status_code == 422


def test_a_part4_base_grid_edit_is_a_one_edit_plan_committed_at_once(town) -> None:
    client, engine, auth, _ = town
    new = COMMUNITY + "006"
    before = _counts(engine)
    feature = {"type": "Feature", "properties": {"code": new, "name": "OGC 网格"}, "geometry": {
        "type": "Polygon", "coordinates": [[[120.16, 31.15], [120.18, 31.15], [120.18, 31.2], [120.16, 31.2],
                                            [120.16, 31.15]]]}}
    reply = client.post("/ogc/collections/grids/items", json=feature, headers=auth["planner1"])
    assert reply.status_code == 201, reply.text
    version = int(reply.headers["etag"].strip('"'))
    with engine.connect() as conn:
        plan = conn.execute(text("SELECT source, state, owner, (SELECT array_agg(code ORDER BY code) FROM"
                                 " grid_plan_edit e WHERE e.plan_id = p.id) FROM grid_plan p WHERE version_id = :v"),
                            {"v": version}).one()
        assert tuple(plan) == ("ogc", "committed", "planner1", [G1[:12] + "004", new])
        assert check_partition(conn, 3, COMMUNITY).ok
    assert _counts(engine) == before
    history = client.get(f"/api/v1/grids/{G1[:12]}004/history").json()
    assert [v["version_id"] for v in history["versions"]][-1] == version


def test_the_plan_command(town, monkeypatch, tmp_path, capsys) -> None:
    import json

    from api.cli import main

    _, engine, _, _ = town
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    east1, east2 = grid_code(2, 1, 1), grid_code(2, 1, 2)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["plan", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("new", "town 2: move 001/002")
    assert code == 0
    plan = json.loads(out)["id"]
    edit = tmp_path / "move.json"
    edit.write_text(json.dumps({"op": "move", "level": 4, "line": {
        "type": "LineString", "coordinates": [[120.24, 31.2], [120.24, 31.1]]}}), encoding="utf-8")
    code, out, _ = run("edit", str(plan), str(edit))
    assert code == 0 and sorted(e["code"] for e in json.loads(out)["edits"]) == [east1, east2]
    code, out, _ = run("preview", str(plan))
    assert code == 0 and json.loads(out)["problems"] == []
    code, out, _ = run("commit", str(plan))
    assert code == 0 and json.loads(out)["state"] == "committed"
    with engine.connect() as conn:
        east = conn.execute(text("SELECT ST_XMax(geom) FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"),
                            {"c": east1}).scalar()
        assert east == pytest.approx(120.24)
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE target = :t AND actor LIKE 'cli:%'"),
                            {"t": f"plan {plan}"}).scalar() == 1
    code, _, _ = run("rollback", str(plan))
    assert code == 0
    code, out, _ = run("new", "grow 001 alone")
    bad = json.loads(out)["id"]
    edit.write_text(json.dumps({"op": "reshape", "code": east1, "polygon": {"type": "Polygon", "coordinates": [[
        [120.2, 31.1], [120.26, 31.1], [120.26, 31.2], [120.2, 31.2], [120.2, 31.1]]]}}), encoding="utf-8")
    assert run("edit", str(bad), str(edit))[0] == 0
    code, _, err = run("commit", str(bad))
    assert code == 1 and f"overlap {east1} {east2}" in err


# Future-dated plans: a line down lon 120.09 cuts the strip 120.09–120.10 off grid 002 and hands it to 003.
G4 = grid_code(1, 1, 4)
STRIP_LINE = {"type": "LineString", "coordinates": [[120.09, 31.2], [120.09, 31.1]]}


def _in_strip(client, engine, auth, label: str, lat: float) -> tuple[str, int]:
    """A component and an open case in the strip 120.09–120.10 (grid 002 today)."""
    code = f"32050601180002{label}"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO component (code, class_code, district_code, manager_key, owner_key, maintainer_key,"
            " status, geom, grid_code) VALUES (:c, '0118', '320506', 'LIGHTING', 'LIGHTING', 'LIGHTING', 'intact',"
            " ST_SetSRID(ST_MakePoint(120.095, :y), 4326), :g)"), {"c": code, "y": lat, "g": G2})
    reply = client.post("/api/v1/cases", headers=auth["admin"], json={
        "category": "E010101", "location": {"type": "Point", "coordinates": [120.095, lat + 0.01]},
        "description": f"case in the strip {label}", "source": "inspector"})
    assert reply.status_code == 201, reply.text
    return code, int(reply.json()["id"])


def _db_now(engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(text("SELECT now()")).scalar_one()


def _down(lon: float) -> dict:
    return {"type": "LineString", "coordinates": [[lon, 31.2], [lon, 31.1]]}


def _scheduled(client, auth, at: datetime, title: str, line: dict = STRIP_LINE) -> int:
    plan = _plan(client, auth, title)
    assert _edit(client, auth, plan, op="move", line=line, level=4).status_code == 200
    reply = client.post(f"/api/v1/plans/{plan}/commit", headers=auth["admin"], json={"effective_at": at.isoformat()})
    assert reply.status_code == 200, reply.text
    assert (reply.json()["state"], reply.json()["version"]) == ("scheduled", None)
    return plan


def test_a_future_dated_plan_changes_nothing_until_its_time_then_everything_at_once(town) -> None:
    import threading

    from spatial.grids.planning import apply_due

    client, engine, auth, _ = town
    component, case = _in_strip(client, engine, auth, "01", 31.15)
    scheduled_at = _db_now(engine)
    at = scheduled_at + timedelta(days=1)
    plan = _scheduled(client, auth, at, "move 002/003 to 120.09 tomorrow")
    assert client.get(f"/api/v1/plans/{plan}", headers=auth["admin"]).json()["state"] == "scheduled"
    assert _edit(client, auth, plan, op="rename", code=G2, name="x").status_code == 409  # scheduled: not editable
    assert [p["id"] for p in client.get("/api/v1/plans", params={"state": "scheduled"},
                                        headers=auth["admin"]).json()] == [plan]

    def state() -> tuple:
        located = client.get("/api/v1/locate", params={"lon": 120.095, "lat": 31.15}).json()["grid"]["code"]
        items = client.get("/ogc/collections/grids/items", params={"code": G2, "f": "json"}).json()["features"]
        return (_grid_of(engine, component=component), _grid_of(engine, case=case), located,
                round(shape(items[0]["geometry"]).bounds[2], 6))

    assert state() == (G2, G2, G2, 120.1)
    assert apply_due(engine, now=at - timedelta(seconds=1)) == []  # a second before its time: nothing
    assert state() == (G2, G2, G2, 120.1)

    results: list[list] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        results.append(apply_due(engine, now=at))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    applied = [r for batch in results for r in batch]
    assert [(r["plan"], r["state"], r["reassigned"]) for r in applied] == [
        (plan, "committed", {"components": 1, "open_cases": 1})]  # two sweeps at once: applied once
    assert apply_due(engine, now=at + timedelta(days=1)) == []  # and never again
    assert state() == (G3, G3, G3, 120.09)  # everything at once

    with engine.connect() as conn:
        versions = conn.execute(text("SELECT v.effective_at, (SELECT array_agg(DISTINCT gg.valid_from) FROM"
                                     " grid_geometry gg WHERE gg.version_id = v.id) FROM grid_version v JOIN"
                                     " grid_plan p ON p.version_id = v.id WHERE p.id = :p"), {"p": plan}).all()
        actions = conn.execute(text("SELECT action, actor FROM audit_log WHERE target = :t ORDER BY id"),
                               {"t": f"plan {plan}"}).all()
    assert [tuple(v) for v in versions] == [(at, [at])]  # valid from the plan's time, not the sweep's
    assert [tuple(a) for a in actions] == [("plan.create", "admin"), ("plan.edit", "admin"),
                                           ("plan.schedule", "admin"), ("plan.commit", "scheduler")]
    with engine.connect() as conn:
        assert check_partition(conn, 3, COMMUNITY).ok
    # Time travel between the scheduling and the effective time answers the old grid.
    between = (scheduled_at + timedelta(hours=12)).isoformat()
    then = client.get("/api/v1/locate", params={"lon": 120.095, "lat": 31.15, "at": between})
    assert then.json()["grid"]["code"] == G2
    # The clock was moved a day ahead for the sweep: a commit now would end shapes before they began.
    refused = client.post(f"/api/v1/plans/{plan}/rollback", headers=auth["admin"])
    assert refused.status_code == 409 and "before the current shapes" in refused.json()["detail"]


def test_a_cancelled_plan_never_happens_and_a_stale_one_goes_back_to_draft(town) -> None:
    from spatial.grids.planning import apply_due

    client, engine, auth, _ = town
    east2, east3 = grid_code(2, 1, 2), grid_code(2, 1, 3)
    at = _db_now(engine) + timedelta(days=2)
    cancelled = _scheduled(client, auth, at, "cancelled", _down(120.29))
    reply = client.post(f"/api/v1/plans/{cancelled}/cancel", headers=auth["admin"])
    assert reply.status_code == 200 and (reply.json()["state"], reply.json()["effective_at"]) == ("draft", None)

    stale = _scheduled(client, auth, at, "overtaken", _down(120.29))
    # Another plan moves the same boundary now: the scheduled one was based on shapes that no longer hold.
    now_plan = _plan(client, auth, "move 002/003 now")
    assert _edit(client, auth, now_plan, op="move", level=4, line=_down(120.298)).status_code == 200
    assert client.post(f"/api/v1/plans/{now_plan}/commit", headers=auth["admin"]).status_code == 200
    with engine.connect() as conn:
        edge = conn.execute(text("SELECT ST_XMax(geom) FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"),
                            {"c": east2}).scalar()
    assert apply_due(engine, now=at) == [{"plan": stale, "state": "draft", "refused": f"grid {east2} changed since"
                                          " the plan read it: edit it again"}]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT ST_XMax(geom) FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"),
                            {"c": east2}).scalar() == edge  # untouched
        states = conn.execute(text("SELECT id, state FROM grid_plan WHERE id = ANY(:ids) ORDER BY id"),
                              {"ids": [cancelled, stale]}).all()
        refusal = conn.execute(text("SELECT actor FROM audit_log WHERE target = :t AND action = 'plan.apply_refused'"),
                               {"t": f"plan {stale}"}).scalars().all()
    assert [tuple(s) for s in states] == [(cancelled, "draft"), (stale, "draft")]
    assert refusal == ["scheduler"]
    assert east3 in {e["code"] for e in client.get(f"/api/v1/plans/{stale}", headers=auth["admin"]).json()["edits"]}
    assert client.post(f"/api/v1/plans/{now_plan}/rollback", headers=auth["admin"]).status_code == 200


def test_the_worker_applies_a_plan_when_its_time_comes(town) -> None:
    """The real ``gridlink worker`` (procrastinate) applies a plan scheduled two seconds ahead."""
    import os
    import signal
    import subprocess
    import sys
    import time

    client, engine, auth, _ = town
    at = _db_now(engine) + timedelta(seconds=2)
    plan = _scheduled(client, auth, at, "move town 2's 003/004 in two seconds", _down(120.34))
    env = {**os.environ, "GRIDLINK_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--every", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    stop = time.monotonic() + 120  # a bound on a broken run, not a speed threshold
    try:
        while True:
            with engine.connect() as conn:
                state = conn.execute(text("SELECT state FROM grid_plan WHERE id = :p"), {"p": plan}).scalar()
            if state != "scheduled":
                break
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < stop, "the worker did not apply the plan"
            time.sleep(0.05)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert state == "committed"
    with engine.connect() as conn:
        valid_from = conn.execute(text(
            "SELECT valid_from FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"),
            {"c": grid_code(2, 1, 3)}).scalar()
    assert valid_from == at
    assert client.post(f"/api/v1/plans/{plan}/rollback", headers=auth["admin"]).status_code == 200
