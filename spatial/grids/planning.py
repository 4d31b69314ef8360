"""The planner's use cases (issue 19): open a plan, check and preview it, commit it (reassigning what moves),
roll it back — each in the caller's transaction, each audited (spatial/access/audit.py: ``plan.*``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from spatial import errors
from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.grids import plans
from spatial.grids.impact import moved_cases, moved_components, preview, reassign, reassign_special
from spatial.grids.plan_check import check_plan

SCHEDULER = Actor("scheduler", "system")  # who applies a scheduled plan at its time (audit)


def check(conn: Connection, principal: Principal, plan_id: int) -> list[dict[str, Any]]:
    """The problems that would refuse the plan's commit, with their polygons (empty: it may be committed)."""
    plans.load_plan(conn, principal, plan_id)
    return [p.as_dict(with_geometry=True) for p in check_plan(conn, plan_id)]


def impact(conn: Connection, principal: Principal, plan_id: int) -> dict[str, Any]:
    """The plan's impact preview and its problems (read-only)."""
    plans.load_plan(conn, principal, plan_id)
    return {**preview(conn, plan_id), "problems": [p.as_dict(with_geometry=True) for p in check_plan(conn, plan_id)]}


def _refuse_problems(conn: Connection, plan_id: int) -> None:
    problems = check_plan(conn, plan_id)
    if problems:
        first = problems[0]
        raise errors.PlanRefusedError(f"plan {plan_id} would leave {len(problems)} problem(s), first: {first.action}"
                                      f" near {first.location}", problems=[p.as_dict(True) for p in problems])


def commit(conn: Connection, principal: Principal, actor: Actor | None, plan_id: int, *,
           effective_at: datetime | None = None) -> dict[str, Any]:
    """Commit a draft: refuse it (PlanRefusedError, saying where) if it breaks a partition; otherwise store
    its shapes as one grid version and reassign the components and open cases in the changed area. A future
    ``effective_at`` schedules the plan instead (checked now against today's grids, applied by ``apply_due``
    at that time, checked again then). ``actor`` None: the caller audits the write itself (OGC Part 4 edits)."""
    plans.draft(conn, principal, plan_id)
    _refuse_problems(conn, plan_id)
    now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    if effective_at is not None and effective_at > now:
        plans.schedule(conn, principal, plan_id, effective_at)
        if actor is not None:
            record(conn, actor, "plan.schedule", target=f"plan {plan_id}", detail={"effective_at": effective_at})
        return {"plan": plan_id, "state": "scheduled", "version": None, "effective_at": effective_at,
                "reassigned": None}
    return _store(conn, principal, actor, plan_id, effective_at or now)


def _store(conn: Connection, principal: Principal, actor: Actor | None, plan_id: int, at: datetime,
           state: str = "draft") -> dict[str, Any]:
    comps, cases = moved_components(conn, plan_id), moved_cases(conn, plan_id)
    version = plans.commit(conn, principal, plan_id, effective_at=at, state=state)
    moved = reassign(conn, comps, cases, version)
    special = reassign_special(conn, plan_id, version, at)
    teams = list(plans.planned_teams(conn, plan_id))
    if actor is not None:
        record(conn, actor, "plan.commit", target=f"plan {plan_id}",
               detail={"version": version, **moved, **({"teams": teams} if teams else {}),
                       **({"special_open_cases": special} if special else {})})
    return {"plan": plan_id, "state": "committed", "version": version, "effective_at": at, "reassigned": moved,
            "special_open_cases": special, "teams": teams}


def cancel(conn: Connection, principal: Principal, actor: Actor, plan_id: int) -> dict[str, Any]:
    """Cancel a scheduled plan: it is a draft again and nothing it planned will happen."""
    plans.cancel(conn, principal, plan_id)
    record(conn, actor, "plan.cancel", target=f"plan {plan_id}")
    return plans.plan_public(conn, principal, plan_id)


def apply_due(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Apply every scheduled plan whose time (``effective_at``) is at or before ``now`` (default: the
    database's clock), oldest first, each in a transaction of its own; return what each did.

    Exactly once however many workers sweep at once: a plan is taken only while it is still ``scheduled``
    and not locked by another sweep (``FOR UPDATE SKIP LOCKED``), and its commit moves it out of that state
    in the same transaction. A plan that can no longer be applied (a partition it would break, a grid
    changed since it was scheduled, its owner's scope) goes back to a draft, with the reason in the audit
    (``plan.apply_refused``)."""
    with engine.connect() as conn:
        now = now or conn.execute(text("SELECT now()")).scalar_one()
        due = conn.execute(text("SELECT id FROM grid_plan WHERE state = 'scheduled' AND effective_at <= :now"
                                " ORDER BY effective_at, id"), {"now": now}).scalars().all()
    done = []
    for plan_id in due:
        with engine.begin() as conn:
            result = apply_scheduled(conn, plan_id)
        if result is not None:
            done.append(result)
    return done


def apply_scheduled(conn: Connection, plan_id: int) -> dict[str, Any] | None:
    """Commit one scheduled plan at its own effective time, as its owner with the scope stored with it; None
    if it is not scheduled any more or another sweep holds it."""
    plan = conn.execute(text("SELECT owner, scope, effective_at FROM grid_plan WHERE id = :id AND state ="
                             " 'scheduled' FOR UPDATE SKIP LOCKED"), {"id": plan_id}).mappings().first()
    if plan is None:
        return None
    owner = Principal(0, plan["owner"], "admin" if plan["scope"] == "*" else "planner", plan["scope"])
    try:
        with conn.begin_nested():
            _refuse_problems(conn, plan_id)
            result = _store(conn, owner, SCHEDULER, plan_id, plan["effective_at"], state="scheduled")
    except errors.GridlinkError as exc:
        conn.execute(text("UPDATE grid_plan SET state = 'draft', effective_at = NULL WHERE id = :id"), {"id": plan_id})
        record(conn, SCHEDULER, "plan.apply_refused", target=f"plan {plan_id}",
               detail={"effective_at": plan["effective_at"], "reason": exc.detail, **exc.extra})
        return {"plan": plan_id, "state": "draft", "refused": exc.detail}
    return result


def rollback(conn: Connection, principal: Principal, actor: Actor, plan_id: int) -> dict[str, Any]:
    """Undo a committed plan with a new plan that restores the shapes it closed, committed at once."""
    plan = plans.load_plan(conn, principal, plan_id, lock=True)
    if plan["state"] != "committed":
        raise errors.ConflictError(f"plan {plan_id} is {plan['state']}: only a committed plan can be rolled back")
    undo = plans.open_plan(conn, principal, f"rollback of plan {plan_id}", source="rollback", rollback_of=plan_id)
    for edit in plans.planned(conn, plan_id):
        _undo_edit(conn, principal, undo, edit, plan["version_id"], plan["effective_at"])
    for code, members in ((plan["report"] or {}).get("teams_replaced") or {}).items():
        plans.put_team(conn, principal, undo, code, members)
    result = commit(conn, principal, actor, undo)
    record(conn, actor, "plan.rollback", target=f"plan {plan_id}", detail={"rollback": undo})
    return result


def _undo_edit(conn: Connection, principal: Principal, undo: int, edit: dict[str, Any], version: int,
               at: datetime) -> None:
    code, op = edit["code"], edit["op"]
    closed = conn.execute(text(
        "SELECT ST_AsText(geom), name FROM grid_geometry WHERE grid_code = :c AND valid_to = :at"
        " ORDER BY id DESC LIMIT 1"), {"c": code, "at": at}).first()
    before = closed[0] if closed else None
    # the name the commit closed comes back with the shape (a rename is undone too)
    common = {"level": edit["level"], "name": closed[1] if closed else None, "parent": edit["parent_code"]}
    if op == "create" or op == "recode":
        created = edit["new_code"] if op == "recode" else code
        plans.put_edit(conn, principal, undo, op="retire", code=created, wkt=None, based_on=version, **common)
    if op in ("retire", "recode"):
        plans.put_edit(conn, principal, undo, op="create", code=code, wkt=before, based_on=None, **common)
    elif op == "reshape" and before is not None:
        plans.put_edit(conn, principal, undo, op="reshape", code=code, wkt=before, based_on=version, **common)
