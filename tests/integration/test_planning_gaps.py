"""Grid planning's last gaps (issue 19) over HTTP against real PostGIS: changing a grid's team as a plan edit,
and the preview's population of components by class per grid. On the known-answer world of tests/world.py
(community 320506001001 cut into base grids 001…004 of 0.05° each, west to east), in a database of its own.

Known answers: grid 001 holds the world's street light (0118 at lon 120.01) and water manhole cover (0101
at 120.03) plus, inserted here, a street light A at 120.045 (in the strip 120.04–120.05 a line down lon
120.04 hands to grid 002) and a camera C at 120.046 (0136, in the strip too).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from spatial.access.accounts import add_user, create_token
from tests.conftest import migrated_engine
from tests.world import build_world, grid_code

G1, G2, G3 = grid_code(1, 1, 1), grid_code(1, 1, 2), grid_code(1, 1, 3)
LINE = {"type": "LineString", "coordinates": [[120.04, 31.2], [120.04, 31.1]]}
PASSWORD = "correct horse battery staple"
OLD_TEAM = [{"role": "chief", "name": "张三", "phone": "13800000001"},
            {"role": "inspector", "name": "李四", "phone": None},
            {"role": "police", "name": "王五", "phone": None},
            {"role": "supervisor", "name": "赵六", "phone": None},
            {"role": "volunteer", "name": "钱七", "phone": None}]
NEW_TEAM = [{"role": "chief", "name": "孙八", "phone": "13900000002"},
            {"role": "inspector", "name": "李四", "phone": None},
            {"role": "police", "name": "周九", "phone": None},
            {"role": "supervisor", "name": "赵六", "phone": None},
            {"role": "mediator", "name": "吴十", "phone": None},
            {"role": "mediator", "name": "郑十一", "phone": None}]


@pytest.fixture(scope="module")
def world():
    """The world with accounts, a team on grids 001 and 002, and two more components in the strip."""
    from spatial.reference.load import load_reference

    engine = migrated_engine("gridlink_test_planning_gaps")
    tokens = {}
    with engine.begin() as conn:
        load_reference(conn)
        build_world(conn)
        for login, role, scope in (("admin", "admin", "*"), ("planner1", "planner", "320506001"),
                                   ("planner2", "planner", "320506002"), ("viewer", "viewer", "320506")):
            add_user(conn, login, role=role, scope=scope, password=PASSWORD)
            tokens[login] = create_token(conn, login, label="tests", ttl=None)[0]
        for code, cls, lon in (("3205060118000101", "0118", 120.045), ("3205060136000101", "0136", 120.046)):
            conn.execute(text(
                "INSERT INTO component (code, class_code, district_code, manager_key, owner_key, maintainer_key,"
                " status, geom) SELECT :c, :cls, '320506', default_owner, default_owner, default_owner, 'intact',"
                " ST_SetSRID(ST_MakePoint(:x, 31.15), 4326) FROM component_class WHERE code = :cls"),
                {"c": code, "cls": cls, "x": lon})
        conn.execute(text(
            "UPDATE component c SET grid_code = (SELECT gg.grid_code FROM grid_geometry gg WHERE gg.kind = 'base'"
            " AND gg.valid_to IS NULL AND ST_Covers(gg.geom, c.geom) ORDER BY gg.grid_code LIMIT 1)"))
        for code in (G1, G2):
            for m in OLD_TEAM:
                conn.execute(text("INSERT INTO team_member (grid_code, role, name, phone) VALUES (:g, :r, :n, :p)"),
                             {"g": code, "r": m["role"], "n": m["name"], "p": m["phone"]})
    from api.app import create_app

    with TestClient(create_app(url=engine.url.render_as_string(hide_password=False))) as client:
        yield client, engine, {login: {"Authorization": f"Bearer {t}"} for login, t in tokens.items()}
    engine.dispose()


def _plan(client, auth, who: str = "admin") -> int:
    reply = client.post("/api/v1/plans", headers=auth[who], json={"title": "gaps"})
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def _edit(client, auth, plan: int, who: str = "admin", **body):
    return client.post(f"/api/v1/plans/{plan}/edits", headers=auth[who], json=body)


def _team(engine, code: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT role, name, phone FROM team_member WHERE grid_code = :c ORDER BY id"), {"c": code}).mappings()]


def test_a_team_change_is_previewed_then_replaces_the_team_at_commit_audited_and_rolled_back(world) -> None:
    client, engine, auth = world
    plan = _plan(client, auth, "planner1")
    reply = _edit(client, auth, plan, "planner1", op="team", code=G1, members=NEW_TEAM)
    assert reply.status_code == 200, reply.text
    assert reply.json()["teams"] == {G1: NEW_TEAM}
    assert _team(engine, G1) == OLD_TEAM  # a draft changes nothing

    preview = client.get(f"/api/v1/plans/{plan}/preview", headers=auth["planner1"])
    assert preview.status_code == 200, preview.text
    assert preview.json()["teams"] == [{"code": G1, "before": OLD_TEAM, "after": NEW_TEAM}]
    assert _team(engine, G1) == OLD_TEAM  # previewing is read-only

    reply = client.post(f"/api/v1/plans/{plan}/commit", headers=auth["planner1"], json={})
    assert reply.status_code == 200, reply.text
    assert reply.json()["teams"] == [G1] and reply.json()["version"] is not None
    assert _team(engine, G1) == NEW_TEAM
    assert _team(engine, G2) == OLD_TEAM  # another grid's team is untouched
    with engine.connect() as conn:
        detail = conn.execute(text("SELECT detail FROM audit_log WHERE target = :t AND action = 'plan.commit'"),
                              {"t": f"plan {plan}"}).scalar_one()
        edit = conn.execute(text("SELECT detail FROM audit_log WHERE target = :t AND action = 'plan.edit'"),
                            {"t": f"plan {plan}"}).scalar_one()
    assert detail["teams"] == [G1] and edit == {"op": "team", "code": G1, "team": len(NEW_TEAM)}

    reply = client.post(f"/api/v1/plans/{plan}/rollback", headers=auth["planner1"])
    assert reply.status_code == 200, reply.text
    assert _team(engine, G1) == OLD_TEAM


def test_a_team_change_is_refused_unless_it_is_a_whole_team_of_a_live_grid_in_scope(world) -> None:
    client, engine, auth = world
    plan = _plan(client, auth, "planner1")
    lacking = [m for m in NEW_TEAM if m["role"] != "police"]
    reply = _edit(client, auth, plan, "planner1", op="team", code=G1, members=lacking)
    assert reply.status_code == 400 and "police" in reply.json()["detail"], reply.text
    bad_role = [*NEW_TEAM, {"role": "captain", "name": "x"}]
    assert _edit(client, auth, plan, "planner1", op="team", code=G1, members=bad_role).status_code == 422
    control = [*NEW_TEAM, {"role": "volunteer", "name": "a\x07b"}]
    assert _edit(client, auth, plan, "planner1", op="team", code=G1, members=control).status_code == 422
    assert _edit(client, auth, plan, "planner1", op="team", code=G1).status_code == 400  # no members
    assert _edit(client, auth, plan, "planner1", op="team", code=G1[:12], members=NEW_TEAM).status_code == 400
    other = _plan(client, auth, "planner2")
    assert _edit(client, auth, other, "planner2", op="team", code=G1, members=NEW_TEAM).status_code == 403
    assert _edit(client, auth, plan, "viewer", op="team", code=G1, members=NEW_TEAM).status_code == 403
    # a grid the plan retires has no team to change
    assert _edit(client, auth, plan, "planner1", op="merge", code=G3, into=G2).status_code == 200
    assert _edit(client, auth, plan, "planner1", op="team", code=G3, members=NEW_TEAM).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(text("SELECT report FROM grid_plan WHERE id = :p"), {"p": plan}).scalar() is None
    assert _team(engine, G1) == OLD_TEAM


def test_the_preview_gives_the_population_of_components_by_class_per_grid_before_and_after(world) -> None:
    client, engine, auth = world
    plan = _plan(client, auth)
    assert _edit(client, auth, plan, op="move", line=LINE, level=4).status_code == 200
    reply = client.get(f"/api/v1/plans/{plan}/preview", headers=auth["admin"])
    assert reply.status_code == 200, reply.text
    workload = {w["code"]: w for w in reply.json()["workload"]}
    assert set(workload) == {G1, G2}
    # grid 001: two street lights, two manhole covers (one retired, still its own), the camera; the strip
    # takes street light A and the camera to grid 002, which held no component
    assert workload[G1]["components_by_class"] == {
        "0101": {"before": 2, "after": 2}, "0118": {"before": 2, "after": 1}, "0136": {"before": 1, "after": 0}}
    assert workload[G2]["components_by_class"] == {
        "0118": {"before": 0, "after": 1}, "0136": {"before": 0, "after": 1}}
    for w in workload.values():  # the classes add up to the grid's components, before and after
        for when in ("before", "after"):
            assert sum(n[when] for n in w["components_by_class"].values()) == w["components"][when]
    with engine.connect() as conn:  # read-only: nothing moved yet
        assert conn.execute(text("SELECT count(*) FROM component WHERE grid_code = :g"), {"g": G2}).scalar() == 0


def test_the_plan_command_refuses_a_malformed_team_without_a_crash(world) -> None:
    """The CLI hands the edit's JSON to the gesture as it is (no request model in between)."""
    from spatial import errors
    from spatial.access.principal import Principal
    from spatial.grids import plan_edits, plans

    _, engine, _ = world
    admin = Principal(0, "cli:test", "admin", "*")
    with engine.connect() as conn:
        plan = plans.open_plan(conn, admin, "cli team")
        for members in (["chief"], [{"role": "chief", "name": 7}], "everyone",
                        [{**m, "phone": "1" * 21} for m in NEW_TEAM]):
            with pytest.raises(errors.InvalidParameterError):
                plan_edits.gesture(conn, admin, plan, "team", {"code": G1, "members": members})
        conn.rollback()


OTHER_TEAM = [{"role": "chief", "name": "冯十二", "phone": None}, *OLD_TEAM[1:]]


def test_a_team_edit_based_on_a_team_changed_meanwhile_is_a_409_naming_the_grid_and_the_change(world) -> None:
    """Two plans change grid 002's team from the same members; the second to commit finds the team changed
    since it read it and is refused (not an overwrite), until its team is edited again."""
    client, engine, auth = world
    first, second = _plan(client, auth, "planner1"), _plan(client, auth, "planner1")
    assert _edit(client, auth, first, "planner1", op="team", code=G2, members=NEW_TEAM).status_code == 200
    assert _edit(client, auth, second, "planner1", op="team", code=G2, members=OTHER_TEAM).status_code == 200
    assert client.post(f"/api/v1/plans/{second}/commit", headers=auth["planner1"], json={}).status_code == 200
    assert _team(engine, G2) == OTHER_TEAM

    stale = client.post(f"/api/v1/plans/{first}/commit", headers=auth["planner1"], json={})
    assert stale.status_code == 409 and stale.headers["content-type"] == "application/problem+json", stale.text
    body = stale.json()
    assert body["type"].endswith("stale-team") and body["grid"] == G2 and G2 in body["detail"]
    assert body["changed"] == {"added": [OTHER_TEAM[0]], "removed": [OLD_TEAM[0]]}  # the chief was replaced
    assert _team(engine, G2) == OTHER_TEAM  # not overwritten
    state = client.get(f"/api/v1/plans/{first}", headers=auth["planner1"]).json()["state"]
    assert state == "draft"

    # edited again, the plan reads the team again and commits over the members it saw
    assert _edit(client, auth, first, "planner1", op="team", code=G2, members=NEW_TEAM).status_code == 200
    assert client.post(f"/api/v1/plans/{first}/commit", headers=auth["planner1"], json={}).status_code == 200
    assert _team(engine, G2) == NEW_TEAM


def test_a_scheduled_team_change_whose_team_changed_meanwhile_goes_back_to_a_draft(world) -> None:
    from datetime import UTC, datetime, timedelta

    from spatial.grids.planning import apply_due

    client, engine, auth = world
    base = _team(engine, G2)
    later, now_plan = _plan(client, auth, "planner1"), _plan(client, auth, "planner1")
    assert _edit(client, auth, later, "planner1", op="team", code=G2, members=OLD_TEAM).status_code == 200
    when = datetime.now(UTC) + timedelta(days=1)
    scheduled = client.post(f"/api/v1/plans/{later}/commit", headers=auth["planner1"],
                            json={"effective_at": when.isoformat()})
    assert scheduled.status_code == 200 and scheduled.json()["state"] == "scheduled", scheduled.text
    assert _edit(client, auth, now_plan, "planner1", op="team", code=G2, members=OTHER_TEAM).status_code == 200
    assert client.post(f"/api/v1/plans/{now_plan}/commit", headers=auth["planner1"], json={}).status_code == 200

    done = apply_due(engine, now=when + timedelta(seconds=1))
    assert [(d["plan"], d["state"]) for d in done] == [(later, "draft")] and G2 in done[0]["refused"]
    assert _team(engine, G2) == OTHER_TEAM != base
    with engine.connect() as conn:
        detail = conn.execute(text("SELECT detail FROM audit_log WHERE target = :t AND action = 'plan.apply_refused'"),
                              {"t": f"plan {later}"}).scalar_one()
    assert detail["grid"] == G2
    assert sorted(m["name"] for m in detail["changed"]["added"]) == sorted(m["name"] for m in OTHER_TEAM
                                                                          if m not in base)
    assert sorted(m["name"] for m in detail["changed"]["removed"]) == sorted(m["name"] for m in base
                                                                            if m not in OTHER_TEAM)
