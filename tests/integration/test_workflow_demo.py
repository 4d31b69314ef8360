"""The demo's generated history reads as if it had been made through the workflow's transition table
(spatial/cases/workflow.py, issue 17 item 1): every trail of the small demo replays through ``TABLE`` — each
event legal where it stands, by a role the table allows, void and suspension approved by a second person,
handling by the case's own unit — and the state and pending approval derived from the trail are the stored
ones."""

from __future__ import annotations

from itertools import groupby

from sqlalchemy import text

from spatial.cases.workflow import Event, conformance, replay

UNIT_KINDS = ("accept", "handle", "return", "extend")


def test_every_demo_trail_replays_through_the_table(small_demo) -> None:
    with small_demo.connect() as conn:
        cases = {r.id: r for r in conn.execute(text(
            'SELECT id, state, pending_action, owner_key, owner_area_code FROM "case"'))}
        rows = conn.execute(text(
            "SELECT case_id, id, kind, state_after, actor, role, data FROM case_event ORDER BY case_id, at, id"))
        trails = {case_id: [Event(r.kind, r.state_after, r.actor, r.role, r.data, r.id) for r in group]
                  for case_id, group in groupby(rows, key=lambda r: r.case_id)}
    assert len(cases) > 500 and set(trails) == set(cases)
    kinds = {e.kind for events in trails.values() for e in events}
    assert {"request", "approve", "void", "suspend", "rework", "close", "evaluate", "link"} <= kinds
    problems = {}
    for case_id, events in trails.items():
        case = cases[case_id]
        problem = conformance(events) or _unit_problem(events, case)
        trail = replay(events)
        if (trail.state, trail.pending) != (case.state, case.pending_action):
            problem = f"derived {trail.state}/{trail.pending}, stored {case.state}/{case.pending_action}"
        if problem:
            problems[case_id] = problem
    assert not problems, f"{len(problems)} trails do not fit the table, e.g. {list(problems.items())[:5]}"


def _unit_problem(events: list[Event], case) -> str | None:
    """The demo names its actors ``role:unit``: handling must come from the unit the case was dispatched to."""
    unit = case.owner_area_code if case.owner_key == "GRID_CHIEF" else case.owner_key
    for event in events:
        if event.kind in UNIT_KINDS and event.actor.partition(":")[2] != unit:
            return f"{event.kind} by {event.actor}, not by the case's unit {unit}"
    return None


def test_a_trail_that_skips_the_table_is_caught() -> None:
    """The replay can fail: a void without approval, a close without a passing check, an approval by its
    own requester."""
    report = Event("report", "reported", "inspector:1", "inspector")
    void = Event("void", "voided", "dispatcher:a", "dispatcher")
    assert "approval" in (conformance([report, void]) or "")
    register = Event("register", "registered", "dispatcher:a", "dispatcher")
    dispatch = Event("dispatch", "dispatched", "dispatcher:a", "dispatcher")
    handle = Event("handle", "handled", "handler:X", "handler")
    close = Event("close", "closed", "dispatcher:a", "dispatcher")
    assert "check_passed" in (conformance([report, register, dispatch, handle, close]) or "")
    request = Event("request", None, "dispatcher:a", "dispatcher", {"action": "void"})
    approve = Event("approve", None, "dispatcher:a", "dispatcher", {"action": "void"})
    assert "own requester" in (conformance([report, request, approve, void]) or "")
    approve_b = Event("approve", None, "dispatcher:b", "dispatcher", {"action": "void"})
    assert conformance([report, request, approve_b, void]) is None
