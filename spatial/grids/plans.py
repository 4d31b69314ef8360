"""Grid plans (issue 19): drafts of grid changes held apart from the live grids, committed as one version.

A plan holds one row per grid it changes (``grid_plan_edit``): the grid's planned shape, name and code —
``create``, ``reshape``, ``retire`` or ``recode``. The planner's gestures (move a shared boundary, split,
merge; spatial/grids/plan_edits.py) and an import (spatial/grids/importing.py) are all written as such rows,
so that one commit path applies every kind of change:

- a draft belongs to its owner (admins may act on any) and every grid it changes must lie in the owner's
  scope (``spatial.access.scope.check_edit_grid``), asked again at commit;
- a commit opens one ``grid_version`` effective from the plan's time, closes the changed grids' current
  shapes at that time and stores the new ones (``valid_from``); a grid that changed since the plan read it
  (``based_on``) makes the commit a conflict: read it again;
- a commit with a future time only *schedules* the plan (``scheduled``: checked now, nothing written to the
  grids); the scheduler commits it at that time (spatial/grids/planning.py ``apply_due``), and until then
  it can be cancelled back to a draft;
- a committed plan is rolled back by a new plan that restores the shapes the commit closed.

A plan may also *change a team* (the "4+N" members of a base or special grid, ``team_member``): the planned
list is kept in the plan (``report["teams"]``: code → members) and replaces the grid's members at commit; the
members it replaced are kept in the plan too (``report["teams_replaced"]``, as ``team_member`` keeps no
history), so a rollback restores them.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_grid, check_edit_special_grid
from spatial.codes import LEVEL_KINDS, SPECIAL_CODE, special_kind

CLEAN = "ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromText(:wkt, 4326)), 3))"


def open_plan(conn: Connection, principal: Principal, title: str, *, source: str = "plan",
              report: dict[str, Any] | None = None, rollback_of: int | None = None) -> int:
    """Open a draft plan owned by the caller; return its id."""
    if principal.role not in ("admin", "planner"):
        raise errors.ForbiddenError(f"a {principal.role} account may not plan grids (needs admin or planner)")
    return int(conn.execute(text(
        "INSERT INTO grid_plan (title, owner, scope, state, source, report, rollback_of)"
        " VALUES (:t, :o, :s, 'draft', :src, CAST(:r AS jsonb), :rb) RETURNING id"),
        {"t": title, "o": principal.login, "s": principal.scope, "src": source,
         "r": json.dumps(report, ensure_ascii=False) if report is not None else None, "rb": rollback_of}).scalar_one())


def load_plan(conn: Connection, principal: Principal, plan_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The plan row; NotFoundError if unknown, ForbiddenError unless the caller owns it (admins: any)."""
    row = conn.execute(text("SELECT * FROM grid_plan WHERE id = :id" + (" FOR UPDATE" if lock else "")),
                       {"id": plan_id}).mappings().first()
    if row is None:
        raise errors.NotFoundError(f"no plan {plan_id}")
    if principal.role != "admin" and row["owner"] != principal.login:
        raise errors.ForbiddenError(f"plan {plan_id} belongs to {row['owner']}")
    return dict(row)


def draft(conn: Connection, principal: Principal, plan_id: int, state: str = "draft") -> dict[str, Any]:
    """The plan, locked, if it is still a draft (or in ``state``) the caller may act on; ConflictError otherwise."""
    plan = load_plan(conn, principal, plan_id, lock=True)
    if plan["state"] != state:
        raise errors.ConflictError(f"plan {plan_id} is {plan['state']}: only a {state} plan can change")
    return plan


def current(conn: Connection, code: str) -> dict[str, Any] | None:
    """A grid's identity and current shape (WKT) and version, None if it has none."""
    row = conn.execute(text(
        "SELECT g.code, g.level, g.kind, g.name, g.parent_code, gg.version_id, ST_AsText(gg.geom) AS wkt"
        " FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL"
        " WHERE g.code = :c AND g.retired_at IS NULL"), {"c": code}).mappings().first()
    return dict(row) if row else None


def put_edit(conn: Connection, principal: Principal, plan_id: int, *, op: str, code: str, level: int | None,
             name: str | None, parent: str | None, wkt: str | None, based_on: int | None,
             new_code: str | None = None, note: str | None = None) -> None:
    """Write the planned state of one grid into the plan (replacing an earlier edit of the same grid); a
    special grid (``level`` None) is asked of its district's planners."""
    check = check_edit_special_grid if level is None and SPECIAL_CODE.match(code) else check_edit_grid
    check(principal, code)
    if new_code is not None:
        check(principal, new_code)
    kind = LEVEL_KINDS[level] if level is not None else special_kind(code)
    conn.execute(text(
        "INSERT INTO grid_plan_edit (plan_id, seq, op, code, new_code, level, kind, name, parent_code, geom,"
        " based_on, note) VALUES (:p, (SELECT count(*) FROM grid_plan_edit WHERE plan_id = :p), :op, :c, :nc,"
        " :l, :k, :n, :pc, " + ("NULL" if wkt is None else CLEAN) + ", :b, :note)"
        " ON CONFLICT (plan_id, code) DO UPDATE SET op = CASE WHEN grid_plan_edit.op = 'create'"
        " AND EXCLUDED.op = 'reshape' THEN 'create' ELSE EXCLUDED.op END, new_code = EXCLUDED.new_code,"
        " name = EXCLUDED.name, geom = EXCLUDED.geom, note = EXCLUDED.note"),
        {"p": plan_id, "op": op, "c": code, "nc": new_code, "l": level, "k": kind, "n": name, "pc": parent,
         "wkt": wkt, "b": based_on, "note": note})


def put_team(conn: Connection, principal: Principal, plan_id: int, code: str,
             members: list[dict[str, Any]]) -> None:
    """Write the planned members of grid ``code``'s team into the plan (replacing an earlier list), with the
    members it was based on (``report["teams_based_on"]``: the grid's team as this edit read it — editing the
    team again reads it again), so that a commit after the team changed meanwhile is refused
    (``check_teams_fresh``)."""
    check_edit_grid(principal, code)
    conn.execute(text(
        "UPDATE grid_plan SET report = COALESCE(report, '{}'::jsonb) || jsonb_build_object('teams',"
        " COALESCE(report->'teams', '{}'::jsonb) || jsonb_build_object(CAST(:c AS text), CAST(:m AS jsonb)),"
        " 'teams_based_on', COALESCE(report->'teams_based_on', '{}'::jsonb)"
        " || jsonb_build_object(CAST(:c AS text), CAST(:b AS jsonb))) WHERE id = :p"),
        {"p": plan_id, "c": code, "m": json.dumps(members, ensure_ascii=False),
         "b": json.dumps(team_of(conn, code), ensure_ascii=False)})


def _member_keys(members: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((m.get("role"), m.get("name"), m.get("phone")) for m in members)


def check_teams_fresh(conn: Connection, plan_id: int) -> None:
    """StaleTeamError, naming the grid and the members added and removed, if a team the plan changes is no
    longer the one the plan read (plans written before the base was kept are not checked)."""
    based: dict[str, list[dict[str, Any]]] = conn.execute(text(
        "SELECT report->'teams_based_on' FROM grid_plan WHERE id = :p"), {"p": plan_id}).scalar() or {}
    for code in sorted(based):
        now, then = _member_keys(team_of(conn, code)), _member_keys(based[code])
        if now == then:
            continue
        keys = ("role", "name", "phone")
        changed = {"added": [dict(zip(keys, m, strict=True)) for m in sorted((now - then).elements(), key=str)],
                   "removed": [dict(zip(keys, m, strict=True)) for m in sorted((then - now).elements(), key=str)]}
        raise errors.StaleTeamError(
            f"the team of grid {code} changed since the plan read it ({len(changed['added'])} member(s) added,"
            f" {len(changed['removed'])} removed): edit its team again", grid=code, changed=changed)


def planned_teams(conn: Connection, plan_id: int) -> dict[str, list[dict[str, Any]]]:
    """The plan's planned teams: grid code → members (role, name, phone), in code order."""
    teams: dict[str, list[dict[str, Any]]] = conn.execute(text(
        "SELECT report->'teams' FROM grid_plan WHERE id = :p"), {"p": plan_id}).scalar() or {}
    return {code: teams[code] for code in sorted(teams)}


def team_of(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Grid ``code``'s current team members (role, name, phone), in the order they were stored."""
    return [dict(r) for r in conn.execute(text(
        "SELECT role, name, phone FROM team_member WHERE grid_code = :c ORDER BY id"), {"c": code}).mappings()]


def _apply_teams(conn: Connection, plan_id: int, teams: dict[str, list[dict[str, Any]]]) -> None:
    """Replace each planned team's members, keeping the members replaced in the plan (for a rollback)."""
    replaced = {}
    for code, members in teams.items():
        live = conn.execute(text("SELECT 1 FROM grid WHERE code = :c AND retired_at IS NULL"), {"c": code}).first()
        if members and not live:  # an empty list only clears (a rollback of a grid it retires)
            raise errors.ConflictError(f"grid {code} whose team the plan changes is retired or unknown", grid=code)
        replaced[code] = team_of(conn, code)
        conn.execute(text("DELETE FROM team_member WHERE grid_code = :c"), {"c": code})
        if members:
            conn.execute(text(
                "INSERT INTO team_member (grid_code, role, name, phone)"
                " SELECT :c, m.e->>'role', m.e->>'name', m.e->>'phone' FROM jsonb_array_elements(CAST(:m AS jsonb))"
                " WITH ORDINALITY AS m(e, n) ORDER BY m.n"),
                {"c": code, "m": json.dumps(members, ensure_ascii=False)})
    conn.execute(text("UPDATE grid_plan SET report = report || jsonb_build_object('teams_replaced',"
                      " CAST(:r AS jsonb)) WHERE id = :p"),
                 {"p": plan_id, "r": json.dumps(replaced, ensure_ascii=False)})


def planned(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """The plan's edits in order, shapes as WKT."""
    return [dict(r) for r in conn.execute(text(
        "SELECT op, code, new_code, level, kind, name, parent_code, based_on, note, ST_AsText(geom) AS wkt"
        " FROM grid_plan_edit WHERE plan_id = :p ORDER BY level NULLS LAST, seq"), {"p": plan_id}).mappings()]


def _close(conn: Connection, code: str, at: datetime) -> None:
    conn.execute(text("UPDATE grid_geometry SET valid_to = :at WHERE grid_code = :c AND valid_to IS NULL"),
                 {"c": code, "at": at})


def _draw(conn: Connection, code: str, kind: str, version: int, wkt: str, at: datetime) -> None:
    conn.execute(text(
        f"INSERT INTO grid_geometry (grid_code, version_id, kind, geom, valid_from) VALUES (:c, :v, :k, {CLEAN}, :at)"),
        {"c": code, "v": version, "k": kind, "wkt": wkt, "at": at})


def _apply(conn: Connection, edit: dict[str, Any], version: int, at: datetime) -> None:
    code, op = edit["code"], edit["op"]
    if op == "create":
        # A code the plan's _check_fresh let through exists only when a rollback revives a retired grid.
        conn.execute(text("INSERT INTO grid (code, level, kind, name, parent_code, created_at)"
                          " VALUES (:c, :l, :k, :n, :p, :at) ON CONFLICT (code) DO UPDATE SET retired_at = NULL"),
                     {"c": code, "l": edit["level"], "k": edit["kind"], "n": edit["name"] or code,
                      "p": edit["parent_code"], "at": at})
        _draw(conn, code, edit["kind"], version, edit["wkt"], at)
    elif op == "reshape":
        renamed = edit["name"] and conn.execute(text(
            "UPDATE grid SET name = :n WHERE code = :c AND name <> :n RETURNING 1"),
            {"c": code, "n": edit["name"]}).first()
        # A new name is a new version of the shape (migration 0022: names are versioned with the shapes).
        wkt = edit["wkt"]
        if renamed and not wkt:
            wkt = (current(conn, code) or {}).get("wkt")
        if wkt:
            _close(conn, code, at)
            _draw(conn, code, edit["kind"], version, wkt, at)
    else:  # retire, recode: the old code's shape is closed and the grid retired (codes are never reused)
        before = current(conn, code)
        _close(conn, code, at)
        conn.execute(text("UPDATE grid SET retired_at = :at WHERE code = :c"), {"c": code, "at": at})
        if op == "recode" and before is not None:
            _apply(conn, {**edit, "op": "create", "code": edit["new_code"], "name": edit["name"] or before["name"],
                          "wkt": edit["wkt"] or before["wkt"]}, version, at)


def _check_fresh(conn: Connection, edits: list[dict[str, Any]], *, revive: bool) -> None:
    """ConflictError if a grid changed since the plan read it, or a new code exists (a rollback, ``revive``,
    may bring back a grid its plan retired)."""
    for edit in edits:
        now = current(conn, edit["code"])
        if edit["op"] == "create":
            exists = conn.execute(text("SELECT retired_at IS NULL FROM grid WHERE code = :c"),
                                  {"c": edit["code"]}).first()
            if exists is not None and (exists[0] or not revive):
                raise errors.ConflictError(f"grid {edit['code']} exists (codes are never reused)")
        elif now is None or (edit["based_on"] is not None and now["version_id"] != edit["based_on"]):
            raise errors.ConflictError(f"grid {edit['code']} changed since the plan read it: edit it again",
                                       grid=edit["code"])


def _checked_edits(conn: Connection, principal: Principal, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's edits, once each grid is known to be in the caller's scope and unchanged since it was read."""
    edits = planned(conn, plan["id"])
    teams = planned_teams(conn, plan["id"])
    if not edits and not teams:
        raise errors.ConflictError(f"plan {plan['id']} has no edits")
    for code in [e["code"] for e in edits] + list(teams):
        check_edit_grid(principal, code)
    _check_fresh(conn, edits, revive=plan["source"] == "rollback")
    check_teams_fresh(conn, plan["id"])
    return edits


def schedule(conn: Connection, principal: Principal, plan_id: int, at: datetime) -> None:
    """Schedule a draft for ``at`` (a future instant): nothing changes until the scheduler applies it then."""
    plan = draft(conn, principal, plan_id)
    _checked_edits(conn, principal, plan)
    conn.execute(text("UPDATE grid_plan SET state = 'scheduled', effective_at = :at WHERE id = :id"),
                 {"at": at, "id": plan_id})


def cancel(conn: Connection, principal: Principal, plan_id: int) -> None:
    """Take a scheduled plan back to a draft (to edit, schedule again or leave); ConflictError if it is not
    scheduled (any more: the scheduler may have applied it)."""
    draft(conn, principal, plan_id, state="scheduled")
    conn.execute(text("UPDATE grid_plan SET state = 'draft', effective_at = NULL WHERE id = :id"), {"id": plan_id})


def _check_after_current(conn: Connection, plan_id: int, edits: list[dict[str, Any]], at: datetime) -> None:
    """ConflictError if ``at`` is before a changed grid's current shape took effect (history stays ordered)."""
    latest = conn.execute(text("SELECT max(valid_from) FROM grid_geometry WHERE valid_to IS NULL"
                               " AND grid_code = ANY(:codes)"), {"codes": [e["code"] for e in edits]}).scalar()
    if latest is not None and at < latest:
        raise errors.ConflictError(f"plan {plan_id} would take effect at {at.isoformat()}, before the current"
                                   f" shapes of its grids (valid from {latest.isoformat()})")


def commit(conn: Connection, principal: Principal, plan_id: int, *, effective_at: datetime | None = None,
           note: str | None = None, state: str = "draft") -> int:
    """Commit a draft (or a plan in ``state``: the scheduler's ``scheduled``): one grid version effective from
    ``effective_at`` (default now); return its id."""
    plan = draft(conn, principal, plan_id, state)
    conn.execute(text("LOCK TABLE grid_geometry IN SHARE ROW EXCLUSIVE MODE"))
    edits = _checked_edits(conn, principal, plan)
    at = effective_at or conn.execute(text("SELECT now()")).scalar_one()
    _check_after_current(conn, plan_id, edits, at)
    version = int(conn.execute(text(
        "INSERT INTO grid_version (effective_at, author, note) VALUES (:at, :a, :n) RETURNING id"),
        {"at": at, "a": principal.login, "n": note or f"plan {plan_id}: {plan['title']}"}).scalar_one())
    for edit in edits:
        _apply(conn, edit, version, at)
    teams = planned_teams(conn, plan_id)
    if teams:
        _apply_teams(conn, plan_id, teams)
    conn.execute(text("UPDATE grid_plan SET state = 'committed', version_id = :v, effective_at = :at,"
                      " committed_at = now() WHERE id = :id"), {"v": version, "at": at, "id": plan_id})
    return version


def plan_public(conn: Connection, principal: Principal, plan_id: int) -> dict[str, Any]:
    """The plan as the API shows it: its fields and its edits (shapes as GeoJSON)."""
    plan = load_plan(conn, principal, plan_id)
    edits = conn.execute(text(
        "SELECT seq, op, code, new_code, level, name, parent_code, based_on, note,"
        " ST_AsGeoJSON(geom, 7)::json AS geometry FROM grid_plan_edit WHERE plan_id = :p ORDER BY seq"),
        {"p": plan_id}).mappings().all()
    return {**{k: plan[k] for k in ("id", "title", "owner", "scope", "state", "source", "created_at",
                                    "effective_at", "committed_at", "version_id", "rollback_of")},
            "edits": [dict(e) for e in edits], "teams": planned_teams(conn, plan_id)}



def list_plans(conn: Connection, principal: Principal, state: str | None = None) -> list[dict[str, Any]]:
    """The caller's plans (admins: everyone's), newest first, without their edits (at most 500)."""
    rows = conn.execute(text(
        "SELECT p.id, p.title, p.owner, p.state, p.source, p.created_at, p.effective_at, p.version_id,"
        " p.rollback_of, (SELECT count(*) FROM grid_plan_edit e WHERE e.plan_id = p.id) AS edits"
        " FROM grid_plan p WHERE (CAST(:o AS text) IS NULL OR p.owner = :o)"
        " AND (CAST(:s AS text) IS NULL OR p.state = :s) ORDER BY p.id DESC LIMIT 500"),
        {"o": None if principal.role == "admin" else principal.login, "s": state}).mappings()
    return [dict(r) for r in rows]
