"""The workflow's transition table (spatial/cases/workflow.py): the README shows it as it is, and its pure
rules hold — every action's sources and targets are states, approvals go through a request and a second
person, checks guard close and rework."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from spatial.cases.action_rules import escalated_deadline
from spatial.cases.workflow import (
    BY_ACTION,
    CHECKS,
    TABLE,
    Event,
    NewEvent,
    Trail,
    allowed,
    decide,
    markdown_table,
    replay,
)
from spatial.errors import ForbiddenError, IllegalTransitionError
from spatial.reference.calendar import WorkingCalendar
from spatial.store.models.cases import EVENT_KINDS, STATES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_the_table_as_the_code_has_it() -> None:
    assert markdown_table() in README.read_text(encoding="utf-8")


@pytest.mark.parametrize("transition", TABLE, ids=lambda t: t.action)
def test_every_row_names_known_states_kinds_and_checks(transition) -> None:
    assert set(transition.sources) <= set(STATES)
    assert transition.target is None or transition.target in STATES
    assert transition.action in EVENT_KINDS
    assert transition.check is None or transition.check in CHECKS


def _trail(*kinds_states: tuple[str, str | None], **data) -> Trail:
    return replay(Event(kind, state, "someone", None, data.get(kind)) for kind, state in kinds_states)


HANDLED = (("report", "reported"), ("register", "registered"), ("dispatch", "dispatched"), ("handle", "handled"))


def test_close_needs_a_passing_check_and_rework_a_failing_one() -> None:
    trail = _trail(*HANDLED)
    assert allowed(trail, "dispatcher", False) == ["check"]
    passed = _trail(*HANDLED, ("check", None), check={"result": "pass"})
    assert allowed(passed, "dispatcher", False) == ["close"]
    failed = _trail(*HANDLED, ("check", None), check={"result": "fail"})
    assert allowed(failed, "dispatcher", False) == ["rework"]
    with pytest.raises(IllegalTransitionError) as refused:
        decide(failed, "close", role="dispatcher", login="d", acts_for_unit=False)
    assert refused.value.extra["allowed"] == ["rework"]


def test_an_approval_goes_through_a_request_and_a_second_person() -> None:
    trail = _trail(("report", "reported"))
    [request] = decide(trail, "void", role="dispatcher", login="a", acts_for_unit=False, data={"reason": "r"})
    assert (request.kind, request.state_after, request.data["action"]) == ("request", None, "void")
    pending = replay([Event("report", "reported", "x"), Event("request", None, "a", "dispatcher", request.data, 7)])
    assert pending.pending == "void" and "void" not in allowed(pending, "dispatcher", False)
    with pytest.raises(ForbiddenError):
        decide(pending, "approve", role="dispatcher", login="a", acts_for_unit=False)
    approve, void = decide(pending, "approve", role="dispatcher", login="b", acts_for_unit=False)
    assert (approve.kind, void.kind, void.state_after) == ("approve", "void", "voided")
    assert void.data == {"requested_by": "a", "approved_by": "b", "request": 7}


@pytest.mark.parametrize(("role", "unit", "action"), [
    ("handler", False, "handle"), ("inspector", False, "register"), ("viewer", False, "check"),
    ("grid_chief", False, "accept"), ("dispatcher", True, "handle"),
])
def test_roles_and_units_the_table_does_not_name_are_refused(role, unit, action) -> None:
    trail = _trail(*HANDLED[:3]) if action in ("handle", "accept") else _trail(*HANDLED[:1])
    if action == "check":
        trail = _trail(*HANDLED)
    with pytest.raises(ForbiddenError):
        decide(trail, action, role=role, login="x", acts_for_unit=unit)


def test_system_actions_are_not_offered_over_http() -> None:
    assert {t.action for t in TABLE if not t.http} == {"report", "link", "remind", "supervise",
                                                           "assist_remind", "assist_supervise"}
    assert BY_ACTION["remind"].target is None and BY_ACTION["supervise"].target is None


def test_an_escalated_step_deadline_moves_on_by_each_resumed_suspension() -> None:
    """A resume moves the fresh step deadline an escalation gave by the working time the case spent suspended
    (as it moves the overall deadline); a reopen forgets the escalation."""
    calendar = WorkingCalendar()
    fresh = datetime(2025, 3, 4, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Suzhou
    escalation = Event("return", "registered", "d", data={"escalated_to": {"key": "TOWN"},
                                                          "step_deadline_after": fresh.isoformat()})
    trail = [escalation, Event("dispatch", "dispatched", "d"), Event("suspend", "suspended", "d"),
             NewEvent("resume", "dispatched", {"suspended_s": 3600})]
    assert escalated_deadline(trail[:2], calendar) == fresh
    assert escalated_deadline(trail, calendar) == calendar.after_working_seconds(fresh, 3600) != fresh
    assert escalated_deadline([*trail, Event("reopen", "dispatched", "d")], calendar) is None
