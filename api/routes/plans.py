"""Grid plans (issue 19): ``/api/v1/plans`` — open a draft, add edits, check and preview it, commit it (now,
or scheduled for a future time and cancellable until then), roll it back. Admins and planners only (403 for
every other account before a body is read, 401 without one); a planner acts on its own plans, inside its
scope (spatial/access/scope.py: ``check_edit_grid``). Every write is audited (``plan.create``, ``plan.edit``,
``plan.schedule``, ``plan.cancel``, ``plan.commit``, ``plan.rollback``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.auth import AuthenticatedRoute, PrincipalDep, client_address, require_role
from api.deps import ConnectionDep, EngineDep, require_json
from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.grids import plan_edits, planning, plans
from spatial.grids.history import as_utc
from spatial.text import text_problem

PLANNERS = ("admin", "planner")


class PlannerRoute(AuthenticatedRoute):
    """Only admins and planners plan grids; others are refused before their body is read."""

    def admit(self, principal: Principal) -> None:
        """ForbiddenError unless the caller is an admin or a planner."""
        require_role(principal, *PLANNERS)


router = APIRouter(prefix="/api/v1/plans", tags=["plans"], route_class=PlannerRoute)
PlanId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)]
Code = Annotated[str, Field(pattern=r"^[0-9]{6}([0-9]{3}){0,3}$")]


class PlanCreate(BaseModel):
    """A new draft plan."""

    model_config = ConfigDict(extra="forbid")
    title: Text


class TeamMemberIn(BaseModel):
    """One member of a grid's "4+N" team."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["chief", "inspector", "police", "supervisor", "volunteer", "mediator"]
    name: Text
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{2,18}$")] | None = None


class PlanEdit(BaseModel):
    """One gesture: ``move`` (``line``, ``level``), ``split`` (``code``, ``new_code``, ``line``), ``merge``
    (``code``, ``into``), ``create`` (``code``, ``name``, ``level``, ``polygon``), ``reshape`` (``code``,
    ``polygon``: drawn alone, neighbours untouched), ``retire`` (``code``),
    ``recode`` (``code``, ``new_code``), ``rename`` (``code``, ``name``), ``team`` (``code``, ``members``: the
    grid's whole team as committed, chief, inspector, police and supervisor at least once each). Lines and
    polygons are GeoJSON in EPSG:4326."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["move", "split", "merge", "create", "reshape", "retire", "recode", "rename", "team"]
    code: Annotated[str, Field(pattern=r"^[0-9]{6}([0-9]{3}){0,3}$|^[0-9]{6}[EPSC][0-9]{4}$")] | None = None
    new_code: Code | None = None
    into: Code | None = None
    name: Text | None = None
    level: int | None = Field(default=None, ge=1, le=4)
    line: dict[str, Any] | None = None
    polygon: dict[str, Any] | None = None
    members: list[TeamMemberIn] | None = Field(default=None, max_length=50)


class PlanCommit(BaseModel):
    """When the plan takes effect (default: now; a future instant schedules the plan for then)."""

    model_config = ConfigDict(extra="forbid")
    effective_at: datetime | None = None


def _actor(principal: Principal, request: Request) -> Actor:
    return Actor.of(principal, client_address(request))


@router.post("", status_code=201, summary="Open a draft plan", dependencies=[Depends(require_json)])
def create_plan(body: PlanCreate, principal: PrincipalDep, engine: EngineDep, request: Request) -> dict[str, Any]:
    """Open a draft owned by the caller."""
    with engine.begin() as conn:
        plan_id = plans.open_plan(conn, principal, body.title)
        record(conn, _actor(principal, request), "plan.create", target=f"plan {plan_id}")
        return plans.plan_public(conn, principal, plan_id)


@router.get("", summary="The caller's plans (admins: all), newest first")
def list_plans(principal: PrincipalDep, conn: ConnectionDep,
               state: Literal["draft", "scheduled", "committed", "discarded"] | None = Query(default=None),
               ) -> list[dict[str, Any]]:
    """List plans."""
    return plans.list_plans(conn, principal, state)


@router.get("/{plan_id}", summary="A plan and its edits")
def get_plan(plan_id: PlanId, principal: PrincipalDep, conn: ConnectionDep) -> dict[str, Any]:
    """Return the plan with its planned grids (GeoJSON shapes)."""
    return plans.plan_public(conn, principal, plan_id)


@router.post("/{plan_id}/edits", summary="Add an edit to a draft", dependencies=[Depends(require_json)])
def add_edit(plan_id: PlanId, body: PlanEdit, principal: PrincipalDep, engine: EngineDep,
             request: Request) -> dict[str, Any]:
    """Apply one gesture to the draft (snapped, so that it cannot open a gap or an overlap)."""
    with engine.begin() as conn:
        plan_edits.gesture(conn, principal, plan_id, body.op, body.model_dump(exclude={"op"}))
        record(conn, _actor(principal, request), "plan.edit", target=f"plan {plan_id}",
               detail=body.model_dump(exclude_none=True, exclude={"line", "polygon", "members"})
               | ({"team": len(body.members)} if body.members is not None else {}))
        return plans.plan_public(conn, principal, plan_id)


@router.get("/{plan_id}/preview", summary="What the plan changes: numbers, lists, GeoJSON, problems")
def preview(plan_id: PlanId, principal: PrincipalDep, conn: ConnectionDep) -> dict[str, Any]:
    """The plan's impact (read-only)."""
    return planning.impact(conn, principal, plan_id)


@router.post("/{plan_id}/commit", summary="Commit a draft (refused, saying where, if it breaks a partition)")
def commit(plan_id: PlanId, principal: PrincipalDep, engine: EngineDep, request: Request,
           body: PlanCommit | None = None) -> dict[str, Any]:
    """Store the plan as one grid version and reassign what moves; a future ``effective_at`` schedules it."""
    at = as_utc(body.effective_at) if body is not None and body.effective_at is not None else None
    with engine.begin() as conn:
        return planning.commit(conn, principal, _actor(principal, request), plan_id, effective_at=at)


@router.post("/{plan_id}/cancel", summary="Cancel a scheduled plan: a draft again, nothing happens at its time")
def cancel(plan_id: PlanId, principal: PrincipalDep, engine: EngineDep, request: Request) -> dict[str, Any]:
    """Take a scheduled plan back to a draft."""
    with engine.begin() as conn:
        return planning.cancel(conn, principal, _actor(principal, request), plan_id)


@router.post("/{plan_id}/rollback", summary="Undo a committed plan with a new plan, committed at once")
def rollback(plan_id: PlanId, principal: PrincipalDep, engine: EngineDep, request: Request) -> dict[str, Any]:
    """Restore the shapes the plan's commit closed."""
    with engine.begin() as conn:
        return planning.rollback(conn, principal, _actor(principal, request), plan_id)
