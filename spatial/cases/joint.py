"""Joint handling (协办, issue 17 item 2): one lead unit and assisting units on one case.

The lead unit is the case's owner (``case.owner_key``, ``owner_area_code``) and follows the transition table
as before. ``dispatch`` may also name assisting units (``assist`` in its body: a department key, the area of
a unit that is a place, and optionally its own time limit); each becomes a ``case_unit`` row (migration 0021)
in state ``dispatched`` with its own deadline (its limit on the working calendar, else the case's deadline).
An account acting for an assisting unit (``scope.acts_for_unit`` on the row's key and area) takes
``assist_accept`` (→ accepted) and ``assist_handle`` (→ handled, with a note and photos) for it — rows of the
one transition table. The case never waits for them: it closes when the lead's work passes the check; an
assisting unit whose work is still open then stays ``dispatched`` / ``accepted`` (not handled, and late once
its deadline has passed — what the evaluation counts). A void withdraws the units still at work.

The event trail is the truth (``workflow.Trail.assists`` is derived from it); ``case_unit`` and
``case.assist_keys`` (which the scope rule reads: an assisting unit's handlers may read the case) are kept in
step with it in the action's transaction, like ``case.state``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from spatial.access.principal import Principal
from spatial.access.scope import acts_for_unit
from spatial.cases.assignment.owner import GRID_CHIEF, TOWN
from spatial.cases.rows import case_months
from spatial.cases.schemas import AssistUnitPublic
from spatial.cases.workflow import ASSIST_STEPS, BY_ACTION, NewEvent, Trail, legal
from spatial.errors import ActionDataError
from spatial.reference.cache import ReferenceCache
from spatial.reference.calendar import TIME_UNITS

if TYPE_CHECKING:
    from spatial.cases.actions import ActionInput

MAX_ASSIST = 10  # assisting units one dispatch may name
MAX_LIMIT = {"working_hours": 240, "working_days": 60, "clock_hours": 480}
# Units that are the case's place, never an assisting department: the grid chief leads or nobody.
NOT_ASSISTING = (GRID_CHIEF,)
AREA_LENGTH = {TOWN: 9}  # an assisting unit that is a place: the level of its area code


class AssistTarget(BaseModel):
    """An assisting unit a dispatch names: a department key, the area of a unit that is a place (``TOWN`` +
    its town), and optionally its own time limit (``amount`` ``unit`` on the working calendar)."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")
    area: str | None = Field(default=None, pattern=r"^[0-9]{6,15}$")
    amount: int | None = Field(default=None, ge=1, le=480)
    unit: str | None = Field(default=None, max_length=16)


def assisting(by: Principal, trail: Trail, special_codes: Iterable[str] | None) -> list[str]:
    """The keys of the case's assisting units ``by`` acts for (every one for admins)."""
    codes = list(special_codes or ())
    return [key for key, unit in trail.assists.items() if acts_for_unit(by, key, unit["area"], codes)]


def chosen_unit(trail: Trail, action: str, units: list[str], given: ActionInput) -> str | None:
    """The assisting unit an assist action is for: ``data.unit`` when named, else the one unit the caller acts
    for, else the one of its units the action is legal for (ActionDataError when several are)."""
    named = given.data.get("unit")
    if named is not None:
        if not isinstance(named, str):
            raise ActionDataError(f"{action}: data.unit names an assisting unit's key", parameter="data.unit")
        return named
    if len(units) == 1:
        return units[0]
    candidates = [u for u in units if legal(trail, BY_ACTION[action], u)]
    if len(candidates) > 1:
        raise ActionDataError(f"{action}: you act for several assisting units ({', '.join(candidates)}): name one"
                              " in data.unit", parameter="data.unit")
    return candidates[0] if candidates else None


def assist_data(ref: ReferenceCache, case: dict[str, Any], lead: str, given: ActionInput) -> list[dict[str, Any]]:
    """The assisting units a dispatch names, checked (ActionDataError naming the field): known departments,
    not the lead, not already assisting, each once, a place's area holding the case, a sound time limit."""
    units: list[dict[str, Any]] = []
    if len(given.assist or ()) > MAX_ASSIST:
        raise ActionDataError(f"assist: at most {MAX_ASSIST} assisting units", parameter="assist")
    for n, target in enumerate(given.assist or ()):
        where = f"assist[{n}]"
        key, area = target.key, target.area
        if key not in ref.departments or key in NOT_ASSISTING:
            raise ActionDataError(f"{where}: no department {key!r} to assist", parameter=f"{where}.key")
        if key in AREA_LENGTH and (area is None or len(area) != AREA_LENGTH[key]):
            raise ActionDataError(f"{where}: {key} acts for a place: name its {AREA_LENGTH[key]}-digit area code",
                                  parameter=f"{where}.area")
        if area is not None and (area not in ref.areas or not case["grid_code"].startswith(area)):
            raise ActionDataError(f"{where}: area {area} does not hold this case", parameter=f"{where}.area")
        if key == lead or key in (case.get("assist_keys") or ()) or any(u["key"] == key for u in units):
            raise ActionDataError(f"{where}: {key} already works on this case (the lead or an assisting unit)",
                                  parameter=f"{where}.key")
        unit: dict[str, Any] = {"key": key, "area": area}
        if (target.amount is None) != (target.unit is None):
            raise ActionDataError(f"{where}: a time limit needs both amount and unit", parameter=f"{where}.unit")
        if target.unit is not None and target.amount is not None:
            if target.unit not in TIME_UNITS or not target.amount <= MAX_LIMIT[target.unit]:
                raise ActionDataError(f"{where}: a time limit is 1 to {MAX_LIMIT.get(target.unit, 0)} of "
                                      f"{', '.join(TIME_UNITS)}", parameter=f"{where}.amount")
            unit["limit"] = {"amount": target.amount, "unit": target.unit}
        units.append(unit)
    return units


def deadlines(ref: ReferenceCache, units: list[dict[str, Any]], deadline: datetime | None, now: datetime) -> None:
    """Give each assisting unit of a dispatch its deadline: its own limit from ``now``, else the case's."""
    for unit in units:
        limit = unit.get("limit")
        unit["deadline"] = ref.calendar.deadline(now, limit["amount"], limit["unit"]) if limit else deadline


def store(conn: Connection, case_id: int, new: list[NewEvent], now: datetime, month: datetime | None = None) -> None:
    """Keep ``case_unit`` and ``case.assist_keys`` in step with the events just appended. ``case_unit`` is
    partitioned with its case (migration 0035): each row carries the case's ``reported_at`` (``month``, from the
    caller's locked row of the case, else from ``case_key``), and every statement here names it, so that it
    reads and writes the case's month only."""
    month = month or case_months(conn, [case_id]).get(case_id)
    if month is None:
        return
    added = False
    for event in new:
        if event.kind == "dispatch" and event.data.get("assist"):
            conn.execute(text(
                "INSERT INTO case_unit (case_id, unit_key, unit_area, role, state, deadline, dispatched_at,"
                " reported_at) VALUES (:case, :key, :area, 'assist', 'dispatched', :deadline, :now, :month)"),
                [{"case": case_id, "key": u["key"], "area": u["area"], "deadline": u["deadline"], "now": now,
                  "month": month} for u in event.data["assist"]])
            added = True
        elif event.kind in ASSIST_STEPS:
            moment = "accepted_at" if event.kind == "assist_accept" else "handled_at"
            conn.execute(text(f"UPDATE case_unit SET state = :state, {moment} = :now"
                              " WHERE case_id = :case AND unit_key = :key AND reported_at = :month"),
                         {"state": ASSIST_STEPS[event.kind], "now": now, "case": case_id, "key": event.data["unit"],
                          "month": month})
        elif event.state_after == "voided":
            conn.execute(text("UPDATE case_unit SET state = 'withdrawn' WHERE case_id = :case"
                              " AND reported_at = :month AND state IN ('dispatched', 'accepted')"),
                         {"case": case_id, "month": month})
    if added:
        conn.execute(text('UPDATE "case" SET assist_keys = ARRAY(SELECT unit_key FROM case_unit'
                          " WHERE case_id = :case AND reported_at = :month ORDER BY unit_key)"
                          " WHERE id = :case AND reported_at = :month"), {"case": case_id, "month": month})


def units(conn: Connection, case_id: int, month: datetime | None = None) -> list[AssistUnitPublic]:
    """The assisting units of a case as stored, in the order they were dispatched (in the case's month:
    ``month``, the case's ``reported_at`` when the caller holds its row, else from ``case_key``)."""
    return [cast(AssistUnitPublic, dict(r)) for r in conn.execute(text(
        "SELECT unit_key AS key, unit_area AS area, role, state, deadline, dispatched_at, accepted_at, handled_at"
        " FROM case_unit WHERE case_id = :case AND reported_at = :month ORDER BY dispatched_at, unit_key"),
        {"case": case_id, "month": month or case_months(conn, [case_id]).get(case_id)}).mappings()]
