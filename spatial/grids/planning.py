"""The planner's use cases (issue 19): open a plan, check and preview it, commit it (reassigning what moves),
roll it back — each in the caller's transaction, each audited (spatial/access/audit.py: ``plan.*``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.grids import plans
from spatial.grids.impact import moved_cases, moved_components, preview, reassign
from spatial.grids.plan_check import check_plan


def check(conn: Connection, principal: Principal, plan_id: int) -> list[dict[str, Any]]:
    """The problems that would refuse the plan's commit, with their polygons (empty: it may be committed)."""
    plans.load_plan(conn, principal, plan_id)
    return [p.as_dict(with_geometry=True) for p in check_plan(conn, plan_id)]


def impact(conn: Connection, principal: Principal, plan_id: int) -> dict[str, Any]:
    """The plan's impact preview and its problems (read-only)."""
    plans.load_plan(conn, principal, plan_id)
    return {**preview(conn, plan_id), "problems": [p.as_dict(with_geometry=True) for p in check_plan(conn, plan_id)]}


def _effective(conn: Connection, at: datetime | None) -> datetime:
    now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    if at is None:
        return now
    if at > now:
        raise errors.InvalidParameterError("a plan takes effect now or at a past instant: future-dated plans are "
                                           "not offered yet", parameter="effective_at")
    return at


def commit(conn: Connection, principal: Principal, actor: Actor | None, plan_id: int, *,
           effective_at: datetime | None = None) -> dict[str, Any]:
    """Commit a draft: refuse it (PlanRefusedError, saying where) if it breaks a partition; otherwise store
    its shapes as one grid version and reassign the components and open cases in the changed area. ``actor``
    None: the caller audits the write itself (the OGC Part 4 edits)."""
    plans.draft(conn, principal, plan_id)
    problems = check_plan(conn, plan_id)
    if problems:
        first = problems[0]
        raise errors.PlanRefusedError(f"plan {plan_id} would leave {len(problems)} problem(s), first: {first.action}"
                                      f" near {first.location}", problems=[p.as_dict(True) for p in problems])
    at = _effective(conn, effective_at)
    comps, cases = moved_components(conn, plan_id), moved_cases(conn, plan_id)
    version = plans.commit(conn, principal, plan_id, effective_at=at)
    moved = reassign(conn, comps, cases, version)
    if actor is not None:
        record(conn, actor, "plan.commit", target=f"plan {plan_id}", detail={"version": version, **moved})
    return {"plan": plan_id, "state": "committed", "version": version, "effective_at": at, "reassigned": moved}


def rollback(conn: Connection, principal: Principal, actor: Actor, plan_id: int) -> dict[str, Any]:
    """Undo a committed plan with a new plan that restores the shapes it closed, committed at once."""
    plan = plans.load_plan(conn, principal, plan_id, lock=True)
    if plan["state"] != "committed":
        raise errors.ConflictError(f"plan {plan_id} is {plan['state']}: only a committed plan can be rolled back")
    undo = plans.open_plan(conn, principal, f"rollback of plan {plan_id}", source="rollback", rollback_of=plan_id)
    for edit in plans.planned(conn, plan_id):
        _undo_edit(conn, principal, undo, edit, plan["version_id"], plan["effective_at"])
    result = commit(conn, principal, actor, undo)
    record(conn, actor, "plan.rollback", target=f"plan {plan_id}", detail={"rollback": undo})
    return result


def _undo_edit(conn: Connection, principal: Principal, undo: int, edit: dict[str, Any], version: int,
               at: datetime) -> None:
    code, op = edit["code"], edit["op"]
    before = conn.execute(text(
        "SELECT ST_AsText(geom) FROM grid_geometry WHERE grid_code = :c AND valid_to = :at ORDER BY id DESC LIMIT 1"),
        {"c": code, "at": at}).scalar()
    common = {"level": edit["level"], "name": None, "parent": edit["parent_code"]}
    if op == "create" or op == "recode":
        created = edit["new_code"] if op == "recode" else code
        plans.put_edit(conn, principal, undo, op="retire", code=created, wkt=None, based_on=version, **common)
    if op in ("retire", "recode"):
        plans.put_edit(conn, principal, undo, op="create", code=code, wkt=before, based_on=None, **common)
    elif op == "reshape" and before is not None:
        plans.put_edit(conn, principal, undo, op="reshape", code=code, wkt=before, based_on=version, **common)
