"""The inbox (``GET /api/v1/inbox``, issue 17 item 4): the cases the caller must act on now.

Derived from the transition table (spatial/cases/workflow.py), not kept as a second list: a case is in a
caller's inbox when the table lets the caller take one of the actions that move a case on (``DUTIES``) on it
now — the case's state is one of the action's sources, its trail check holds, the caller's role may take it
and acts for the case's unit where the action needs that, an approval is not of the caller's own request —
and the case lies in the caller's scope (``case_clause``, as every read). The other actions of the table
(void, return, extend, suspend, resume, reopen, evaluate) are taken when someone chooses to, never waited for,
so they put no case in an inbox.

The table's trail checks are Python over a replayed trail (``workflow.CHECKS``); here they have a SQL form
built from the same marks (``workflow._MARKS``: which event kinds set and which clear each mark): "the latest
event among those that set or clear the mark is one that sets it". tests/integration/test_inbox.py holds the
two forms together: on every case of its world, for every account, the SQL inbox holds exactly the cases on
which ``workflow.allowed`` lists a duty.

Pages are in due order — the step deadline, else the overall deadline (the demo's history has none), oldest
first, cases without either last — walked with a keyset cursor on ``ix_case_open_due`` (migration 0015);
``counts`` gives the whole inbox by state for the console's badges. Each case carries the reminders and
supervision orders standing for the caller (``orders``): the lead's current step's to an account acting for
the case's unit, an assisting unit's own ones to an account acting for that unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    ColumnElement,
    Connection,
    and_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import aliased

from spatial.access.principal import Principal
from spatial.access.scope import acts_for_unit, case_clause, unit_clause
from spatial.cases import joint
from spatial.cases.public import case_public
from spatial.cases.rows import TRAIL, case_rows, trail_window
from spatial.cases.workflow import (
    _MARKS,
    ASSIST_CHECKS,
    BY_ACTION,
    OPEN_STATES,
    Event,
    Trail,
    Transition,
    allowed,
    replay,
)
from spatial.errors import InvalidParameterError
from spatial.reference.cache import ReferenceCache
from spatial.store.models import Case, CaseEvent, CaseKey, CaseUnit
from spatial.store.partitions import open_between, open_span

# The actions a case waits for (each a row of workflow.TABLE); the table says who may take each, and when.
DUTIES = ("verify", "register", "dispatch", "accept", "handle", "check", "rework", "close", "approve", "refuse",
          "assist_accept", "assist_handle")
MAX_PAGE = 200
# Each trail check as the mark it reads (workflow.Trail), whether the mark must be set, and the value it needs.
CHECK_MARKS: dict[str, tuple[str, bool, str | None]] = {
    "not_verified": ("verified", False, None), "not_accepted": ("accepted", False, None),
    "not_checked": ("check", False, None), "check_passed": ("check", True, "pass"),
    "check_failed": ("check", True, "fail"), "not_evaluated": ("evaluated", False, None),
}
_CURSOR = re.compile(r"^(-|[0-9]{1,16})\.([0-9]{1,19})$")
DUE = func.coalesce(Case.step_deadline, Case.deadline)


@dataclass
class InboxQuery:
    """One page of an inbox: at most ``limit`` cases after the ``after`` cursor, optionally of one state."""

    limit: int = 50
    after: str | None = None
    state: str | None = None


def _kinds(mark: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The event kinds that set ``mark`` and those that clear it (workflow._MARKS; a check sets its result)."""
    setters = tuple(k for k, marks in _MARKS.items() if marks.get(mark))
    clearers = tuple(k for k, marks in _MARKS.items() if mark in marks and not marks[mark])
    return (("check",) if mark == "check" else setters), clearers


def _in_trail(event: Any) -> ColumnElement[bool]:
    """``event`` (an alias of CaseEvent correlated with Case) lies between the case's trail bounds (case_key,
    migration 0034): read per case as the sub-select runs, so that only the months of its trail are probed
    (run-time pruning); unknown bounds (NULL) read every month."""
    def bound(column: Any, default: str) -> ColumnElement[Any]:
        known = select(column).where(CaseKey.id == Case.id).correlate(Case).scalar_subquery()
        return func.coalesce(known, literal(default).cast(TIMESTAMP(timezone=True)))
    return event.at.between(bound(CaseKey.trail_from, "-infinity"), bound(CaseKey.trail_to, "infinity"))


def check_sql(check: str) -> ColumnElement[bool]:
    """The SQL form of the trail check ``check`` (``workflow.CHECKS``) on the ``case`` row."""
    if check == "pending":
        return Case.pending_action.is_not(None)
    mark, must_be_set, value = CHECK_MARKS[check]
    setters, clearers = _kinds(mark)
    event, later = aliased(CaseEvent), aliased(CaseEvent)
    superseded = exists().where(later.case_id == Case.id, _in_trail(later), later.kind.in_(setters + clearers),
                                tuple_(later.at, later.id) > tuple_(event.at, event.id)).correlate(Case, event)
    conditions = [event.case_id == Case.id, _in_trail(event), event.kind.in_(setters), ~superseded]
    if value is not None:
        conditions.append(event.data["result"].astext == value)
    is_set = exists().where(*conditions).correlate(Case)
    return is_set if must_be_set else ~is_set


def _not_own_request(login: str) -> ColumnElement[bool]:
    """The pending request was not made by ``login`` (a second person approves, workflow._decide_request)."""
    event = aliased(CaseEvent)
    requester = (select(event.actor).where(event.case_id == Case.id, _in_trail(event), event.kind == "request")
                 .order_by(event.at.desc(), event.id.desc()).limit(1).correlate(Case).scalar_subquery())
    return func.coalesce(requester, "") != login


def duty_clause(transition: Transition, by: Principal) -> ColumnElement[bool]:
    """Where ``by`` may take ``transition`` now (``workflow.legal`` and ``may_take`` as SQL)."""
    if by.role not in transition.roles:
        return false()
    parts: list[ColumnElement[bool]] = [Case.state.in_(transition.sources)]
    if transition.assist:  # joint handling: an assisting unit the caller acts for waits for this step
        unit = aliased(CaseUnit)
        parts.append(exists().where(
            unit.case_id == Case.id, unit.reported_at == Case.reported_at,  # the case's month (migration 0035)
            unit.state.in_(ASSIST_CHECKS[str(transition.check)]),
            unit_clause(by, owner_key=unit.unit_key, owner_area=unit.unit_area, special_codes=Case.special_grid_codes),
        ).correlate(Case))
        return and_(*parts)
    if transition.unit:
        parts.append(unit_clause(by, owner_key=Case.owner_key, owner_area=Case.owner_area_code,
                                 special_codes=Case.special_grid_codes))
    if transition.check:
        parts.append(check_sql(transition.check))
    if transition.action in ("approve", "refuse"):
        parts.append(_not_own_request(by.login))
    return and_(*parts)


def inbox_clause(by: Principal, span: dict[str, datetime]) -> ColumnElement[bool]:
    """The cases in ``by``'s inbox: open, in its scope, and waiting for a duty it may take. ``span``: the report
    times of every open case (``spatial.store.partitions.open_span``), as constants: the months outside it are
    not planned."""
    duties = [duty_clause(BY_ACTION[action], by) for action in DUTIES]
    return and_(open_between(Case.reported_at, span), Case.state.in_(OPEN_STATES),
                case_clause(by, grid_code=Case.grid_code, special_codes=Case.special_grid_codes,
                            owner_key=Case.owner_key, assist_keys=Case.assist_keys),
                or_(*duties))


def duties_now(trail: Trail, by: Principal, unit: bool, assisting: list[str] | None = None) -> list[str]:
    """The duties ``by`` may take on a case with this trail now (Python's form of ``inbox_clause``;
    ``assisting``: the case's assisting units ``by`` acts for)."""
    own = trail.requested_by == by.login
    return [a for a in allowed(trail, by.role, unit, assisting or ())
            if a in DUTIES and not (own and a in ("approve", "refuse"))]


def _cursor(value: str) -> tuple[datetime | None, int]:
    match = _CURSOR.match(value)
    if match is None:
        raise InvalidParameterError("after must be the cursor of a previous page (its 'next')", parameter="after")
    due = None if match[1] == "-" else datetime.fromtimestamp(int(match[1]) / 1_000_000, UTC)
    return due, int(match[2])


def _next(due: datetime | None, case_id: int) -> str:
    micros = "-" if due is None else str(round(due.timestamp() * 1_000_000))
    return f"{micros}.{case_id}"


def page_query(by: Principal, q: InboxQuery, span: dict[str, datetime]):
    """The ids and due times of one page of ``by``'s inbox, in due order (one extra row: is there more)."""
    if not 1 <= q.limit <= MAX_PAGE:
        raise InvalidParameterError(f"limit must be between 1 and {MAX_PAGE}", parameter="limit")
    query = select(Case.id, DUE.label("due")).where(inbox_clause(by, span))
    if q.state is not None:
        query = query.where(Case.state == q.state)
    if q.after is not None:
        due, case_id = _cursor(q.after)
        if due is None:
            query = query.where(DUE.is_(None), Case.id > case_id)
        else:
            query = query.where(or_(tuple_(DUE, Case.id) > tuple_(literal(due), literal(case_id)), DUE.is_(None)))
    return query.order_by(DUE, Case.id).limit(q.limit + 1)


def counts(conn: Connection, by: Principal, span: dict[str, datetime]) -> dict[str, int]:
    """The whole inbox of ``by`` by state (the console's badges)."""
    rows = conn.execute(select(Case.state, func.count()).where(inbox_clause(by, span)).group_by(Case.state))
    return {state: n for state, n in rows}


def inbox(conn: Connection, ref: ReferenceCache, q: InboxQuery, *, by: Principal) -> dict[str, Any]:
    """One page of ``by``'s inbox: each case with its due time and the actions ``by`` may take on it now,
    the cursor of the next page (None at the end), and the counts by state."""
    if q.state is not None and q.state not in OPEN_STATES:
        raise InvalidParameterError(f"state must be an open state: {', '.join(OPEN_STATES)}", parameter="state")
    span = open_span(conn)
    rows = conn.execute(page_query(by, q, span)).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    ids = [r.id for r in rows]
    cases = {r["id"]: dict(r) for r in case_rows(conn, ids)}
    window = trail_window(conn, ids)  # their events' months (spatial/cases/rows.py)
    trails = _trails(conn, ids, window)
    orders = _orders(conn, ids, sorted({case["reported_at"] for case in cases.values()}), window)
    personal = by.sees_personal_data()
    items = []
    for row in rows:
        case = cases[row.id]
        unit = acts_for_unit(by, case["owner_key"], case["owner_area_code"], case["special_grid_codes"])
        assisting = joint.assisting(by, trails[row.id], case["special_grid_codes"])
        item: dict[str, Any] = dict(case_public(ref, case, with_reporter=personal))
        item["due"] = row.due
        item["workflow"] = {"revision": case["revision"], "step_deadline": case["step_deadline"],
                            "pending_action": case["pending_action"],
                            "allowed_actions": allowed(trails[row.id], by.role, unit, assisting)}
        item["duties"] = duties_now(trails[row.id], by, unit, assisting)
        item["orders"] = [o for o in orders.get(row.id, ()) if (unit and o["unit"] is None) or o["unit"] in assisting]
        items.append(item)
    total = counts(conn, by, span)
    return {"cases": items, "next": _next(rows[-1].due, rows[-1].id) if more else None,
            "counts": total, "total": sum(total.values())}


_ORDERS = text(f"""
SELECT e.case_id, e.kind, e.at, e.data ->> 'deadline' AS deadline, e.data ->> 'due' AS due,
       e.data ->> 'unit' AS unit
FROM case_event e JOIN "case" c ON c.id = e.case_id
LEFT JOIN case_unit u ON u.case_id = e.case_id AND u.reported_at = c.reported_at AND u.unit_key = e.data ->> 'unit'
  AND u.reported_at = ANY(CAST(:months AS timestamptz[]))
WHERE e.case_id = ANY(:ids) AND e.{TRAIL} AND c.reported_at = ANY(CAST(:months AS timestamptz[])) AND (
  (e.kind IN ('remind', 'supervise') AND e.data ->> 'step' = c.state
   AND e.data ->> 'deadline' = to_char(c.step_deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  OR (e.kind IN ('assist_remind', 'assist_supervise') AND u.state IN ('dispatched', 'accepted')
   AND e.data ->> 'deadline' = to_char(u.deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
ORDER BY e.case_id, e.at, e.id
""")


def _orders(conn: Connection, ids: list[int], months: list[datetime], window: dict[str, Any],
            ) -> dict[int, list[dict[str, Any]]]:
    """The reminders and supervision orders standing on each case of ``ids``: the lead's for its current step
    and deadline (``unit`` None), each assisting unit's for its own deadline while its part is open (the
    scheduler's keys, spatial/cases/scheduler.py)."""
    orders: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for r in conn.execute(_ORDERS, {"ids": ids, "months": months, **window}).mappings():
            orders.setdefault(r["case_id"], []).append(
                {"kind": r["kind"], "at": r["at"], "due": r["due"], "deadline": r["deadline"], "unit": r["unit"]})
    return orders


def _trails(conn: Connection, ids: list[int], window: dict[str, Any]):
    """The replayed trail of each case of ``ids`` (one query)."""
    events: dict[int, list[Event]] = {i: [] for i in ids}
    if ids:
        for r in conn.execute(text("SELECT case_id, id, kind, state_after, actor, role, data FROM case_event"
                                   f" WHERE case_id = ANY(:ids) AND {TRAIL} ORDER BY case_id, at, id"),
                              {"ids": ids, **window}).mappings():
            events[r["case_id"]].append(Event(r["kind"], r["state_after"], r["actor"], r["role"], r["data"], r["id"]))
    return {i: replay(e) for i, e in events.items()}
