"""Property (hypothesis): random sequences of workflow actions by random accounts, on a real case in PostGIS,
never reach a state the table does not allow, never lose or add an event beyond what an accepted action wrote
(a refused one writes nothing), and the state and pending approval derived from the trail always equal the
stored ones (spatial/cases/workflow.py, spatial/cases/actions.py) — the assisting units of joint handling (协办,
spatial/cases/joint.py) included: their states derived from the trail equal the stored ``case_unit`` rows."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from spatial.access.principal import Principal
from spatial.cases.actions import ActionInput, act, load_trail
from spatial.cases.intake import create_case
from spatial.cases.joint import AssistTarget
from spatial.cases.read import get_case
from spatial.cases.schemas import CASE_CREATE
from spatial.cases.workflow import HTTP_ACTIONS, conformance
from spatial.errors import ForbiddenError, GridlinkError
from spatial.store.models.cases import STATES
from tests.world import DISTRICT, grid_code

PEOPLE = [Principal(1, "p.disp.a", "dispatcher", DISTRICT), Principal(2, "p.disp.b", "dispatcher", DISTRICT),
          Principal(3, "p.insp", "inspector", DISTRICT), Principal(4, "p.chief", "grid_chief", grid_code(1, 1, 2)),
          Principal(5, "p.town", "handler", "TOWN"), Principal(6, "p.admin", "admin", "*"),
          Principal(7, "p.viewer", "viewer", DISTRICT), Principal(8, "p.san", "handler", "SANITATION")]
STEPS = st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(HTTP_ACTIONS), st.integers(0, 20),
                           st.sampled_from([True, True, True, False]), st.sampled_from([True, True, True, False]),
                           st.booleans()), min_size=10, max_size=40)


def _body(action: str, passed: bool) -> ActionInput:
    """A body that gives ``action`` what it needs (or, half the time for a check, a failing result)."""
    data: dict = {"verify": {"result": passed}, "check": {"result": "pass" if passed else "fail"},
                  "extend": {"amount": 1, "unit": "working_days"}, "evaluate": {"satisfaction": "satisfied"}
                  }.get(action, {})
    assist = [AssistTarget(key="SANITATION")] if action == "dispatch" and passed else None  # joint handling
    return ActionInput(note="n", reason="r", data=data, assist=assist)


def _offered(conn, reference, case_id: int, person: Principal) -> list[str]:
    """The actions GET /api/v1/cases/{id} offers ``person`` (none outside its scope)."""
    try:
        return get_case(conn, reference, case_id, by=person)["workflow"]["allowed_actions"]
    except ForbiddenError:
        return []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_random_actions_keep_the_trail_and_the_state_in_step(world_engine, no_cases, reference, steps) -> None:
    with world_engine.connect() as conn:
        conn.begin()  # rolled back when the connection closes: nothing of an example stays
        report = CASE_CREATE.validate_python({"category": "E010101", "source": "inspector",
                                            "location": {"type": "Point", "coordinates": [120.06, 31.17]}})
        case_id = create_case(conn, reference, report, actor=None)[0]["id"]
        count = 1
        for person, action, pick, smart, fresh, passed in steps:
            revision = conn.execute(text('SELECT revision FROM "case" WHERE id = :i'), {"i": case_id}).scalar_one()
            if smart:  # most steps take one of the actions the person may take now, to get deep into the loop
                offered = _offered(conn, reference, case_id, person)
                action = offered[pick % len(offered)] if offered else action
            body = _body(action, passed)
            try:
                with conn.begin_nested():
                    outcome = act(conn, reference, case_id, action, body, by=person,
                                  expected_revision=revision if fresh else revision - 1)
            except GridlinkError:  # refused (403, 409, 412, 422 …): nothing may have been written
                outcome = None
            events, trail = load_trail(conn, case_id)
            count += len(outcome.events) if outcome else 0
            assert len(events) == count
            assert conformance(e for _, e in events) is None
            stored = conn.execute(text('SELECT state, pending_action, revision FROM "case" WHERE id = :i'),
                                  {"i": case_id}).one()
            assert stored.state in STATES
            assert (trail.state, trail.pending) == (stored.state, stored.pending_action)
            assert stored.revision == revision + (outcome is not None)
            units = dict(conn.execute(text("SELECT unit_key, state FROM case_unit WHERE case_id = :i"),
                                      {"i": case_id}).all())
            assert units == {key: unit["state"] for key, unit in trail.assists.items()}
            if outcome is not None and action.startswith("assist"):
                event(f"took {action}")
            event(f"reached {stored.state}")  # --hypothesis-show-statistics: how far the examples went
