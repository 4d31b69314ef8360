"""The evaluation's rollup (migration 0022, spatial/cases/kpi_rollup.py): the triggers keep exactly what the
set-based rebuild computes (the known-answer history with assisting units, cases walked over HTTP, joint
handling, truncation); the rollup path answers what the case-by-case path answers for every grouping, many
periods (ends at and just after every event, starts inside a day, whole months, single days) and scopes, on
the known history and on the small demo; the rollup is what is read (a wrong row changes the answer, the
rebuild repairs it); how a period is cut into whole days and months."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from spatial.access.principal import Principal
from spatial.cases.kpi import GROUPS, KpiQuery, evaluate
from spatial.cases.kpi_rollup import one_by_one, window
from spatial.cases.schemas import LOCAL
from tests.integration.test_kpi import END, GRID_A, GRID_B, SCENIC, START, day, insert_history
from tests.integration.test_kpi_summary import PLACE, _act, _ends, figures

ADMIN = Principal(0, "kpi.admin", "admin", "*")
SCOPES = [ADMIN, Principal(1, "t", "dispatcher", GRID_A[:9]), Principal(2, "w", "handler", "WATER"),
          Principal(3, "u", "handler", "URBAN"), Principal(4, "v", "viewer", GRID_B[:12])]


def rebuild(conn: Connection) -> int:
    """Rows the set-based rebuild had to fix (0: the triggers kept the rollup exactly)."""
    return conn.execute(text("SELECT gridlink_kpi_rollup_rebuild()")).scalar_one()


def assert_parity(conn: Connection, query: KpiQuery, by: Principal = ADMIN) -> dict:
    """The rollup's answer equals the case-by-case answer for ``query``; return the rollup's."""
    rolled = evaluate(conn, query, by=by)
    cases = evaluate(conn, query, by=by, rollup=False)
    assert figures(rolled) == figures(cases), (query, by.scope)
    assert rolled["totals"] == cases["totals"], (query, by.scope)
    return rolled


@pytest.fixture
def history(world: Connection) -> Connection:
    """The world with test_kpi.py's history (assisting units included) stored, rolled back afterwards."""
    world.execute(text('TRUNCATE case_photo, case_unit, case_event, "case" RESTART IDENTITY'))
    insert_history(world)
    return world


def test_the_triggers_keep_what_the_rebuild_computes(history: Connection) -> None:
    assert rebuild(history) == 0
    # Case 1 (grid A, reported 2 March, closed on time) and its two assisting units, in the month's rows.
    march = history.execute(text(
        "SELECT unit_key, lead, reported, due, closed_on_time, assisting, assist_due, assist_handled_on_time"
        " FROM kpi_rollup WHERE span = 'm' AND day = '2026-03-01' AND grid_code = :g ORDER BY unit_key, lead"),
        {"g": GRID_A}).all()
    assert [tuple(r) for r in march] == [("GRID_CHIEF", True, 11, 9, 3, 0, 0, 0),
                                         ("URBAN", False, 0, 0, 0, 4, 4, 0),
                                         ("WATER", False, 0, 0, 0, 2, 1, 1)]
    # Moving a case to another unit and voiding an assisting unit's case move their rows.
    history.execute(text("UPDATE \"case\" SET owner_key = 'TOWN' WHERE id = 6"))
    history.execute(text("UPDATE case_unit SET handled_at = :t WHERE case_id = 3"), {"t": day(3.9)})
    history.execute(text("DELETE FROM case_unit WHERE case_id = 9"))
    assert rebuild(history) == 0
    history.execute(text('TRUNCATE case_photo, case_unit, case_event, "case"'))
    assert history.execute(text("SELECT count(*) FROM kpi_rollup")).scalar_one() == 0


def test_a_wrong_row_is_read_and_repaired(history: Connection) -> None:
    march = KpiQuery("grid", START, END)
    truth = figures(evaluate(history, march, by=ADMIN))
    history.execute(text("UPDATE kpi_rollup SET reworked = reworked + 3 WHERE span = 'm' AND day = '2026-03-01'"
                         " AND grid_code = :g AND unit_key = 'GRID_CHIEF' AND lead"), {"g": GRID_A})
    wrong = {g["key"]: g for g in evaluate(history, march, by=ADMIN)["groups"]}[GRID_A]
    assert wrong["reworked"] == 4  # the month's row is what March reads
    assert figures(evaluate(history, march, by=ADMIN, rollup=False)) == truth
    assert rebuild(history) == 1
    assert figures(evaluate(history, march, by=ADMIN)) == truth


@pytest.mark.parametrize("start", [day(-28), START, day(9.5)])
def test_parity_on_the_known_history_at_every_event(history: Connection, start: datetime) -> None:
    inside = 0
    for end in _ends(start):
        for group in ("grid", "department"):
            assert_parity(history, KpiQuery(group, start, end))
        days = window(start, end)
        if days is not None:
            inside += len(one_by_one(history, {"start": start, "end": end, **days.params()})[1])
    assert inside > 0  # the correction of unsettled cases was exercised


@pytest.mark.parametrize("group", GROUPS)
def test_parity_by_every_group_and_scope(history: Connection, group: str) -> None:
    for start, end in ((START, END), (START, day(6.5)), (day(0.3), day(13.005)), (day(-40), day(34)),
                       (day(2), day(3)), (day(29), day(45))):
        for by in SCOPES:
            if by.scope.isdigit() and len(by.scope) > {"district": 6, "town": 9, "community": 12}.get(group, 15):
                continue  # an area scope may not group coarser than itself (403)
            assert_parity(history, KpiQuery(group, start, end), by=by)
    assert_parity(history, KpiQuery(group if group != "district" else "grid", START, END, area=GRID_A[:12]),
                  by=SCOPES[1])


def test_special_grids_are_read_case_by_case(history: Connection) -> None:
    scenic = Principal(5, "s", "grid_chief", SCENIC)
    assert [g["key"] for g in assert_parity(history, KpiQuery("grid", START, END), by=scenic)["groups"]] == [
        "320506002001001"]
    assert_parity(history, KpiQuery("department", START, END, area=SCENIC))


@pytest.mark.parametrize(("start", "end", "expected"), [
    # whole March: one month, no day rows
    (datetime(2026, 3, 1, tzinfo=LOCAL), datetime(2026, 4, 1, tzinfo=LOCAL),
     (date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 1), date(2026, 4, 1))),
    # from inside 15 November to inside 15 November a year later: days of both Novembers around 11 months
    (datetime(2025, 11, 15, 9, 30, tzinfo=LOCAL), datetime(2026, 11, 15, 17, 0, tzinfo=LOCAL),
     (date(2025, 11, 16), date(2026, 11, 15), date(2025, 12, 1), date(2026, 11, 1))),
    # a few days inside a month: no month rows (m0 = m1 = d1)
    (datetime(2026, 3, 3, tzinfo=LOCAL), datetime(2026, 3, 9, 12, tzinfo=LOCAL),
     (date(2026, 3, 3), date(2026, 3, 9), date(2026, 3, 9), date(2026, 3, 9))),
    # UTC instants: local midnight is 16:00 UTC the day before
    (datetime(2026, 2, 28, 16, tzinfo=UTC), datetime(2026, 3, 31, 16, tzinfo=UTC),
     (date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 1), date(2026, 4, 1))),
])
def test_the_window_of_a_period(start: datetime, end: datetime, expected: tuple) -> None:
    days = window(start, end)
    assert days is not None and (days.d0, days.d1, days.m0, days.m1) == expected


def test_a_period_inside_one_day_has_no_window() -> None:
    assert window(datetime(2026, 3, 3, 1, tzinfo=LOCAL), datetime(2026, 3, 3, 23, tzinfo=LOCAL)) is None
    assert window(datetime(2026, 3, 3, 1, tzinfo=LOCAL), datetime(2026, 3, 4, 23, tzinfo=LOCAL)) is None


# -- cases walked over HTTP (intake, duplicates, joint handling): the triggers keep the rollup

def test_cases_walked_over_http_keep_the_rollup(client: TestClient, world_engine: Engine) -> None:
    start = datetime.now(UTC) - timedelta(days=2)
    walked = client.post("/api/v1/cases", json=PLACE).json()["id"]
    client.post("/api/v1/cases", json=PLACE)  # a duplicate: its link row voids it
    for action, body in (("register", {}), ("dispatch", {"assist": [{"key": "SANITATION"}]}),
                         ("assist_accept", {}), ("assist_handle", {"note": "已处理"}), ("handle", {"note": "好了"}),
                         ("check", {"data": {"result": "fail"}}), ("rework", {}), ("handle", {"note": "再次"}),
                         ("check", {"data": {"result": "pass"}}), ("close", {})):
        _act(client, walked, action, **body)
    with world_engine.connect() as conn:
        assert rebuild(conn) == 0
        conn.rollback()
        for end in (datetime.now(UTC) + timedelta(minutes=1), datetime.now(UTC) + timedelta(days=40)):
            for group in ("grid", "department"):
                report = assert_parity(conn, KpiQuery(group, start, end))
                assert report["totals"]["reported"] == 2
            units = {g["key"]: g for g in evaluate(conn, KpiQuery("department", start, end), by=ADMIN)["groups"]}
            assert (units["SANITATION"]["assisting"], units["GRID_CHIEF"]["reworked"]) == (1, 1)


# -- the small demo: a year of generated history

def test_parity_on_the_small_demo(small_demo: Engine) -> None:
    with small_demo.connect() as conn:
        assert rebuild(conn) == 0  # the builder's rebuild matches what the triggers would keep
        first, last = conn.execute(text('SELECT min(reported_at), max(reported_at) FROM "case"')).one()
        town, owner = conn.execute(text('SELECT town_code, owner_key FROM "case" WHERE owner_key <> \'GRID_CHIEF\''
                                        " GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")).one()
        middle = first + (last - first) / 2
        periods = [(first, last + timedelta(seconds=1)), (middle - timedelta(days=45), middle),
                   (middle, middle + timedelta(days=7)), (middle, middle + timedelta(hours=30)),
                   (last - timedelta(days=3), last + timedelta(days=30))]
        scopes = [ADMIN, Principal(1, "t", "dispatcher", town), Principal(2, "o", "handler", owner)]
        for start, end in periods:
            for group in GROUPS:
                for by in scopes:
                    if by.scope == town and group == "district":
                        continue
                    assert_parity(conn, KpiQuery(group, start, end), by=by)
        conn.rollback()


# -- concurrent writers: increments add up

def _insert_case(conn: Connection, case_id: int) -> None:
    """A reported case in grid A on 2 March (both writers meet on its day's and month's rollup rows)."""
    conn.execute(text(
        'INSERT INTO "case" (id, case_no, category_code, state, source, location, grid_code, community_code,'
        " town_code, district_code, special_grid_codes, grid_version_id, owner_key, deadline, reported_at)"
        " VALUES (:id, :no, 'E010101', 'reported', 'inspector', ST_GeomFromText('POINT(120.02 31.15)', 4326), :g,"
        " :c, :t, :d, '{}', 1, 'GRID_CHIEF', :deadline, :at)"),
        {"id": case_id, "no": f"RACE{case_id}", "g": GRID_A, "c": GRID_A[:12], "t": GRID_A[:9], "d": GRID_A[:6],
         "deadline": day(5), "at": day(1) + timedelta(minutes=case_id)})


def test_concurrent_writers_add_up(world_engine: Engine, no_cases: None) -> None:
    import threading

    first = world_engine.connect()
    first.begin()
    _insert_case(first, 1)  # holds the rollup rows until it commits
    second_done = threading.Event()

    def second() -> None:
        with world_engine.begin() as conn:
            _insert_case(conn, 2)
            conn.execute(text('UPDATE "case" SET kpi_registered_at = :t, kpi_state_at = :t, kpi_through = :t'
                              " WHERE id = 2"), {"t": day(1.5)})
        second_done.set()

    worker = threading.Thread(target=second)
    worker.start()
    assert not second_done.wait(1.0)  # it waits for the first writer's rows
    first.commit()
    first.close()
    worker.join(30)
    assert second_done.is_set()
    with world_engine.begin() as conn:
        rows = conn.execute(text("SELECT span, reported, registered FROM kpi_rollup WHERE grid_code = :g"
                                 " ORDER BY span"), {"g": GRID_A}).all()
        assert [tuple(r) for r in rows] == [("d", 2, 1), ("m", 2, 1)]
        assert rebuild(conn) == 0
        conn.execute(text('TRUNCATE case_photo, case_unit, case_event, "case"'))
