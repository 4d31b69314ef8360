"""Reminders (提醒), supervision orders (督办) and the escalation of overdue grid-first cases (issue 17 items 2, 3).

``sweep`` looks at every open case with a step deadline and appends what is due through the transition table's
system rows (spatial/cases/workflow.py): ``remind`` once 80 % of the step's working time is used, ``supervise``
once the step deadline has passed. A supervision order of a ``dispatched`` case still with its grid chief
(``GRID_CHIEF``) escalates it to the town sub-centre (``TOWN`` + town, 属地兜底): the owner moves and the order's
data says so (``escalated_to``), as a grid chief's approved return does.

The sweep is level-triggered, so no order is ever lost: whatever is due and not yet written is written by the
next sweep, whether the last one finished, crashed or never ran. It never doubles one either: each order is
keyed by (case, kind, step = the state, deadline = the step deadline, in UTC), and the database refuses a
second row with that key whatever number of workers or server processes sweep at once (``uq_case_event_order``:
a unique index from migration 0016_scheduler, the trigger ``case_event_order_once`` under an advisory lock per
key since the trail is partitioned, migration 0028); the insert runs in a savepoint and a refused one is
skipped, as ``ON CONFLICT DO NOTHING`` did. A moved deadline (an extension, a resumption, a reopen) is a new
key, so it gets its own reminder and order.

Each case's orders are one transaction, like an action (spatial/cases/actions.py): the case row is locked
(``FOR UPDATE SKIP LOCKED``: a case someone is acting on is left to the next sweep), the trail is replayed and
the table asked whether the system may take the action now, the events are appended (actor ``scheduler``, role
``system``, note, data: step, deadline, when it was due), the case's revision moves (a client holding the old
ETag reads again) and an audit row ``case.remind`` / ``case.supervise`` is written.

When a reminder is due: 80 % of the working time (the calendar's) between the start of the limit and the step
deadline. For a step whose limit is the overall deadline (``STEP_LIMITS`` None: ``dispatched``) the limit
starts when the case was reported or last reopened; for a step with its own limit, when the case entered the
state. A reminder is written even when the sweep comes after the deadline (it was due, and the trail shows
when: ``data.due``); the supervision order then follows it.

spatial/cases/jobs.py runs ``sweep`` periodically with procrastinate (``gridlink worker``, or inside each
server process); tests call it directly with the ``now`` they choose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from spatial.access.audit import Actor, record
from spatial.cases.action_rules import escalated_step
from spatial.cases.actions import load_trail
from spatial.cases.assignment.owner import GRID_CHIEF, TOWN
from spatial.cases.rows import one_case
from spatial.cases.workflow import ASSIST_CHECKS, BY_ACTION, STEP_LIMITS, SYSTEM, legal
from spatial.codes import town_of
from spatial.reference.calendar import WorkingCalendar
from spatial.store.partitions import OPEN_SPAN, open_span

ACTOR = "scheduler"
REMIND_SHARE = 0.8
REMIND, SUPERVISE = BY_ACTION["remind"], BY_ACTION["supervise"]
ASSIST_REMIND, ASSIST_SUPERVISE = BY_ACTION["assist_remind"], BY_ACTION["assist_supervise"]
STATES = tuple(sorted({*REMIND.sources, *SUPERVISE.sources}))
ASSIST_STATES = tuple(sorted({*ASSIST_REMIND.sources, *ASSIST_SUPERVISE.sources}))
ASSIST_OPEN = ASSIST_CHECKS[str(ASSIST_SUPERVISE.check)]
NOTES = {"remind": "提醒：本环节时限已用去 80 %", "supervise": "督办：本环节已超过时限",
         "assist_remind": "提醒：协办时限已用去 80 %", "assist_supervise": "督办：协办已超过时限"}
# The step deadline as the orders' key: UTC, microseconds, the same text whoever computes it.
_KEY = """to_char(c.step_deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
# Each case's events are read between its trail's bounds (case_key, migration 0034): known per row only, so the
# months outside are dropped when each sub-select runs (run-time pruning), not when planning.
_IN_TRAIL = "AND {e}.at BETWEEN coalesce(t.trail_from, '-infinity') AND coalesce(t.trail_to, 'infinity')"
_CANDIDATES = text(
    f"SELECT c.id, c.state, c.step_deadline, {_KEY} AS deadline_key, c.reported_at, c.owner_key, c.grid_code,"
    " c.deadline, k.time_limit, k.time_unit,"
    " (SELECT max(e.at) FROM case_event e WHERE e.case_id = c.id AND e.kind = 'reopen'"
    f"  {_IN_TRAIL.format(e='e')}) AS reopened_at,"
    " (SELECT max(e.at) FROM case_event e WHERE e.case_id = c.id AND e.data ->> 'escalated_to' IS NOT NULL"
    f"  {_IN_TRAIL.format(e='e')}) AS escalated_at,"
    " (SELECT max(e.at) FROM case_event e WHERE e.case_id = c.id AND e.state_after IS NOT NULL"
    f"  {_IN_TRAIL.format(e='e')}) AS entered_at"
    ' FROM "case" c JOIN case_key t ON t.id = c.id LEFT JOIN event_category k ON k.code = c.category_code'
    f" WHERE {OPEN_SPAN.format(k='c')} AND c.state = ANY(:states) AND c.step_deadline IS NOT NULL AND NOT EXISTS ("
    f"  SELECT 1 FROM case_event s WHERE s.case_id = c.id AND s.kind = 'supervise' {_IN_TRAIL.format(e='s')}"
    f"  AND s.data ->> 'step' = c.state AND s.data ->> 'deadline' = {_KEY}) ORDER BY c.step_deadline, c.id")
# An assisting unit's own deadline (joint handling, spatial/cases/joint.py): its open part on an open case,
# not yet supervised for that deadline. Both tables are bounded by the open cases' months (a unit has its case's).
_UNIT_KEY = _KEY.replace("c.step_deadline", "u.deadline")
_ASSIST_CANDIDATES = text(
    f"SELECT u.case_id AS id, c.state, u.unit_key, u.state AS unit_state, u.deadline, {_UNIT_KEY} AS deadline_key,"
    " u.dispatched_at FROM case_unit u JOIN \"case\" c ON c.id = u.case_id AND c.reported_at = u.reported_at"
    " JOIN case_key t ON t.id = u.case_id"
    f" WHERE {OPEN_SPAN.format(k='u')} AND {OPEN_SPAN.format(k='c')}"
    " AND u.state = ANY(:unit_states) AND u.deadline IS NOT NULL AND c.state = ANY(:states) AND NOT EXISTS ("
    "  SELECT 1 FROM case_event s WHERE s.case_id = u.case_id AND s.kind = 'assist_supervise'"
    f"  {_IN_TRAIL.format(e='s')}"
    f"  AND s.data ->> 'unit' = u.unit_key AND s.data ->> 'deadline' = {_UNIT_KEY})"
    " ORDER BY u.deadline, u.case_id, u.unit_key")
_UNIT = text(f"SELECT u.state, {_UNIT_KEY} AS deadline_key FROM case_unit u"
             " WHERE u.case_id = :case AND u.unit_key = :unit AND u.reported_at = gridlink_case_month(:case)")
_LOCK = (f'SELECT c.id, c.state, c.owner_key, c.revision, c.deadline, c.reported_at, {_KEY} AS deadline_key'
         ' FROM "case" c'
         " WHERE c.id = :id __MONTH:c__ FOR UPDATE SKIP LOCKED")  # in the case's own month (cases/rows.py)
_INSERT = text(
    "INSERT INTO case_event (case_id, at, kind, state_after, actor, role, note, data)"
    " VALUES (:case, :at, :kind, NULL, :actor, :role, :note, CAST(:data AS jsonb)) RETURNING id")
# The constraint names the trigger case_event_order_once (migration 0028) refuses a doubled order with.
_ORDER_KEYS = ("uq_case_event_order", "uq_case_event_assist_order")


def _insert_once(conn: Connection, values: dict[str, Any]) -> int | None:
    """Append one order in a savepoint; None when its key is written already (by another worker, or before)."""
    try:
        with conn.begin_nested():
            return conn.execute(_INSERT, values).scalar()
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) in _ORDER_KEYS:
            return None
        raise


@dataclass(frozen=True)
class Order:
    """A reminder or supervision order due on one case: its key (case, kind, step, deadline) and when it fell due;
    for an assisting unit's own deadline (``assist_remind``, ``assist_supervise``) ``unit`` names it and
    ``step`` is the case's state when the order was found."""

    case_id: int
    kind: str
    step: str
    deadline: str
    due: datetime
    escalate_to: tuple[str, str] | None = None
    unit: str | None = None
    step_deadline: datetime | None = None  # an escalation's fresh step deadline (``action_rules.escalated_step``)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def reminder_due(calendar: WorkingCalendar, start: datetime, deadline: datetime) -> datetime:
    """When 80 % of the working time between ``start`` and ``deadline`` is used."""
    work = calendar.working_seconds_between(start, deadline)
    return deadline if work <= 0 else min(calendar.after_working_seconds(start, work * REMIND_SHARE), deadline)


def due(case: dict[str, Any], calendar: WorkingCalendar, now: datetime) -> list[Order]:
    """The orders due on ``case`` (a row of the sweep's candidates) at ``now``, reminder first."""
    state, deadline, key = case["state"], case["step_deadline"], case["deadline_key"]
    orders = []
    if state in REMIND.sources:
        if STEP_LIMITS.get(state) is None:  # from the report, the last reopen or the last escalation
            start = max(m for m in (case["reported_at"], case["reopened_at"], case["escalated_at"]) if m)
        else:
            start = case["entered_at"] or case["reported_at"]
        at = reminder_due(calendar, start, deadline)
        if now >= at:
            orders.append(Order(case["id"], "remind", state, key, at))
    if state in SUPERVISE.sources and now >= deadline:
        escalate = (TOWN, town_of(case["grid_code"])) if state == "dispatched" and \
            case["owner_key"] == GRID_CHIEF else None
        limit = (case["time_limit"], case["time_unit"]) if case["time_limit"] else None
        step = escalated_step(calendar, limit, case["deadline"], now) if escalate else None
        orders.append(Order(case["id"], "supervise", state, key, deadline, escalate, step_deadline=step))
    return orders


def unit_due(part: dict[str, Any], calendar: WorkingCalendar, now: datetime) -> list[Order]:
    """The orders due at ``now`` on an assisting unit's own deadline (a row of the sweep's assist candidates):
    the reminder at 80 % of the working time from its dispatch to its deadline, the order once it has passed."""
    deadline, key, unit = part["deadline"], part["deadline_key"], part["unit_key"]
    orders = []
    at = reminder_due(calendar, part["dispatched_at"], deadline)
    if now >= at:
        orders.append(Order(part["id"], "assist_remind", part["state"], key, at, unit=unit))
    if now >= deadline:
        orders.append(Order(part["id"], "assist_supervise", part["state"], key, deadline, unit=unit))
    return orders


def sweep(engine: Engine, calendar: WorkingCalendar, now: datetime | None = None) -> list[dict[str, Any]]:
    """Append every order due at ``now`` (default: the clock) that is not written yet; return the events written.

    One transaction per case (and per assisting unit); a case locked by someone else is skipped (the next
    sweep takes it).
    """
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        span = open_span(conn)  # the months of the open cases (spatial/store/partitions.py)
        cases = [dict(r) for r in conn.execute(_CANDIDATES, {"states": list(STATES), **span}).mappings()]
        parts = [dict(r) for r in conn.execute(_ASSIST_CANDIDATES, {"states": list(ASSIST_STATES),
                                                                     "unit_states": list(ASSIST_OPEN),
                                                                     **span}).mappings()]
    written: list[dict[str, Any]] = []
    batches = [due(case, calendar, now) for case in cases] + [unit_due(part, calendar, now) for part in parts]
    for orders in batches:
        if orders:
            with engine.begin() as conn:
                written.extend(write(conn, orders, now))
    return written


def write(conn: Connection, orders: list[Order], now: datetime) -> list[dict[str, Any]]:
    """Append the orders of one case in ``conn``'s transaction (the case as it stands decides); the events written."""
    case_id = orders[0].case_id
    row = one_case(conn, _LOCK, case_id)
    if row is None:
        return []  # locked by an action or another worker: the next sweep sees it as it will be then
    _, trail = load_trail(conn, case_id)
    written = []
    for order in orders:
        if order.unit is not None:
            part = conn.execute(_UNIT, {"case": case_id, "unit": order.unit}).mappings().first()
            if part is None or (part["state"] not in ASSIST_OPEN or part["deadline_key"] != order.deadline
                                or not legal(trail, BY_ACTION[order.kind], order.unit)):
                continue  # the unit's part (or the case) moved since it was read
            data: dict[str, Any] = {"unit": order.unit, "deadline": order.deadline,
                                    "due": order.due.astimezone(UTC).isoformat()}
            escalate = None
        else:
            if (row["state"], row["deadline_key"]) != (order.step, order.deadline) or \
                    not legal(trail, BY_ACTION[order.kind]):
                continue  # the case moved since it was read
            data = {"step": order.step, "deadline": order.deadline, "due": order.due.astimezone(UTC).isoformat()}
            escalate = order.escalate_to if row["owner_key"] == GRID_CHIEF else None
            if escalate:
                data["escalated_to"] = {"key": escalate[0], "area": escalate[1]}
                data["step_deadline_after"] = _iso(order.step_deadline)
                data["overall_deadline"] = _iso(row["deadline"])
        event_id = _insert_once(conn, {"case": case_id, "at": now, "kind": order.kind, "actor": ACTOR,
                                       "role": SYSTEM, "note": NOTES[order.kind],
                                       "data": json.dumps(data, ensure_ascii=False)})
        if event_id is None:
            continue  # written already (by another worker, or before a crash)
        changes = "revision = revision + 1"
        if escalate:
            changes += ", owner_key = :key, owner_area_code = :area, step_deadline = :step"
        conn.execute(text(f'UPDATE "case" SET {changes} WHERE id = :id AND reported_at = :month'),  # locked
                     {"id": case_id, "month": row["reported_at"], "key": escalate and escalate[0],
                      "area": escalate and escalate[1], "step": order.step_deadline})
        record(conn, Actor(ACTOR, SYSTEM), f"case.{order.kind}", target=str(case_id),
               detail={"event": event_id, **data})
        written.append({"id": event_id, "case_id": case_id, "at": now, "kind": order.kind, "state": None,
                        "actor": ACTOR, "role": SYSTEM, "data": data})
    return written
