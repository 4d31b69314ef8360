"""Acting on a case: one action of the transition table (spatial/cases/workflow.py) in one transaction.

``act`` locks the case, checks who may act (scope, role, unit), the revision the caller read (``If-Match``),
replays the trail, lets the table decide, and writes in the same transaction: the event rows (actor, role,
time, note, data), the case's state, revision, owner, deadlines and pending approval, and the audit row. The
events it wrote come back in ``Outcome.events``: what a live feed or the reminder scheduler (issue 17 items 3
and 6) consumes — their ids grow with every commit, so they can serve as ``Last-Event-ID``.

Effects beyond the state, by the event appended:
- ``dispatch``: the case's unit (owner) becomes ``target`` (default: its current owner; another unit needs a
  ``reason``); a case returned by its grid chief was escalated to the town sub-centre (属地兜底), which is
  then the default.
- ``extend`` (approved): the overall deadline moves by ``data.amount`` ``data.unit`` on the working calendar.
- ``resume``: the deadline moves by the working time the case spent suspended.
- ``reopen``: a fresh overall deadline from the category's time limit; ``closed_at`` is cleared.
- every new state: its step deadline (``STEP_LIMITS``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import Connection, text

from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.access.scope import acts_for_unit, check_read
from spatial.cases import action_rules, joint, photos
from spatial.cases.read import MAX_CASE_ID
from spatial.cases.rows import TRAIL, one_case, trail_window
from spatial.cases.schemas import Text
from spatial.cases.workflow import BY_ACTION, HTTP_ACTIONS, STEP_LIMITS, Event, NewEvent, Trail, decide, permit, replay
from spatial.errors import NotFoundError, PreconditionRequiredError, RevisionMismatchError
from spatial.reference.cache import ReferenceCache

# A value in an action's ``data``: text (no control characters, spatial.text), a number, a flag, or a short list
# of texts (photo references); at most 20 keys, so a body stays small.
Short = Annotated[Text, Field(max_length=500)]
DataValue = StrictBool | StrictInt | StrictFloat | Short | None | Annotated[list[Short], Field(max_length=20)]


class Target(BaseModel):
    """The unit a dispatch sends a case to: a department key, with the area of a unit that is a place
    (``GRID_CHIEF`` + a base grid, ``TOWN`` + a town)."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")
    area: str | None = Field(default=None, pattern=r"^[0-9]{6,15}$")


class ActionInput(BaseModel):
    """What the caller sends with an action (the JSON body of ``POST …/actions/{action}``; all optional)."""

    model_config = ConfigDict(extra="forbid")
    note: Text | None = Field(default=None, max_length=2000)
    reason: Text | None = Field(default=None, max_length=500)
    data: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")], DataValue] = Field(default_factory=dict,
                                                                                     max_length=20)
    target: Target | None = None
    assist: list[joint.AssistTarget] | None = Field(default=None, max_length=joint.MAX_ASSIST)


@dataclass
class Outcome:
    """The case after the action: its new revision (the ETag) and the events written."""

    case_id: int
    state: str
    revision: int
    events: list[dict[str, Any]]


_CASE = ('SELECT id, state, category_code, grid_code, town_code, special_grid_codes, owner_key, owner_area_code,'
         ' deadline, step_deadline, closed_at, revision, pending_action, assist_keys, reported_at FROM "case"'
         ' WHERE id = :id __MONTH__ FOR UPDATE')  # read in the case's own month (spatial/cases/rows.py)
_EVENTS = text("SELECT id, at, kind, state_after, actor, role, data FROM case_event WHERE case_id = :id"
               f" AND {TRAIL} ORDER BY at, id")  # in the months of the case's trail (spatial/cases/rows.py)


def check_action(action: str) -> None:
    """NotFoundError for an action the table does not offer over HTTP."""
    if action not in HTTP_ACTIONS:
        raise NotFoundError(f"no action {action!r} (actions: {', '.join(HTTP_ACTIONS)})", actions=list(HTTP_ACTIONS))


def load_trail(conn: Connection, case_id: int) -> tuple[list[tuple[datetime, Event]], Trail]:
    """The events of a case, oldest first, and the trail they make."""
    rows = conn.execute(_EVENTS, {"id": case_id, **trail_window(conn, [case_id])}).mappings().all()
    events = [(r["at"], Event(r["kind"], r["state_after"], r["actor"], r["role"], r["data"], r["id"]))
              for r in rows]
    return events, replay(e for _, e in events)


def act(conn: Connection, ref: ReferenceCache, case_id: int, action: str, given: ActionInput, *, by: Principal,
        expected_revision: int | None, client: str | None = None, now: datetime | None = None) -> Outcome:
    """Take ``action`` on the case as ``by``, all or nothing, in ``conn``'s transaction.

    Raises:
        NotFoundError: no such case or action. ForbiddenError: outside the caller's scope, a role or unit
        that may not take the action, an approval by its own requester. PreconditionRequiredError: no
        ``expected_revision``. RevisionMismatchError: the case changed since the caller read it.
        IllegalTransitionError: not allowed in the case's state (lists the allowed actions).
        ActionDataError: what the action needs is missing or wrong.
    """
    check_action(action)
    now = now or datetime.now(UTC)
    row = one_case(conn, _CASE, case_id) if 0 < case_id <= MAX_CASE_ID else None
    if row is None:
        raise NotFoundError(f"no case with id {case_id}", case_id=case_id)
    case = dict(row)
    check_read(by, case)
    if expected_revision is None:
        raise PreconditionRequiredError("send If-Match with the ETag of the case you read (GET /api/v1/cases/{id})")
    if expected_revision != case["revision"]:
        raise RevisionMismatchError(f"the case changed since you read it (revision {case['revision']}, you sent "
                                    f"{expected_revision}): read it again", etag=f'"{case["revision"]}"')
    events, trail = load_trail(conn, case_id)
    unit = acts_for_unit(by, case["owner_key"], case["owner_area_code"], case["special_grid_codes"])
    assisting = joint.assisting(by, trail, case["special_grid_codes"])
    for_unit = joint.chosen_unit(trail, action, assisting, given) if BY_ACTION[action].assist else None
    # who and when before what (403, 409, then 422)
    permit(trail, action, role=by.role, acts_for_unit=unit, assisting=assisting, unit=for_unit)
    data = action_rules.payload(ref, case, action, given) if action not in ("approve", "refuse") else {}
    if for_unit is not None:
        data["unit"] = for_unit
    photos.check_refs(conn, case_id, data.get("photos"))  # issue 20: photo:<id> names a photo of this case
    new = decide(trail, action, role=by.role, login=by.login, acts_for_unit=unit, data=data, assisting=assisting)
    changes = _effects(ref, case, new, events, now)
    written = _write(conn, case, new, changes, by, given.note, now)
    joint.store(conn, case_id, new, now, month=case["reported_at"])
    record(conn, Actor.of(by, client), f"case.{action}", target=str(case_id),
           detail={"events": [e["kind"] for e in written], "revision": changes["revision"],
                   "if_match": expected_revision, "state": changes["state"]})
    return Outcome(case_id, changes["state"], changes["revision"], written)


def _effects(ref: ReferenceCache, case: dict[str, Any], new: list[NewEvent], events: list[tuple[datetime, Event]],
             now: datetime) -> dict[str, Any]:
    """The case's columns after ``new``: state, revision, owner, deadlines, pending approval, closed_at."""
    changes: dict[str, Any] = {k: case[k] for k in ("state", "owner_key", "owner_area_code", "deadline",
                                                    "step_deadline", "closed_at", "pending_action")}
    changes["revision"] = case["revision"] + 1
    requests = {e.id: e.data or {} for _, e in events if e.kind == "request"}
    for event in new:
        if event.kind == "request":
            changes["pending_action"] = event.data["action"]
        elif event.kind in ("approve", "refuse"):
            changes["pending_action"] = None
        elif BY_ACTION[event.kind].approval:  # approved: the request's data is the action's
            event.data = {**requests.get(event.data.get("request"), {}), **event.data}
            event.data.pop("action", None)
        action_rules.apply(ref, case, changes, event, events, now)
        if event.state_after is not None and event.state_after != changes["state"]:
            changes["state"] = event.state_after
            changes["pending_action"] = None  # a request lapses when the state changes
            changes["step_deadline"] = _step_deadline(ref, event.state_after, changes["deadline"], now)
        elif changes["state"] == "dispatched":
            changes["step_deadline"] = changes["deadline"]
        if changes["state"] == "dispatched":  # an escalated case runs to the fresh step deadline it was given
            escalated = action_rules.escalated_deadline([*(e for _, e in events), *new], ref.calendar)
            if escalated is not None and (changes["step_deadline"] is None or escalated > changes["step_deadline"]):
                changes["step_deadline"] = escalated
    return changes


def _step_deadline(ref: ReferenceCache, state: str, deadline: datetime | None, now: datetime) -> datetime | None:
    if state not in STEP_LIMITS:
        return None
    limit = STEP_LIMITS[state]
    return deadline if limit is None else ref.calendar.deadline(now, *limit)


def _write(conn: Connection, case: dict[str, Any], new: list[NewEvent], changes: dict[str, Any], by: Principal,
           note: str | None, now: datetime) -> list[dict[str, Any]]:
    """Append the events (each with the caller's note) and update the case; return the events as written."""
    written = []
    for event in new:
        event_id = conn.execute(text(
            "INSERT INTO case_event (case_id, at, kind, state_after, actor, role, note, data)"
            " VALUES (:case, :at, :kind, :state, :actor, :role, :note, CAST(:data AS jsonb)) RETURNING id"),
            {"case": case["id"], "at": now, "kind": event.kind, "state": event.state_after, "actor": by.login,
             "role": by.role, "note": note,
             "data": json.dumps(event.data, ensure_ascii=False, default=_json_value) if event.data else None},
        ).scalar_one()
        written.append({"id": event_id, "case_id": case["id"], "at": now, "kind": event.kind,
                        "state": event.state_after, "actor": by.login, "role": by.role})
    conn.execute(text(
        'UPDATE "case" SET state = :state, revision = :revision, owner_key = :owner_key,'
        " owner_area_code = :owner_area_code, deadline = :deadline, step_deadline = :step_deadline,"
        " closed_at = :closed_at, pending_action = :pending_action"
        " WHERE id = :id AND reported_at = :month"),  # its month: the row, locked, cannot have left it
        {**changes, "id": case["id"], "month": case["reported_at"]})
    return written


def _json_value(value: Any) -> str:
    """Moments in event data as ISO 8601 (as the API writes them)."""
    return value.isoformat() if isinstance(value, datetime) else str(value)
