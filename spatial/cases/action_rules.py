"""What each workflow action needs from the caller and what it does besides moving the state.

``payload`` checks an action's body before the transition table decides (ActionDataError, 422, naming the
field) and returns the event's data; ``apply`` works an appended event's effect into the case's columns
(owner, deadlines, closed_at). Both are called by spatial/cases/actions.py inside the action's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spatial.cases import joint
from spatial.cases.assignment.owner import GRID_CHIEF, TOWN
from spatial.cases.workflow import CHECK_RESULTS, Event, NewEvent
from spatial.codes import town_of
from spatial.errors import ActionDataError
from spatial.reference.cache import ReferenceCache
from spatial.reference.calendar import TIME_UNITS, WorkingCalendar

if TYPE_CHECKING:
    from spatial.cases.actions import ActionInput

NEEDS_REASON = ("void", "return", "extend", "suspend")
SATISFACTION = ("satisfied", "basically_satisfied", "dissatisfied")
MAX_EXTENSION = {"working_hours": 120, "working_days": 30, "clock_hours": 240}
# Written by the workflow itself: a caller's data may not set them.
RESERVED = ("action", "request", "requested_by", "approved_by", "to", "area", "reason", "escalated_to",
            "deadline_before", "deadline_after", "suspended_s", "assist", "step_deadline_before",
            "step_deadline_after", "overall_deadline")
AREA_LENGTH = {GRID_CHIEF: 15, TOWN: 9}  # a unit that is a place: the level of its area code


def payload(ref: ReferenceCache, case: dict[str, Any], action: str, given: ActionInput) -> dict[str, Any]:
    """The data of the event ``action`` appends, from the caller's body; ActionDataError when it lacks what
    the action needs."""
    data = {k: v for k, v in given.data.items() if k not in RESERVED}
    if given.reason:
        data["reason"] = given.reason
    elif action in NEEDS_REASON:
        raise ActionDataError(f"{action} needs a reason", parameter="reason")
    if action == "verify" and not isinstance(data.get("result"), bool):
        raise ActionDataError("verify needs data.result: true (the report is true) or false", parameter="data.result")
    if action == "check" and data.get("result") not in CHECK_RESULTS:
        raise ActionDataError("check needs data.result: pass or fail", parameter="data.result")
    if action == "evaluate" and data.get("satisfaction") not in SATISFACTION:
        raise ActionDataError(f"evaluate needs data.satisfaction: {', '.join(SATISFACTION)}",
                              parameter="data.satisfaction")
    if action in ("handle", "assist_handle") and not given.note:
        raise ActionDataError("handle needs a note: what was done (the feedback)", parameter="note")
    if action == "extend":
        _extension(data)
    if action == "dispatch":
        data.update(_dispatch(ref, case, given))
    elif given.assist:
        raise ActionDataError("assisting units (assist) are named by a dispatch", parameter="assist")
    return data


def _dispatch(ref: ReferenceCache, case: dict[str, Any], given: ActionInput) -> dict[str, Any]:
    """A dispatch's data: the lead unit (``_target``) and the assisting units it names (joint handling)."""
    data = _target(ref, case, given)
    if given.assist:
        data["assist"] = joint.assist_data(ref, case, data["to"], given)
    return data


def _extension(data: dict[str, Any]) -> None:
    unit, amount = data.get("unit"), data.get("amount")
    if unit not in TIME_UNITS:
        raise ActionDataError(f"extend needs data.unit: {', '.join(TIME_UNITS)}", parameter="data.unit")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= MAX_EXTENSION[unit]:
        raise ActionDataError(f"extend needs data.amount: 1 to {MAX_EXTENSION[unit]} {unit}", parameter="data.amount")


def _target(ref: ReferenceCache, case: dict[str, Any], given: ActionInput) -> dict[str, Any]:
    """The unit a dispatch sends the case to: its current owner, or the named unit (with a reason)."""
    if given.target is None:
        return {"to": case["owner_key"], "area": case["owner_area_code"]}
    key, area = given.target.key, given.target.area
    if key not in ref.departments and key != GRID_CHIEF:
        raise ActionDataError(f"target: no unit {key!r}", parameter="target.key")
    if key in AREA_LENGTH:
        if area is None or len(area) != AREA_LENGTH[key] or area not in ref.areas:
            raise ActionDataError(f"target: {key} acts for a place: name its {AREA_LENGTH[key]}-digit area code",
                                  parameter="target.area")
        if not case["grid_code"].startswith(area):
            raise ActionDataError(f"target: area {area} does not hold this case", parameter="target.area")
    elif area is not None and (area not in ref.areas or not case["grid_code"].startswith(area)):
        raise ActionDataError(f"target: area {area} does not hold this case", parameter="target.area")
    if (key, area) != (case["owner_key"], case["owner_area_code"]) and not given.reason:
        raise ActionDataError("dispatching to another unit than the case's owner needs a reason", parameter="reason")
    return {"to": key, "area": area}


def apply(ref: ReferenceCache, case: dict[str, Any], changes: dict[str, Any], event: NewEvent,
          events: list[tuple[datetime, Event]], now: datetime) -> None:
    """Work the effect of ``event`` into ``changes`` (the case's columns), recording what moved in its data."""
    kind, data, calendar = event.kind, event.data, ref.calendar
    if kind == "dispatch":
        changes["owner_key"], changes["owner_area_code"] = data["to"], data["area"]
        if data.get("assist"):
            joint.deadlines(ref, data["assist"], changes["deadline"], now)
    elif kind == "return" and changes["owner_key"] == GRID_CHIEF:
        # grid_first escalates to the town's sub-centre when the grid chief cannot solve it (SPEC "Routing").
        changes["owner_key"], changes["owner_area_code"] = TOWN, town_of(case["grid_code"])
        data["escalated_to"] = {"key": TOWN, "area": changes["owner_area_code"]}
        category = ref.categories.get(case["category_code"])
        limit = (category.time_limit, category.time_unit) if category and category.time_limit else None
        data["step_deadline_before"], data["overall_deadline"] = changes["step_deadline"], changes["deadline"]
        data["step_deadline_after"] = escalated_step(calendar, limit, changes["deadline"], now)
    elif kind == "extend":
        _move(changes, data, calendar.deadline(changes["deadline"] or now, data["amount"], data["unit"]))
    elif kind == "resume":
        since = max((at for at, e in events if e.kind == "suspend"), default=now)
        suspended = calendar.working_seconds_between(since, now)
        data["suspended_s"] = round(suspended)
        if changes["deadline"] is not None:
            _move(changes, data, calendar.after_working_seconds(changes["deadline"], suspended))
    elif kind == "reopen":
        category = ref.categories.get(case["category_code"])
        if category is not None:
            _move(changes, data, calendar.deadline(now, category.time_limit, category.time_unit))
        changes["closed_at"] = None
    elif kind == "close":
        changes["closed_at"] = now


def escalated_step(calendar: WorkingCalendar, limit: tuple[int, str] | None, deadline: datetime | None,
                   now: datetime) -> datetime | None:
    """The step deadline of a grid-first case escalated to the town at ``now`` (a grid chief's approved return,
    or the scheduler's supervision order): a fresh time limit — the category's — on the working calendar from
    ``now``, never earlier than the overall deadline (which stays as it is). The town's unit does not inherit
    a step deadline that has already passed."""
    fresh = calendar.deadline(now, *limit) if limit else None
    moments = [d for d in (fresh, deadline) if d is not None]
    return max(moments).astimezone(UTC) if moments else None


def escalated_deadline(events: Iterable[Event | NewEvent], calendar: WorkingCalendar) -> datetime | None:
    """The step deadline the last escalation since the last reopen gave (``step_deadline_after`` of its
    event), moved on by the working time of every suspension resumed since (as ``resume`` moves the overall
    deadline); None when there is none: a ``dispatched`` step of an escalated case runs to it."""
    found: datetime | None = None
    for event in events:
        data = event.data or {}
        if event.kind == "reopen":
            found = None
        elif data.get("escalated_to") and data.get("step_deadline_after"):
            after = data["step_deadline_after"]
            found = datetime.fromisoformat(after) if isinstance(after, str) else after
        elif event.kind == "resume" and found is not None and data.get("suspended_s"):
            found = calendar.after_working_seconds(found, data["suspended_s"])
    return found


def _move(changes: dict[str, Any], data: dict[str, Any], deadline: datetime) -> None:
    data["deadline_before"], data["deadline_after"] = changes["deadline"], deadline
    changes["deadline"] = deadline
