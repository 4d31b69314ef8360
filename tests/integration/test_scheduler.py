"""The reminder / supervision scheduler (issue 17 items 2, 3), on the known-answer world's real PostGIS.

Known answers on a clock the test sets (``now`` injected, never the wall clock's): a reminder at 80 % of the
working time, a supervision order once overdue that escalates a grid-first case to the town, each once. The
database refuses a doubled order by itself. Two sweeps at once write each order once. And the acceptance test:
a ``gridlink worker`` killed with SIGKILL in the middle of a run, then two workers started at once: each due
reminder and order exists exactly once, none lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from spatial.access.principal import Principal
from spatial.cases import scheduler
from spatial.cases.actions import ActionInput, act, load_trail
from spatial.cases.joint import AssistTarget
from spatial.cases.workflow import conformance
from tests.world import DISTRICT, fresh_accounts

WEST = [120.06, 31.17]  # town 001, grid 001001002: exposed garbage there is grid-first (its grid chief)
TOWN_CODE = f"{DISTRICT}001"
ADMIN = Principal(0, "test-admin", "admin", "*")
# Tuesday 3 March 2099, a working day, on the clock the test sets (after the report the test makes, so the
# trail stays in order): reported at 08:30 Suzhou time with 4 working hours, the deadline is 14:00
# (08:30–12:00, 13:30–14:00) = 06:00 UTC; 80 % of it (3 h 12 min) is used at 11:42 = 03:42 UTC.
T_REPORTED = datetime(2099, 3, 3, 0, 30, tzinfo=UTC)
T_DEADLINE = datetime(2099, 3, 3, 6, 0, tzinfo=UTC)
T_REMIND = datetime(2099, 3, 3, 3, 42, tzinfo=UTC)
# Cases made now over HTTP and moved onto that day: reported 08:30, the step runs out at 17:30 (09:30 UTC).
DEADLINE = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
KEY = "2025-03-04T09:30:00.000000Z"


def _act(engine, reference, case_id: int, action: str, now: datetime, given: ActionInput | None = None) -> None:
    """An action by an admin at ``now`` (the clock the test sets), through the workflow's own ``act``."""
    with engine.begin() as conn:
        revision = conn.execute(text('SELECT revision FROM "case" WHERE id = :id'), {"id": case_id}).scalar_one()
        act(conn, reference, case_id, action, given or ActionInput(), by=ADMIN, expected_revision=revision, now=now)


def _reported_on_the_known_day(client, engine) -> int:
    """A grid-first case reported over HTTP, its limit then moved onto the known day (reported ``T_REPORTED``,
    deadline ``T_DEADLINE``)."""
    reply = client.post("/api/v1/cases", json={"category": "E010101", "source": "inspector",
                                               "location": {"type": "Point", "coordinates": WEST}})
    assert reply.status_code == 201, reply.text
    case_id = reply.json()["id"]
    with engine.begin() as conn:
        conn.execute(text('UPDATE "case" SET reported_at = :r, deadline = :d WHERE id = :id'),
                     {"r": T_REPORTED, "d": T_DEADLINE, "id": case_id})
    return case_id


def _last_audit(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


def _orders(engine, case_ids: list[int]) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT case_id, kind, data ->> 'step', data ->> 'deadline' FROM case_event"
            " WHERE kind IN ('remind', 'supervise') AND case_id = ANY(:ids) ORDER BY case_id, id"), {"ids": case_ids})]


def test_reminder_at_80_percent_then_supervision_escalates_to_the_town(client, world_engine, reference) -> None:
    audit_from = _last_audit(world_engine)
    case_id = _reported_on_the_known_day(client, world_engine)
    for minutes, action in ((5, "register"), (10, "dispatch"), (20, "accept")):  # the grid chief's unit took it
        _act(world_engine, reference, case_id, action, T_REPORTED + timedelta(minutes=minutes))
    calendar = reference.calendar

    assert scheduler.sweep(world_engine, calendar, T_REMIND - timedelta(microseconds=1)) == []
    written = scheduler.sweep(world_engine, calendar, T_REMIND)
    assert [(e["case_id"], e["kind"], e["data"]) for e in written] == [
        (case_id, "remind", {"step": "dispatched", "deadline": "2099-03-03T06:00:00.000000Z",
                             "due": "2099-03-03T03:42:00+00:00"})]
    assert scheduler.sweep(world_engine, calendar, T_DEADLINE - timedelta(microseconds=1)) == []  # once

    written = scheduler.sweep(world_engine, calendar, T_DEADLINE)
    # Escalated to the town with a fresh step deadline: the category's 4 working hours from 14:00 Suzhou time
    # (14:00–17:30, then 08:30–09:00 the next day) = Wednesday 09:00 = 01:00 UTC; the overall deadline stays.
    assert [(e["kind"], e["data"]) for e in written] == [
        ("supervise", {"step": "dispatched", "deadline": "2099-03-03T06:00:00.000000Z",
                       "due": "2099-03-03T06:00:00+00:00", "escalated_to": {"key": "TOWN", "area": TOWN_CODE},
                       "step_deadline_after": "2099-03-04T01:00:00+00:00",
                       "overall_deadline": "2099-03-03T06:00:00+00:00"})]
    assert scheduler.sweep(world_engine, calendar, T_DEADLINE + timedelta(microseconds=1)) == []  # once

    case = client.get(f"/api/v1/cases/{case_id}").json()
    assert case["state"] == "dispatched" and case["owner"]["key"] == "TOWN" and case["owner"]["area"] == TOWN_CODE
    assert case["workflow"]["step_deadline"] == "2099-03-04T01:00:00+00:00"
    assert case["deadline"] == "2099-03-03T06:00:00+00:00"
    assert case["workflow"]["revision"] == 6  # report, register, dispatch, accept, remind, supervise
    assert "accept" in case["workflow"]["allowed_actions"]  # the town's unit accepts anew
    _act(world_engine, reference, case_id, "accept", T_DEADLINE + timedelta(minutes=10))
    case = client.get(f"/api/v1/cases/{case_id}").json()
    assert case["workflow"]["step_deadline"] == "2099-03-04T01:00:00+00:00"  # acting keeps the fresh step

    # The town's step has its own reminder (80 % of its 4 working hours from the escalation: 17:12 Suzhou time,
    # 09:12 UTC) and its own order once past, which escalates nothing further (the town is no grid chief).
    town_remind, town_deadline = datetime(2099, 3, 3, 9, 12, tzinfo=UTC), datetime(2099, 3, 4, 1, 0, tzinfo=UTC)
    assert scheduler.sweep(world_engine, calendar, town_remind - timedelta(microseconds=1)) == []
    written = scheduler.sweep(world_engine, calendar, town_remind)
    assert [(e["kind"], e["data"]) for e in written] == [
        ("remind", {"step": "dispatched", "deadline": "2099-03-04T01:00:00.000000Z",
                    "due": "2099-03-03T09:12:00+00:00"})]
    written = scheduler.sweep(world_engine, calendar, town_deadline)
    assert [(e["kind"], e["data"]) for e in written] == [
        ("supervise", {"step": "dispatched", "deadline": "2099-03-04T01:00:00.000000Z",
                       "due": "2099-03-04T01:00:00+00:00"})]
    assert scheduler.sweep(world_engine, calendar, T_DEADLINE + timedelta(days=30)) == []  # once, however late

    case = client.get(f"/api/v1/cases/{case_id}").json()
    assert case["owner"]["key"] == "TOWN" and case["workflow"]["step_deadline"] == "2099-03-04T01:00:00+00:00"
    assert [(e["kind"], e["state"], e["actor"], e["role"], e["at"]) for e in case["history"][1:]] == [
        ("register", "registered", "test-admin", "admin", "2099-03-03T00:35:00+00:00"),
        ("dispatch", "dispatched", "test-admin", "admin", "2099-03-03T00:40:00+00:00"),
        ("accept", None, "test-admin", "admin", "2099-03-03T00:50:00+00:00"),
        ("remind", None, "scheduler", "system", "2099-03-03T03:42:00+00:00"),
        ("supervise", None, "scheduler", "system", "2099-03-03T06:00:00+00:00"),
        ("accept", None, "test-admin", "admin", "2099-03-03T06:10:00+00:00"),
        ("remind", None, "scheduler", "system", "2099-03-03T09:12:00+00:00"),
        ("supervise", None, "scheduler", "system", "2099-03-04T01:00:00+00:00")]
    with world_engine.connect() as conn:
        audit = conn.execute(text("SELECT actor, role, action, detail ->> 'step' FROM audit_log"
                                  " WHERE target = :t AND actor = 'scheduler' AND id > :a ORDER BY id"),
                             {"t": str(case_id), "a": audit_from}).all()
        events, _ = load_trail(conn, case_id)
    assert [tuple(r) for r in audit] == [("scheduler", "system", "case.remind", "dispatched"),
                                         ("scheduler", "system", "case.supervise", "dispatched")] * 2
    assert conformance(e for _, e in events) is None  # the trail reads as made through the table


def test_an_overdue_registered_case_is_supervised_without_reminder_or_escalation(client, world_engine,
                                                                                  reference) -> None:
    case_id = _reported_on_the_known_day(client, world_engine)
    _act(world_engine, reference, case_id, "register", T_REPORTED + timedelta(minutes=5))
    step = datetime(2099, 3, 3, 1, 35, tzinfo=UTC)  # registered → 1 working hour to dispatch: 09:35 Suzhou time
    assert scheduler.sweep(world_engine, reference.calendar, step - timedelta(microseconds=1)) == []  # no reminder
    written = scheduler.sweep(world_engine, reference.calendar, step)
    assert [(e["kind"], e["data"]["step"], e["data"]["deadline"], "escalated_to" in e["data"]) for e in written] == [
        ("supervise", "registered", "2099-03-03T01:35:00.000000Z", False)]
    assert client.get(f"/api/v1/cases/{case_id}").json()["owner"]["key"] == "GRID_CHIEF"


def _dispatched_case(client) -> int:
    """A grid-first case reported, registered and dispatched over HTTP now (to its grid chief)."""
    reply = client.post("/api/v1/cases", json={"category": "E010101", "source": "inspector",
                                               "location": {"type": "Point", "coordinates": WEST}})
    assert reply.status_code == 201, reply.text
    case_id = reply.json()["id"]
    for action in ("register", "dispatch"):
        etag = client.get(f"/api/v1/cases/{case_id}").headers["etag"]
        answer = client.post(f"/api/v1/cases/{case_id}/actions/{action}", json={}, headers={"If-Match": etag})
        assert answer.status_code == 200, answer.text
    return case_id


def _copies(client, engine, n: int) -> list[int]:
    """``n`` dispatched grid-first cases long overdue: one made over HTTP, its limit moved onto the known day,
    copied with its trail in SQL."""
    first = _dispatched_case(client)
    with engine.begin() as conn:
        conn.execute(text('UPDATE "case" SET reported_at = :r, deadline = :d, step_deadline = :d WHERE id = :id'),
                     {"r": T_REPORTED, "d": DEADLINE, "id": first})
        columns = list(conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'case' AND column_name <> 'id'"
            " ORDER BY ordinal_position")).scalars())
        names = ", ".join(f'"{c}"' for c in columns)
        values = names.replace('"case_no"', "left(case_no, 8) || lpad(CAST(90000000 + g AS text), 8, '0')")
        ids = list(conn.execute(text(
            f'INSERT INTO "case" ({names}) SELECT {values} FROM "case", generate_series(2, :n) AS g WHERE id = :id'
            " RETURNING id"), {"n": n, "id": first}).scalars())
        conn.execute(text(
            "INSERT INTO case_event (case_id, at, kind, state_after, actor, role, note, data)"
            " SELECT c.id, e.at, e.kind, e.state_after, e.actor, e.role, e.note, e.data"
            " FROM case_event e, unnest(CAST(:ids AS bigint[])) AS c(id) WHERE e.case_id = :id ORDER BY c.id, e.id"),
            {"ids": ids, "id": first})
    return [first, *ids]


def test_the_database_refuses_a_doubled_order(client, world_engine, reference) -> None:
    (case_id,) = _copies(client, world_engine, 1)
    assert len(scheduler.sweep(world_engine, reference.calendar, DEADLINE)) == 2
    row = {"c": case_id, "d": json.dumps({"step": "dispatched", "deadline": KEY})}
    with pytest.raises(IntegrityError, match="uq_case_event_order"), world_engine.begin() as conn:
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role, data)"
                          " VALUES (:c, now(), 'remind', 'someone', 'system', CAST(:d AS jsonb))"), row)
    with pytest.raises(IntegrityError, match="order_keys"), world_engine.begin() as conn:  # no key: no order
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role, data)"
                          " VALUES (:c, now(), 'remind', 'someone', 'system', NULL)"), row)


def test_two_sweeps_at_once_write_each_order_once(client, world_engine, reference) -> None:
    cases = _copies(client, world_engine, 60)
    results: list[list] = []

    def run() -> None:
        results.append(scheduler.sweep(world_engine, reference.calendar, DEADLINE))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run()  # whatever a sweep skipped (a case the other one held) the next one writes
    written = sorted((e["case_id"], e["kind"]) for batch in results for e in batch)
    assert written == sorted((c, k) for c in cases for k in ("remind", "supervise"))
    assert len(_orders(world_engine, cases)) == 2 * len(cases)


def _worker(url: str) -> subprocess.Popen:
    env = {**os.environ, "GRIDLINK_DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--every", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _wait(engine, cases: list[int], until, processes: list[subprocess.Popen], bound_s: float = 180) -> int:
    """Poll the number of orders on ``cases`` until ``until(count)``; fail if a worker died, or after bound_s
    (a bound on a broken run, not a speed threshold)."""
    stop = time.monotonic() + bound_s
    while True:
        count = len(_orders(engine, cases))
        if until(count):
            return count
        for process in processes:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < stop, f"{count} orders after {bound_s} s"
        time.sleep(0.02)


def test_a_killed_worker_and_two_restarted_ones_write_each_order_exactly_once(client, world_engine) -> None:
    audit_from = _last_audit(world_engine)
    cases = _copies(client, world_engine, 600)  # each overdue: a reminder and an escalating order, 1,200 in all
    expected = sorted((c, k, "dispatched", KEY) for c in cases for k in ("remind", "supervise"))
    url = world_engine.url.render_as_string(hide_password=False)
    first = _worker(url)
    try:
        seen = _wait(world_engine, cases, lambda n: n > 0, [first])
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # in the middle of its run: no clean shutdown
        first.wait()
    partial = len(_orders(world_engine, cases))
    assert 0 < seen <= partial < len(expected), "the kill did not land in the middle of a run"

    workers = [_worker(url), _worker(url)]
    try:
        _wait(world_engine, cases, lambda n: n >= len(expected), workers)
        time.sleep(2.5)  # more ticks of both workers, which find nothing left to write
        for process in workers:
            assert process.poll() is None
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(timeout=30)
    assert sorted(_orders(world_engine, cases)) == expected  # each exactly once: none lost, none doubled
    with world_engine.connect() as conn:
        owners = conn.execute(text('SELECT DISTINCT owner_key, owner_area_code FROM "case" WHERE id = ANY(:ids)'),
                              {"ids": cases}).all()
        audits = conn.execute(text("SELECT count(*) FROM audit_log WHERE actor = 'scheduler' AND id > :a"
                                   " AND CAST(target AS bigint) = ANY(:ids)"), {"ids": cases, "a": audit_from}
                              ).scalar_one()
    assert [tuple(o) for o in owners] == [("TOWN", TOWN_CODE)]  # every one escalated
    assert audits == len(expected)  # the killed transaction left no audit row without its event


# Joint handling: dispatched at 08:40 Suzhou time (00:40 UTC) with two assisting units. SANITATION has 2 working
# hours of its own: deadline 10:40 (02:40 UTC), 80 % (96 min) used at 10:16 (02:16 UTC). LIGHTING has the case's
# deadline, 14:00 (06:00 UTC): 230 working minutes from its dispatch (08:40–12:00, 13:30–14:00), 80 % (184 min)
# used at 11:44 (03:44 UTC) — two minutes after the lead's own reminder, which counts from the report.
T_DISPATCH = T_REPORTED + timedelta(minutes=10)
SAN_REMIND, SAN_DEADLINE = datetime(2099, 3, 3, 2, 16, tzinfo=UTC), datetime(2099, 3, 3, 2, 40, tzinfo=UTC)
LIGHTS_REMIND = datetime(2099, 3, 3, 3, 44, tzinfo=UTC)
SAN_KEY, CASE_KEY = "2099-03-03T02:40:00.000000Z", "2099-03-03T06:00:00.000000Z"
SCHED_ACCOUNTS = {"sc.chief": ("grid_chief", f"{TOWN_CODE}001002"), "sc.san": ("handler", "SANITATION"),
                  "sc.lights": ("handler", "LIGHTING"), "sc.parks": ("handler", "PARKS")}


def _orders_in_inbox(client, token: str) -> dict[int, list[tuple]]:
    reply = client.get("/api/v1/inbox", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    return {c["id"]: [(o["kind"], o["unit"], o["deadline"], o["due"]) for o in c["orders"]]
            for c in reply.json()["cases"]}


def test_assisting_units_get_their_own_reminders_and_orders_once_in_their_inbox(client, world_engine,
                                                                                 reference) -> None:
    tokens = fresh_accounts(world_engine, SCHED_ACCOUNTS, "a long enough password")
    audit_from = _last_audit(world_engine)
    case_id = _reported_on_the_known_day(client, world_engine)
    _act(world_engine, reference, case_id, "register", T_REPORTED + timedelta(minutes=5))
    _act(world_engine, reference, case_id, "dispatch", T_DISPATCH, ActionInput(assist=[
        AssistTarget(key="SANITATION", amount=2, unit="working_hours"), AssistTarget(key="LIGHTING")]))
    _act(world_engine, reference, case_id, "assist_accept", T_DISPATCH + timedelta(minutes=20),
         ActionInput(data={"unit": "SANITATION"}))  # accepted, still open: its deadline still runs
    calendar = reference.calendar

    assert scheduler.sweep(world_engine, calendar, SAN_REMIND - timedelta(microseconds=1)) == []
    written = scheduler.sweep(world_engine, calendar, SAN_REMIND)
    assert [(e["case_id"], e["kind"], e["data"]) for e in written] == [
        (case_id, "assist_remind", {"unit": "SANITATION", "deadline": SAN_KEY, "due": "2099-03-03T02:16:00+00:00"})]
    assert scheduler.sweep(world_engine, calendar, SAN_DEADLINE - timedelta(microseconds=1)) == []  # once
    written = scheduler.sweep(world_engine, calendar, SAN_DEADLINE)
    assert [(e["kind"], e["data"]) for e in written] == [
        ("assist_supervise", {"unit": "SANITATION", "deadline": SAN_KEY, "due": "2099-03-03T02:40:00+00:00"})]
    written = scheduler.sweep(world_engine, calendar, LIGHTS_REMIND - timedelta(microseconds=1))
    assert [(e["kind"], e["data"].get("unit")) for e in written] == [("remind", None)]  # the lead's, at 03:42
    written = scheduler.sweep(world_engine, calendar, LIGHTS_REMIND)
    assert [(e["kind"], e["data"].get("unit")) for e in written] == [("assist_remind", "LIGHTING")]

    # Each unit finds its own orders in its inbox, the lead its own; another department neither case nor order.
    assert _orders_in_inbox(client, tokens["sc.san"]) == {case_id: [
        ("assist_remind", "SANITATION", SAN_KEY, "2099-03-03T02:16:00+00:00"),
        ("assist_supervise", "SANITATION", SAN_KEY, "2099-03-03T02:40:00+00:00")]}
    assert _orders_in_inbox(client, tokens["sc.lights"]) == {case_id: [
        ("assist_remind", "LIGHTING", CASE_KEY, "2099-03-03T03:44:00+00:00")]}
    assert _orders_in_inbox(client, tokens["sc.chief"]) == {case_id: [
        ("remind", None, CASE_KEY, "2099-03-03T03:42:00+00:00")]}
    assert _orders_in_inbox(client, tokens["sc.parks"]) == {}

    # The lead hands in; the case is handled (assisting units still act then): LIGHTING's order follows.
    _act(world_engine, reference, case_id, "accept", T_DEADLINE - timedelta(minutes=30))
    _act(world_engine, reference, case_id, "handle", T_DEADLINE - timedelta(minutes=20), ActionInput(note="已清理"))
    written = scheduler.sweep(world_engine, calendar, T_DEADLINE)
    assert [(e["kind"], e["data"].get("unit"), e["data"]["deadline"]) for e in written] == [
        ("assist_supervise", "LIGHTING", CASE_KEY)]
    written = scheduler.sweep(world_engine, calendar, T_DEADLINE + timedelta(days=30))
    assert [(e["kind"], e["data"].get("unit")) for e in written] == [("supervise", None)]  # the lead's check step
    assert scheduler.sweep(world_engine, calendar, T_DEADLINE + timedelta(days=60)) == []

    with world_engine.connect() as conn:
        events, _ = load_trail(conn, case_id)
        orders = conn.execute(text(
            "SELECT kind, data ->> 'unit', data ->> 'deadline' FROM case_event WHERE case_id = :c"
            " AND kind LIKE 'assist_%' AND kind NOT IN ('assist_accept', 'assist_handle') ORDER BY id"),
            {"c": case_id}).all()
        audit = conn.execute(text("SELECT action, detail ->> 'unit' FROM audit_log WHERE target = :t"
                                  " AND actor = 'scheduler' AND id > :a ORDER BY id"),
                             {"t": str(case_id), "a": audit_from}).all()
    assert [tuple(r) for r in orders] == [("assist_remind", "SANITATION", SAN_KEY),
                                          ("assist_supervise", "SANITATION", SAN_KEY),
                                          ("assist_remind", "LIGHTING", CASE_KEY),
                                          ("assist_supervise", "LIGHTING", CASE_KEY)]
    assert [tuple(r) for r in audit] == [
        ("case.assist_remind", "SANITATION"), ("case.assist_supervise", "SANITATION"), ("case.remind", None),
        ("case.assist_remind", "LIGHTING"), ("case.assist_supervise", "LIGHTING"), ("case.supervise", None)]
    assert conformance(e for _, e in events) is None  # the trail reads as made through the table

    # The database refuses a doubled order of an assisting unit, and one without its key.
    row = {"c": case_id, "d": json.dumps({"unit": "SANITATION", "deadline": SAN_KEY})}
    with pytest.raises(IntegrityError, match="uq_case_event_assist_order"), world_engine.begin() as conn:
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role, data)"
                          " VALUES (:c, now(), 'assist_remind', 'someone', 'system', CAST(:d AS jsonb))"), row)
    with pytest.raises(IntegrityError, match="assist_order_keys"), world_engine.begin() as conn:
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role, data)"
                          " VALUES (:c, now(), 'assist_supervise', 'someone', 'system', '{}')"), row)


def test_a_returned_grid_first_case_gets_a_fresh_step_deadline_at_the_town(client, world_engine,
                                                                            reference) -> None:
    chief = Principal(0, "sc.chief.return", "grid_chief", f"{TOWN_CODE}001002")
    case_id = _reported_on_the_known_day(client, world_engine)  # overall deadline 14:00 Suzhou time (06:00 UTC)
    _act(world_engine, reference, case_id, "register", T_REPORTED + timedelta(minutes=5))
    _act(world_engine, reference, case_id, "dispatch", T_REPORTED + timedelta(minutes=10))
    with world_engine.begin() as conn:  # the grid chief cannot solve it: asks to return it (09:30 Suzhou time)
        act(conn, reference, case_id, "return", ActionInput(reason="需街道协调"), by=chief, expected_revision=3,
            now=datetime(2099, 3, 3, 1, 30, tzinfo=UTC))
    # Approved at 10:00 Suzhou time (02:00 UTC): escalated to the town then, with the category's 4 working
    # hours from then (10:00–12:00, 13:30–15:30) = 15:30 = 07:30 UTC, past the overall deadline, which stays.
    _act(world_engine, reference, case_id, "approve", datetime(2099, 3, 3, 2, 0, tzinfo=UTC))
    case = client.get(f"/api/v1/cases/{case_id}").json()
    returned = case["history"][-1]
    assert (returned["kind"], returned["state"], returned["at"]) == ("return", "registered",
                                                                     "2099-03-03T02:00:00+00:00")
    assert {k: returned["data"][k] for k in ("escalated_to", "step_deadline_before", "step_deadline_after",
                                             "overall_deadline")} == {
        "escalated_to": {"key": "TOWN", "area": TOWN_CODE}, "step_deadline_before": "2099-03-03T06:00:00+00:00",
        "step_deadline_after": "2099-03-03T07:30:00+00:00", "overall_deadline": "2099-03-03T06:00:00+00:00"}
    assert case["workflow"]["step_deadline"] == "2099-03-03T03:00:00+00:00"  # registered: 1 working hour

    _act(world_engine, reference, case_id, "dispatch", datetime(2099, 3, 3, 2, 30, tzinfo=UTC))  # to the town
    case = client.get(f"/api/v1/cases/{case_id}").json()
    assert case["owner"]["key"] == "TOWN" and case["state"] == "dispatched"
    assert case["workflow"]["step_deadline"] == "2099-03-03T07:30:00+00:00"
    assert case["deadline"] == "2099-03-03T06:00:00+00:00"

    # Its reminder counts from the escalation: 80 % of 4 working hours from 10:00 = 14:42 Suzhou (06:42 UTC).
    # (The overall deadline passing at 06:00 UTC is no step deadline of the town's: no order then.)
    calendar = reference.calendar
    assert scheduler.sweep(world_engine, calendar, datetime(2099, 3, 3, 6, 41, 59, tzinfo=UTC)) == []
    written = scheduler.sweep(world_engine, calendar, datetime(2099, 3, 3, 7, 30, tzinfo=UTC))
    assert [(e["kind"], e["data"]) for e in written] == [
        ("remind", {"step": "dispatched", "deadline": "2099-03-03T07:30:00.000000Z",
                    "due": "2099-03-03T06:42:00+00:00"}),
        ("supervise", {"step": "dispatched", "deadline": "2099-03-03T07:30:00.000000Z",
                       "due": "2099-03-03T07:30:00+00:00"})]
    with world_engine.connect() as conn:
        events, _ = load_trail(conn, case_id)
    assert conformance(e for _, e in events) is None


def test_two_sweeps_at_once_write_each_assisting_units_order_once(client, world_engine, reference) -> None:
    cases = []
    for _ in range(12):
        case_id = _reported_on_the_known_day(client, world_engine)
        _act(world_engine, reference, case_id, "register", T_REPORTED + timedelta(minutes=5))
        _act(world_engine, reference, case_id, "dispatch", T_DISPATCH, ActionInput(assist=[
            AssistTarget(key="SANITATION", amount=2, unit="working_hours"), AssistTarget(key="LIGHTING")]))
        cases.append(case_id)
    results: list[list] = []

    def run() -> None:
        results.append(scheduler.sweep(world_engine, reference.calendar, T_DEADLINE))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run()  # whatever a sweep skipped (a case the other one held) the next one writes
    written = sorted((e["case_id"], e["kind"], e["data"].get("unit")) for batch in results for e in batch)
    kinds, names = ("assist_remind", "assist_supervise"), ("LIGHTING", "SANITATION")
    units = [(c, k, u) for c in cases for k in kinds for u in names]
    expected = sorted(units + [(c, k, None) for c in cases for k in ("remind", "supervise")])
    assert written == expected  # each once, whichever sweep wrote it
    with world_engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM case_event WHERE case_id = ANY(:ids)"
                                   " AND kind IN ('assist_remind', 'assist_supervise')"), {"ids": cases}).scalar_one()
    assert stored == 4 * len(cases)
