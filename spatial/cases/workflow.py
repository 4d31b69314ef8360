"""The case workflow: one explicit transition table (state × action → next state, roles, approval, check).

The closed loop of SPEC "Events and cases" — report → verify and register (核实立案) → dispatch (派遣) →
accept and handle (处置反馈) → check and close (核查结案) → evaluate (考核评价), with void (作废), return to the
dispatcher (回退), extension (延期), suspension (挂账), rework (返工) and reopen — is the table ``TABLE``
below and nothing else: the HTTP actions (api/routes/workflow.py), the CLI (``gridlink cases act``), the
replay of the demo's history (tests/integration/test_workflow_demo.py) and the README's table
(``markdown_table``, checked by tests/unit/test_workflow_table.py) all read it.

This module is pure (no database): ``replay`` derives what the trail of a case says (its state, the pending
approval, whether the handling was accepted and checked), ``decide`` turns one action of one caller into the
events to append, or refuses it. spatial/cases/actions.py runs ``decide`` inside the case's transaction.

Joint handling (协办, spatial/cases/joint.py): ``dispatch`` may name assisting units beside the lead unit (the
case's owner); each takes ``assist_accept`` and ``assist_handle`` for itself (``assist`` rows: the caller acts
for an assisting unit of the case, ``data.unit`` names which when it acts for several). The trail keeps each
assisting unit's state (``Trail.assists``); the case's own state never waits for them: it closes when the
lead's work passes the check.

Approvals: an action marked ``approval`` (void, return, extend, suspend) first appends a ``request`` event and
leaves the state as it is; a second account (an ``APPROVERS`` role, never the requester) then ``approve``s —
appending ``approve`` and the action's own event — or ``refuse``s. A request lapses when the state changes
before it is decided; one request is pending at a time (``case.pending_action``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spatial.errors import ForbiddenError, IllegalTransitionError

UNIT_ROLES = ("handler", "owner", "grid_chief")  # roles that act for the unit a case is dispatched to
DISPATCH_ROLES = ("dispatcher", "admin")
APPROVERS = ("dispatcher", "admin")
SYSTEM = "system"  # intake, the scheduler (reminders, supervision orders) and the reporter's callback
OPEN_STATES = ("reported", "registered", "dispatched", "handled", "suspended")
CHECK_RESULTS = ("pass", "fail")


@dataclass(frozen=True)
class Transition:
    """One row of the table: ``action`` from any of ``sources`` leads to ``target`` (None: the state stays).

    ``roles`` may take it; with ``unit`` only an account acting for the unit the case is dispatched to (and
    admins); with ``assist`` only an account acting for an assisting unit of the case (and admins), for that
    unit, whose state must be one of the check's (``ASSIST_CHECKS``);
    ``approval``: a second person must approve it; ``check``: a condition on the trail
    (``CHECKS``); ``http``: False for actions only the system takes (intake, the scheduler).
    """

    action: str
    sources: tuple[str, ...]
    target: str | None
    roles: tuple[str, ...]
    unit: bool = False
    approval: bool = False
    check: str | None = None
    http: bool = True
    summary: str = ""
    assist: bool = False


TABLE: tuple[Transition, ...] = (
    Transition("report", (), "reported", (SYSTEM,), http=False, summary="a report becomes a case (intake)"),
    Transition("link", ("reported",), "voided", (SYSTEM,), http=False,
               summary="a duplicate is linked to its open original (intake)"),
    Transition("verify", ("reported",), None, ("inspector", "dispatcher", "admin"), check="not_verified",
               summary="on-site check of a public or hotline report; data.result true/false"),
    Transition("register", ("reported",), "registered", DISPATCH_ROLES, summary="立案"),
    Transition("void", ("reported", "registered"), "voided", DISPATCH_ROLES, approval=True, summary="作废"),
    Transition("dispatch", ("registered",), "dispatched", DISPATCH_ROLES,
               summary="to the assigned unit, or another one with a reason (target)"),
    Transition("accept", ("dispatched",), None, (*UNIT_ROLES, "admin"), unit=True, check="not_accepted",
               summary="the unit takes the case"),
    Transition("return", ("dispatched",), "registered", UNIT_ROLES, unit=True, approval=True,
               summary="回退 to the dispatcher; a grid chief's return escalates to the town"),
    Transition("extend", ("dispatched",), None, UNIT_ROLES, unit=True, approval=True,
               summary="延期: data.amount, data.unit move the deadline"),
    Transition("suspend", ("dispatched",), "suspended", DISPATCH_ROLES, approval=True, summary="挂账"),
    Transition("resume", ("suspended",), "dispatched", DISPATCH_ROLES,
               summary="the deadline moves by the working time suspended"),
    Transition("handle", ("dispatched",), "handled", (*UNIT_ROLES, "admin"), unit=True,
               summary="处置反馈: note, data.photos"),
    Transition("assist_accept", ("dispatched", "handled"), None, (*UNIT_ROLES, "admin"), assist=True,
               check="assist_dispatched", summary="协办: an assisting unit takes its part (data.unit)"),
    Transition("assist_handle", ("dispatched", "handled"), None, (*UNIT_ROLES, "admin"), assist=True,
               check="assist_accepted", summary="协办 feedback of an assisting unit: note, data.photos"),
    Transition("check", ("handled",), None, ("inspector", "dispatcher", "admin"), check="not_checked",
               summary="核查 on site: data.result pass/fail"),
    Transition("rework", ("handled",), "dispatched", DISPATCH_ROLES, check="check_failed",
               summary="返工: back to the unit"),
    Transition("close", ("handled",), "closed", DISPATCH_ROLES, check="check_passed", summary="结案"),
    Transition("evaluate", ("closed",), None, (*DISPATCH_ROLES, SYSTEM), check="not_evaluated",
               summary="the reporter's satisfaction from the callback"),
    Transition("reopen", ("closed",), "registered", DISPATCH_ROLES, summary="back to dispatch"),
    Transition("approve", OPEN_STATES, None, APPROVERS, check="pending",
               summary="a second person approves the pending request"),
    Transition("refuse", OPEN_STATES, None, APPROVERS, check="pending",
               summary="a second person refuses the pending request"),
    # The scheduler (issue 17 item 3) appends these; they never change the state.
    Transition("remind", ("dispatched",), None, (SYSTEM,), http=False, summary="提醒 at 80 % of a time limit"),
    Transition("supervise", ("registered", "dispatched", "handled"), None, (SYSTEM,), http=False,
               summary="督办 once overdue"),
    # ... and these for an assisting unit's own deadline (joint handling: ``data.unit`` names it).
    Transition("assist_remind", ("dispatched", "handled"), None, (SYSTEM,), http=False, assist=True,
               check="assist_open", summary="提醒 to an assisting unit at 80 % of its own time limit"),
    Transition("assist_supervise", ("dispatched", "handled"), None, (SYSTEM,), http=False, assist=True,
               check="assist_open", summary="督办 of an assisting unit past its own deadline"),
)
BY_ACTION: dict[str, Transition] = {t.action: t for t in TABLE}
HTTP_ACTIONS = tuple(t.action for t in TABLE if t.http)
# When the step a state waits for runs out, counted on the working calendar from entering the state; None:
# the overall deadline (``case.deadline``) is the step's; states not listed have no step deadline.
STEP_LIMITS: dict[str, tuple[int, str] | None] = {
    "reported": (2, "working_hours"), "registered": (1, "working_hours"), "dispatched": None,
    "handled": (4, "working_hours"),
}


@dataclass
class Trail:
    """What a case's events say: its state and where the current step stands."""

    state: str | None = None
    pending: str | None = None  # the action waiting for approval
    requested_by: str | None = None
    request_id: int | None = None
    verified: bool = False
    accepted: bool = False
    check: str | None = None  # the check's result since the last handling
    evaluated: bool = False
    events: int = 0
    # Joint handling: each assisting unit's key → {"area", "state"} (dispatched, accepted, handled, withdrawn).
    assists: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """One event as the workflow reads it (a ``case_event`` row)."""

    kind: str
    state_after: str | None
    actor: str
    role: str | None = None
    data: Mapping[str, Any] | None = None
    id: int | None = None


@dataclass
class NewEvent:
    """An event ``decide`` asks to append."""

    kind: str
    state_after: str | None
    data: dict[str, Any] = field(default_factory=dict)


# What each kind does to the trail besides moving the state (``check`` sets its result from its data).
_MARKS: dict[str, dict[str, Any]] = {
    "verify": {"verified": True}, "accept": {"accepted": True}, "dispatch": {"accepted": False, "check": None},
    "rework": {"accepted": False, "check": None}, "handle": {"check": None}, "close": {"evaluated": False},
    "evaluate": {"evaluated": True},
}


def apply(trail: Trail, event: Event) -> Trail:
    """The trail after ``event`` (in place, returned for chaining)."""
    trail.events += 1
    changed = event.state_after is not None and event.state_after != trail.state
    if event.state_after is not None:
        trail.state = event.state_after
    kind, data = event.kind, event.data or {}
    if kind == "request":
        trail.pending, trail.requested_by, trail.request_id = str(data.get("action")), event.actor, event.id
    elif kind in ("approve", "refuse") or changed:
        trail.pending = trail.requested_by = trail.request_id = None
    for name, value in _MARKS.get(kind, {}).items():
        setattr(trail, name, value)
    if kind == "check":
        trail.check = str(data.get("result"))
    elif kind == "supervise" and data.get("escalated_to"):
        trail.accepted = False  # escalated by the scheduler: the town's unit accepts anew
    _assist(trail, event)
    return trail


ASSIST_STEPS = {"assist_accept": "accepted", "assist_handle": "handled"}
# The states an assisting unit must be in for each assist action (the ``check`` of its row).
ASSIST_CHECKS: dict[str, tuple[str, ...]] = {
    "assist_dispatched": ("dispatched",), "assist_accepted": ("accepted",), "assist_open": ("dispatched", "accepted")}


def _assist(trail: Trail, event: Event) -> None:
    """The assisting units' states after ``event``: a dispatch adds those it names, their own actions move
    them, a void withdraws those still at work."""
    data = event.data or {}
    if event.kind == "dispatch":
        for unit in data.get("assist") or ():
            if isinstance(unit, dict) and "key" in unit:
                trail.assists.setdefault(str(unit["key"]), {"area": unit.get("area"), "state": "dispatched"})
    elif event.kind in ASSIST_STEPS and str(data.get("unit")) in trail.assists:
        trail.assists[str(data["unit"])]["state"] = ASSIST_STEPS[event.kind]
    elif event.state_after == "voided":
        for unit in trail.assists.values():
            if unit["state"] in ("dispatched", "accepted"):
                unit["state"] = "withdrawn"


def replay(events: Iterable[Event]) -> Trail:
    """Derive the trail of a case from its events, oldest first."""
    trail = Trail()
    for event in events:
        apply(trail, event)
    return trail


CHECKS = {
    "not_verified": lambda t: not t.verified,
    "not_accepted": lambda t: not t.accepted,
    "not_checked": lambda t: t.check is None,
    "check_passed": lambda t: t.check == "pass",
    "check_failed": lambda t: t.check == "fail",
    "not_evaluated": lambda t: not t.evaluated,
    "pending": lambda t: t.pending is not None,
    # Joint handling: some assisting unit is in the state (``legal`` asks it of the unit acted for).
    "assist_dispatched": lambda t: any(u["state"] == "dispatched" for u in t.assists.values()),
    "assist_accepted": lambda t: any(u["state"] == "accepted" for u in t.assists.values()),
    "assist_open": lambda t: any(u["state"] in ("dispatched", "accepted") for u in t.assists.values()),
}


def legal(trail: Trail, transition: Transition, unit: str | None = None) -> bool:
    """Whether the trail's state and checks allow ``transition`` (whoever asks; for an assist action, for the
    assisting unit ``unit``)."""
    if trail.state not in transition.sources:
        return False
    if transition.assist:
        return unit in trail.assists and trail.assists[unit]["state"] in ASSIST_CHECKS[str(transition.check)]
    if transition.approval and trail.pending is not None:
        return False  # one request at a time
    return transition.check is None or CHECKS[transition.check](trail)


def may_take(transition: Transition, role: str, acts_for_unit: bool, assisting: Collection[str] = ()) -> bool:
    """Whether an account of ``role`` (acting for the case's unit or not, for these assisting units) may take
    ``transition``."""
    if role not in transition.roles:
        return False
    if transition.assist:
        return bool(assisting) or role == "admin"
    return not transition.unit or acts_for_unit or role == "admin"


def allowed(trail: Trail, role: str, acts_for_unit: bool, assisting: Collection[str] = ()) -> list[str]:
    """The HTTP actions this caller (acting for the case's unit or not, for these assisting units) may take
    on the case now."""
    return [t.action for t in TABLE if t.http and may_take(t, role, acts_for_unit, assisting)
            and (any(legal(trail, t, u) for u in assisting) if t.assist else legal(trail, t))]


def decide(trail: Trail, action: str, *, role: str, login: str, acts_for_unit: bool,
           data: Mapping[str, Any] | None = None, assisting: Collection[str] = ()) -> list[NewEvent]:
    """The events that ``action`` by this caller appends, or the refusal.

    Raises:
        ForbiddenError: the caller's role (or unit) may not take the action at all.
        IllegalTransitionError: the action is not allowed in the case's state (``allowed`` lists what is).
    """
    payload = dict(data or {})
    permit(trail, action, role=role, acts_for_unit=acts_for_unit, assisting=assisting, unit=payload.get("unit"))
    transition = BY_ACTION[action]
    if action in ("approve", "refuse"):
        return _decide_request(trail, action, login, payload)
    if transition.approval:
        return [NewEvent("request", None, {**payload, "action": action})]
    return [NewEvent(action, transition.target, payload)]


def permit(trail: Trail, action: str, *, role: str, acts_for_unit: bool, assisting: Collection[str] = (),
           unit: str | None = None) -> None:
    """Refuse ``action`` by this caller now (ForbiddenError, IllegalTransitionError), as ``decide`` would;
    an assist action is for the assisting unit ``unit``, which must be one of ``assisting``."""
    transition = BY_ACTION[action]
    if not may_take(transition, role, acts_for_unit, assisting):
        if transition.assist:
            raise ForbiddenError(f"{action}: you act for no assisting unit of this case", action=action)
        who = f"{role} accounts" + (" of the case's unit" if transition.unit and role in transition.roles else "")
        raise ForbiddenError(f"{who} may not {action} a case (needs {', '.join(transition.roles)}"
                             f"{' acting for its unit' if transition.unit else ''})", action=action)
    if transition.assist and unit is not None and unit not in assisting:
        raise ForbiddenError(f"you do not act for {unit}, or it does not assist on this case", action=action,
                             unit=unit)
    if not legal(trail, transition, unit):
        raise IllegalTransitionError(_why(trail, transition, unit), state=trail.state, pending=trail.pending,
                                     allowed=allowed(trail, role, acts_for_unit, assisting))


def _decide_request(trail: Trail, action: str, login: str, payload: dict[str, Any]) -> list[NewEvent]:
    if trail.requested_by == login:
        raise ForbiddenError(f"{trail.pending} needs a second person: its requester cannot {action} it",
                             pending=trail.pending)
    pending = BY_ACTION[str(trail.pending)]
    decision = NewEvent(action, None, {**payload, "action": pending.action, "request": trail.request_id})
    if action == "refuse":
        return [decision]
    return [decision, NewEvent(pending.action, pending.target,
                               {"requested_by": trail.requested_by, "approved_by": login,
                                "request": trail.request_id})]


def _why(trail: Trail, transition: Transition, unit: str | None = None) -> str:
    if trail.state not in transition.sources:
        return f"a {trail.state} case cannot take {transition.action} (only {', '.join(transition.sources)})"
    if transition.assist:
        state = trail.assists.get(unit or "", {}).get("state")
        wanted = " or ".join(ASSIST_CHECKS[str(transition.check)])
        return (f"{transition.action} needs an assisting unit that is {wanted}"
                f" ({unit or 'none named'}: {state or 'not assisting'})")
    if transition.approval and trail.pending is not None:
        return f"{trail.pending} is waiting for approval: approve or refuse it first"
    return f"{transition.action} needs {transition.check} (a {trail.state} case)"


def markdown_table() -> str:
    """The table as Markdown, as README.md shows it (tests/unit/test_workflow_table.py keeps them equal)."""
    lines = ["| action | from | to | roles | unit only | approval | check | what |",
             "|---|---|---|---|---|---|---|---|"]
    for t in TABLE:
        unit = "yes" if t.unit else "assisting" if t.assist else ""
        lines.append(f"| `{t.action}`{'' if t.http else ' (system)'} | {', '.join(t.sources) or '—'} | "
                     f"{t.target or '(same)'} | {', '.join(t.roles)} | {unit} | "
                     f"{'yes' if t.approval else ''} | {t.check or ''} | {t.summary} |")
    return "\n".join(lines) + "\n"


def conformance(events: Iterable[Event]) -> str | None:
    """Why a stored trail could not have been made through ``TABLE`` (None when it could): each event legal
    where it stands, taken by a role the table allows, leading to the state the table says; approvals by a
    second person. Used to replay the demo's history and by the property test."""
    trail, effect = Trail(), None
    for n, event in enumerate(events):
        problem = _first_problem(event) if n == 0 else _event_problem(trail, event, effect)
        if problem:
            return f"event {n} ({event.kind} by {event.actor}, {event.role}): {problem}"
        effect = str(trail.pending) if event.kind == "approve" else None
        apply(trail, event)
    return "an approved action was never taken" if effect else None


def _first_problem(event: Event) -> str | None:
    return None if event.kind == "report" and event.state_after == "reported" else "a case starts with its report"


def _event_problem(trail: Trail, event: Event, effect: str | None) -> str | None:
    if effect is not None:
        target = BY_ACTION[effect].target
        return None if event.kind == effect and event.state_after == target else f"approved {effect} not taken"
    kind = str((event.data or {}).get("action")) if event.kind == "request" else event.kind
    transition = BY_ACTION.get(kind)
    if transition is None or (event.kind == "request") != transition.approval:
        return "no such action" if transition is None else "approval skipped or misplaced"
    if event.role not in transition.roles:
        return f"role not allowed (needs {', '.join(transition.roles)})"
    unit = str((event.data or {}).get("unit")) if transition.assist else None
    if not legal(trail, transition, unit):
        return _why(trail, transition, unit)
    if event.kind in ("approve", "refuse") and event.actor == trail.requested_by:
        return "approved by its own requester"
    expected = transition.target if event.kind != "request" else None
    return None if event.state_after == expected else f"leads to {event.state_after}, the table says {expected}"


def may_ever(role: str, action: str) -> bool:
    """Whether an account of ``role`` may take ``action`` on some case (decided before the body is read)."""
    transition = BY_ACTION.get(action)
    return transition is not None and role in transition.roles


def check_role(role: str, action: str) -> None:
    """ForbiddenError unless ``role`` may take ``action`` on some case."""
    if not may_ever(role, action):
        raise ForbiddenError(f"{role} accounts may not {action} cases (needs {', '.join(BY_ACTION[action].roles)})",
                             action=action)
