"""The evaluation's per-case summary (migration 0015, spatial/cases/kpi.py): the figures it gives equal the
figures read from the event trail alone, for every grouping and many periods — on the known-answer history of
test_kpi.py (ends at and just after every event, so the "as of ``to``" rule is crossed case by case), on the
small demo (months, weeks, days, the whole year) and on cases walked through the workflow over HTTP (intake's
duplicate ``link`` rows included); the trigger keeps exactly what the set-based rebuild computes; a wrong
summary row changes the answer (the summary is what is read) unless the case moved on after the period
(then its trail is read), and the rebuild repairs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from spatial.access.principal import Principal
from spatial.cases.kpi import COUNTS, GROUPS, KpiQuery, evaluate
from tests.integration.test_kpi import ASSISTS, END, GRID_A, HISTORY, START, day, insert_history

ADMIN = Principal(0, "kpi.admin", "admin", "*")
FIGURES = ("key", *COUNTS, "score", "grade", "rank")


def figures(report: dict) -> list[tuple]:
    """What an evaluation says, group by group, in its order (names aside)."""
    return [tuple(g[k] for k in FIGURES) for g in report["groups"]]


def assert_parity(conn: Connection, query: KpiQuery, by: Principal = ADMIN) -> dict:
    """The summary's answer equals the trail's for ``query``; return the summary's."""
    summary = evaluate(conn, query, by=by)
    trail = evaluate(conn, query, by=by, trail=True)
    assert figures(summary) == figures(trail), query
    assert summary["totals"] == trail["totals"], query
    return summary


def rebuild(conn: Connection) -> int:
    """Rows the set-based rebuild had to change (0: the trigger kept the summary exactly)."""
    return conn.execute(text("SELECT gridlink_case_kpi_rebuild()")).scalar_one()


@pytest.fixture
def history(world: Connection) -> Connection:
    """The world with test_kpi.py's ``HISTORY`` stored (through the trigger), rolled back afterwards."""
    world.execute(text('TRUNCATE case_photo, case_unit, case_event, "case" RESTART IDENTITY'))
    insert_history(world)
    return world


def test_the_trigger_keeps_what_the_rebuild_computes(history: Connection) -> None:
    assert rebuild(history) == 0
    row = history.execute(text(
        'SELECT kpi_registered_at, kpi_handled_at, kpi_closed_at, kpi_reworks, kpi_through FROM "case" WHERE id = 4'
    )).one()
    assert tuple(row) == (day(4.01), day(7), day(8), 1, day(8))
    voided = history.execute(text('SELECT kpi_voided_at, kpi_state_at, kpi_registered_at FROM "case" WHERE id = 8'))
    assert tuple(voided.one()) == (day(7.1), day(7.1), None)


def _ends(start: datetime) -> list[datetime]:
    """Every event time of ``HISTORY`` after ``start`` and a moment after each: each case's facts change at one
    of them, and ``to`` is exclusive."""
    times = ({day(at) for *_, events in HISTORY for _, at, _ in events} | {day(r) for _, _, _, r, _, _ in HISTORY}
             | {day(at) for _, _, d, a, h in ASSISTS for at in (d, a, h) if at is not None})
    return sorted({t + d for t in times for d in (timedelta(0), timedelta(minutes=7)) if t + d > start})


@pytest.mark.parametrize("start", [day(-28), START, day(9.5)])
def test_parity_on_the_known_history_at_every_event(history: Connection, start: datetime) -> None:
    stale = fresh = 0
    for end in _ends(start):
        for group in ("grid", "department"):
            assert_parity(history, KpiQuery(group, start, end))
        moved_on, kept = history.execute(text(
            'SELECT count(*) FILTER (WHERE kpi_through >= :end), count(*) FILTER (WHERE kpi_through < :end)'
            ' FROM "case" WHERE reported_at >= :start AND reported_at < :end'), {"start": start, "end": end}).one()
        stale, fresh = stale + moved_on, fresh + kept
    assert stale > 0 and fresh > 0  # both sources answered


@pytest.mark.parametrize("group", GROUPS)
def test_parity_by_every_group(history: Connection, group: str) -> None:
    for end in (day(6.5), day(13.005), END, day(32.5)):
        assert_parity(history, KpiQuery(group, START, end))


def test_parity_inside_scopes_and_areas(history: Connection) -> None:
    town = Principal(1, "t", "dispatcher", GRID_A[:9])
    water = Principal(2, "w", "handler", "WATER")
    for end in (day(6.5), END):
        assert_parity(history, KpiQuery("grid", START, end), by=town)
        assert_parity(history, KpiQuery("grid", START, end, area=GRID_A), by=town)
        assert_parity(history, KpiQuery("department", START, end), by=water)


def test_the_summary_is_read_unless_the_case_moved_on(history: Connection) -> None:
    march = KpiQuery("grid", START, END)
    truth = figures(evaluate(history, march, by=ADMIN, trail=True))
    # Case 10 closes on day 32, after March: March reads its trail, a wrong summary row changes nothing.
    history.execute(text('UPDATE "case" SET kpi_reworks = 5 WHERE id = 10'))
    assert figures(evaluate(history, march, by=ADMIN)) == truth
    # Case 1 ended on day 3: March reads its row.
    history.execute(text('UPDATE "case" SET kpi_reworks = 5 WHERE id = 1'))
    wrong = {g["key"]: g for g in evaluate(history, march, by=ADMIN)["groups"]}[GRID_A]
    assert wrong["reworked"] == 2
    assert rebuild(history) == 2
    assert figures(evaluate(history, march, by=ADMIN)) == truth


# -- the small demo: a year of generated history

def _periods(first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    """The whole span, each month, a few weeks and days, and periods that end mid-way."""
    periods = [(first, last + timedelta(seconds=1))]
    month = first
    while month < last:
        periods.append((month, month + timedelta(days=30)))
        month += timedelta(days=30)
    middle = first + (last - first) / 2
    periods += [(middle, middle + timedelta(days=7)), (middle, middle + timedelta(days=1)),
                (first, middle), (middle - timedelta(days=90), middle + timedelta(hours=5)),
                (last - timedelta(days=3), last + timedelta(days=30))]
    return periods


def test_parity_on_the_small_demo(small_demo: Engine) -> None:
    with small_demo.connect() as conn:
        first, last = conn.execute(text('SELECT min(reported_at), max(reported_at) FROM "case"')).one()
        moved_on = 0
        for start, end in _periods(first, last):
            for group in ("grid", "department") if end - start > timedelta(days=31) else GROUPS:
                assert_parity(conn, KpiQuery(group, start, end))
            moved_on += conn.execute(text(
                'SELECT count(*) FROM "case" WHERE reported_at >= :s AND reported_at < :e AND kpi_through >= :e'),
                {"s": start, "e": end}).scalar_one()
        year = evaluate(conn, KpiQuery("department", first, last + timedelta(seconds=1)), by=ADMIN)
        assert year["totals"]["due"] > 100 and year["totals"]["reworked"] > 0 and year["totals"]["voided"] > 0
        assert moved_on > 0
        assert rebuild(conn) == 0  # the builder's one-pass summary is the trail's
        conn.rollback()


# -- cases walked over HTTP

PLACE = {"category": "E010101", "source": "inspector", "location": {"type": "Point", "coordinates": [120.06, 31.17]}}


def _act(client: TestClient, case_id: int, action: str, **body) -> None:
    etag = client.get(f"/api/v1/cases/{case_id}").headers["etag"]
    reply = client.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers={"If-Match": etag})
    assert reply.status_code == 200, reply.text


def _kpi(client: TestClient, start: datetime, end: datetime) -> dict:
    reply = client.get("/api/v1/kpi", params={"group": "grid", "from": start.isoformat(), "to": end.isoformat()})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_parity_for_cases_walked_over_http(client: TestClient, world_engine: Engine) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    walked = client.post("/api/v1/cases", json=PLACE).json()["id"]
    duplicate = client.post("/api/v1/cases", json=PLACE).json()
    assert duplicate["duplicate_of"] == walked  # intake's link row: voided at once
    client.post("/api/v1/cases", json={**PLACE, "category": "E010201"})  # reported only
    for action, body in (("register", {}), ("dispatch", {}), ("handle", {"note": "第一次"}),
                         ("check", {"data": {"result": "fail"}})):
        _act(client, walked, action, **body)
    mid = datetime.now(UTC)
    for action, body in (("rework", {}), ("handle", {"note": "第二次"}), ("check", {"data": {"result": "pass"}}),
                         ("close", {})):
        _act(client, walked, action, **body)
    end = datetime.now(UTC) + timedelta(minutes=1)
    with world_engine.connect() as conn:
        kept = conn.execute(text('SELECT kpi_reworks, kpi_closed_at IS NOT NULL, kpi_through IS NOT NULL'
                                 ' FROM "case" ORDER BY id')).all()
        assert [tuple(r) for r in kept] == [(1, True, True), (0, False, True), (0, False, False)]
        assert rebuild(conn) == 0
        conn.rollback()
        for to, reworked, closed in ((mid, 0, 0), (end, 1, 1)):
            body = _kpi(client, start, to)
            trail = evaluate(conn, KpiQuery("grid", start, to), by=ADMIN, trail=True)
            assert [tuple(g[k] for k in COUNTS) for g in body["groups"]] == [
                tuple(g[k] for k in COUNTS) for g in trail["groups"]]
            assert (body["totals"]["reported"], body["totals"]["registered"], body["totals"]["voided"]) == (3, 1, 1)
            assert (body["totals"]["reworked"], body["totals"]["closed"]) == (reworked, closed)


def test_parity_for_a_joint_case_walked_over_http(client: TestClient, world_engine: Engine) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    case = client.post("/api/v1/cases", json=PLACE).json()["id"]
    _act(client, case, "register")
    _act(client, case, "dispatch", assist=[{"key": "SANITATION"}, {"key": "LIGHTING", "amount": 2,
                                                                    "unit": "working_days"}])
    _act(client, case, "assist_accept", data={"unit": "SANITATION"})
    _act(client, case, "assist_handle", note="环卫已处理", data={"unit": "SANITATION"})
    end = datetime.now(UTC) + timedelta(minutes=1)
    reply = client.get("/api/v1/kpi", params={"group": "department", "from": start.isoformat(),
                                              "to": end.isoformat()})
    assert reply.status_code == 200, reply.text
    units = {g["key"]: g for g in reply.json()["groups"]}
    # SANITATION fed back before its deadline: due, handled on time; LIGHTING's work is open and not yet due.
    assert {k: (units[k]["assisting"], units[k]["assist_due"], units[k]["assist_handled_on_time"])
            for k in ("SANITATION", "LIGHTING")} == {"SANITATION": (1, 1, 1), "LIGHTING": (1, 0, 0)}
    with world_engine.connect() as conn:
        for to in (end, end + timedelta(days=30)):  # a month later LIGHTING's own deadline has passed
            assert_parity(conn, KpiQuery("department", start, to))
        late = {g["key"]: g for g in evaluate(conn, KpiQuery("department", start, end + timedelta(days=30)),
                                                by=ADMIN)["groups"]}["LIGHTING"]
        assert (late["assist_due"], late["assist_handled"]) == (1, 0)
