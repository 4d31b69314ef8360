"""The months that hold open cases (issue 22, migration 0036, ``case_open_month``): reads of open cases of any
age plan only those months.

One scratch database holds the small demo (October and November 2026); its open cases of October are closed and
the set narrowed (``gridlink db maintain``), so that the open cases lie in November. Then: the set is exactly their
months; every read of open cases, as the code sends it, plans only the months of the span (not the older ones,
not the months made ahead, not the default partition); a case opened in another month — reopened, moved,
reported late — brings its month at once and is read; the narrowing waits for the writers of cases and, when
one holds its lock too long, leaves the set as it is.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, event, text

from api import cli
from spatial import errors
from spatial.access.principal import Principal
from spatial.cases import inbox, scheduler
from spatial.cases.read import CaseFilter, list_cases
from spatial.grids import edits, impact
from spatial.reference.cache import ReferenceCache
from spatial.store.partitions import LOCAL, narrow_open_months, open_span
from tests.conftest import migrated_engine
from tests.plans import as_text, case_months_planned, plan_nodes
from tiles.cache import TileCache

ADMIN = Principal(account_id=0, login="t", role="admin", scope="*")
OPEN = "state NOT IN ('closed', 'voided')"
SETTLED_BEFORE = "2026-11-01 00:00+08"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Engine]:
    """The small demo with its open cases only in November 2026, the set narrowed."""
    from spatial.demo.build import build_demo

    engine = migrated_engine("gridlink_test_open_months")
    build_demo(engine, small=True, progress=False)
    with engine.begin() as conn:
        closed = conn.execute(text(f'UPDATE "case" SET state = \'closed\' WHERE {OPEN}'
                                   " AND reported_at < :t"), {"t": SETTLED_BEFORE}).rowcount
    assert closed > 0
    assert narrow_open_months(engine) is not None
    yield engine
    engine.dispose()


def _held(conn) -> list[str]:
    return [f"{m.astimezone(LOCAL):%Y-%m}" for m in conn.execute(text(
        "SELECT month FROM case_open_month ORDER BY month")).scalars()]


def _open_months(conn) -> list[str]:
    return list(conn.execute(text(
        f"SELECT DISTINCT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') FROM \"case\" WHERE {OPEN}"
        " ORDER BY 1")).scalars())


def _span_months(conn) -> set[str]:
    """The months of "case" between open_span's bounds."""
    span = open_span(conn)
    first, last = span["open_from"].astimezone(LOCAL), span["open_to"].astimezone(LOCAL)
    out, month = set(), (first.year, first.month)
    while datetime(month[0], month[1], 1, tzinfo=LOCAL) < last:
        out.add(f"case_p{month[0]}_{month[1]:02d}")
        month = (month[0] + month[1] // 12, month[1] % 12 + 1)
    return out


def test_the_set_is_the_months_of_the_open_cases(scratch: Engine) -> None:
    with scratch.connect() as conn:
        assert _held(conn) == _open_months(conn) == ["2026-11"]
        # the span: the set's months and the current month (a new report's); nothing before, nothing ahead
        assert _span_months(conn) == {"case_p2026_11", datetime.now(LOCAL).strftime("case_p%Y_%m")}


def _recorded(engine: Engine, call, tables: str = r'"case"') -> list[tuple[str, dict]]:
    """The statements ``call()`` sends over ``engine`` that read one of ``tables`` (a pattern; "case" unless
    told), in text()'s form, with their parameters (inserts left out: a row goes to its own month)."""
    sent: list[tuple[str, dict]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if re.search(tables, statement) and statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE")):
            sent.append(as_text((statement, parameters)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def _tile_of(conn) -> tuple[int, int, int]:
    """The z12 tile holding an open case."""
    lon, lat = conn.execute(text(f'SELECT ST_X(location), ST_Y(location) FROM "case" WHERE {OPEN} LIMIT 1')).one()
    z = 12
    return z, int((lon + 180) / 360 * 2**z), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)


READS = {
    "inbox": lambda conn, ref: inbox.inbox(conn, ref, inbox.InboxQuery(limit=20), by=ADMIN),
    "overdue_list": lambda conn, ref: list_cases(conn, ref, CaseFilter(overdue=True, limit=20), by=ADMIN),
    "state_list": lambda conn, ref: list_cases(conn, ref, CaseFilter(state="dispatched", limit=20), by=ADMIN),
    "planning_moved_cases": lambda conn, ref: impact.moved_cases(conn, -1),
    "planning_special_cases": lambda conn, ref: impact.reassign_special(conn, -1, -1, datetime.now(UTC)),
}


def _merge_refused(conn, code: str) -> None:
    """Retiring a base grid that holds open cases: refused, after counting them."""
    with pytest.raises(errors.ConflictError, match="open cases"):
        edits.merge(conn, ADMIN, code, expected=edits.current_version(conn, code))


@pytest.mark.parametrize("reader", [*READS, "case_tile", "grid_merge_refused", "scheduler"])
def test_reads_of_open_cases_plan_only_their_months(scratch: Engine, reader: str) -> None:
    """Each read of open cases, as the code sends it: the months of "case" its plans hold are those of the span
    (the open cases' and the current one) — before migration 0036 every month attached and the default."""
    with scratch.connect() as conn:
        ref = ReferenceCache.load(conn)
        wanted = _span_months(conn)
        tile = _tile_of(conn)
        grid = conn.execute(text(f'SELECT grid_code FROM "case" WHERE {OPEN} LIMIT 1')).scalar_one()

    def call() -> None:
        if reader == "scheduler":  # a sweep at a time before everything: it reads its candidates, writes nothing
            scheduler.sweep(scratch, ref.calendar, datetime(2000, 1, 1, tzinfo=UTC))
            return
        with scratch.connect() as conn:
            if reader == "case_tile":
                TileCache().tile(conn, "cases", *tile)
            elif reader == "grid_merge_refused":
                _merge_refused(conn, grid)
            else:
                READS[reader](conn, ref)
            conn.rollback()

    sent = _recorded(scratch, call)
    assert sent
    with scratch.connect() as conn:
        every = {row[0] for row in conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = CAST('\"case\"' AS regclass)"))}
        for sql, params in sent:
            planned = case_months_planned(conn, sql, params)
            assert planned <= wanted, (sql[:200], sorted(planned - wanted))
        assert len(every) > len(wanted) + 3  # older months, months made ahead, the default: all pruned


def _some_closed(conn, month: str) -> int:
    return conn.execute(text(
        "SELECT id FROM \"case\" WHERE state = 'closed' AND duplicate_of IS NULL"
        " AND to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') = :m ORDER BY id LIMIT 1"),
        {"m": month}).scalar_one()


def test_a_case_opened_in_another_month_brings_it_at_once(scratch: Engine) -> None:
    """Reopened, moved into another month, reported late: the month comes into the set in the same statement,
    and the case is read by the reads of open cases."""
    with scratch.connect() as conn:
        ref = ReferenceCache.load(conn)
    with scratch.begin() as conn:
        reopened = _some_closed(conn, "2026-10")
        conn.execute(text("UPDATE \"case\" SET state = 'dispatched' WHERE id = :id"), {"id": reopened})
        assert _held(conn) == ["2026-10", "2026-11"]
        moved = _some_closed(conn, "2026-11")
        was = conn.execute(text('SELECT reported_at FROM "case" WHERE id = :id'), {"id": moved}).scalar_one()
        conn.execute(text("UPDATE \"case\" SET state = 'dispatched', reported_at = '2019-05-10 08:00+08'"
                          " WHERE id = :id"), {"id": moved})  # to a month without a partition: the default
        assert _held(conn) == ["2019-05", "2026-10", "2026-11"]
    with scratch.connect() as conn:
        listed = [c["id"] for c in list_cases(conn, ref, CaseFilter(state="dispatched", limit=500), by=ADMIN)["cases"]]
        assert {reopened, moved} <= set(listed)
        assert {"case_p2019_05", "case_p2026_10"} <= _span_months(conn)
    with scratch.begin() as conn:  # put back as they were: closed, and in their month
        conn.execute(text("UPDATE \"case\" SET state = 'closed' WHERE id = ANY(:ids)"), {"ids": [reopened, moved]})
        conn.execute(text('UPDATE "case" SET reported_at = :t WHERE id = :id'), {"t": was, "id": moved})
    assert narrow_open_months(scratch) is not None
    with scratch.connect() as conn:
        assert _held(conn) == ["2026-11"]


def test_narrowing_waits_for_the_writers_of_cases(scratch: Engine) -> None:
    """A transaction that reopened a case of a month outside the set and has not committed: the narrowing waits
    for it (its SHARE lock on "case"), then keeps the month; with a short wait it gives up and changes nothing."""
    writer = create_engine(scratch.url)
    try:
        with writer.connect() as conn:
            reopened = _some_closed(conn, "2026-10")
            conn.execute(text("UPDATE \"case\" SET state = 'registered' WHERE id = :id"), {"id": reopened})
            assert narrow_open_months(scratch, wait="100ms") is None  # gave up: the writer holds its lock
            result: list = []
            narrowing = threading.Thread(target=lambda: result.append(narrow_open_months(scratch, wait="60s")))
            narrowing.start()
            with scratch.connect() as watch:
                for _ in range(200):
                    waiting = watch.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'")).scalar()
                    if waiting:
                        break
                    time.sleep(0.05)
            assert waiting == 1 and narrowing.is_alive()
            conn.commit()
        narrowing.join(60)
        assert result and [f"{m.astimezone(LOCAL):%Y-%m}" for m in result[0]] == ["2026-10", "2026-11"]
        with scratch.begin() as conn:
            conn.execute(text("UPDATE \"case\" SET state = 'closed' WHERE id = :id"), {"id": reopened})
    finally:
        writer.dispose()
    assert narrow_open_months(scratch) is not None


def test_db_maintain_says_which_months_hold_open_cases(scratch: Engine, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", scratch.url.render_as_string(hide_password=False))
    assert cli.main(["db", "maintain"]) == 0
    assert "open cases: 1 months hold them, 2026-11 to 2026-11" in capsys.readouterr().out


def test_a_workflow_action_reads_and_writes_its_case_in_its_month(scratch: Engine) -> None:
    """Reopening a closed case of October (as the console does: ``act``): every statement it sends on "case",
    its units and its photos plans only the case's month — the UPDATE of the case too, which named only its id
    (every month planned) before session 14 — and its trail's reads only the trail's months. Rolled back."""
    from spatial.cases.actions import ActionInput, act

    with scratch.connect() as conn:
        ref = ReferenceCache.load(conn)
        case_id = _some_closed(conn, "2026-10")
        revision = conn.execute(text('SELECT revision FROM "case" WHERE id = :c'), {"c": case_id}).scalar_one()
        trail = {f"case_event_p{m}" for m in conn.execute(text(
            "SELECT DISTINCT to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY_MM') FROM case_event WHERE case_id = :c"),
            {"c": case_id}).scalars()}
    def call() -> None:
        with scratch.connect() as conn:
            outcome = act(conn, ref, case_id, "reopen", ActionInput(note="重新派遣"), by=ADMIN,
                          expected_revision=revision)
            assert outcome.state == "registered"
            assert "2026-10" in _held(conn)  # the trigger, in the action's own statement
            conn.rollback()

    sent = _recorded(scratch, call, tables=r'"case"|case_event|case_unit|case_photo')
    assert any(sql.lstrip().upper().startswith("UPDATE") for sql, _ in sent)
    with scratch.connect() as conn:
        for sql, params in sent:
            plan = conn.execute(text("EXPLAIN (COSTS OFF, FORMAT JSON) " + sql), params).scalar()[0]["Plan"]
            names = {n["Relation Name"] for n in plan_nodes(plan) if "Relation Name" in n}
            months = {n for n in names if re.fullmatch(r"(case|case_unit|case_photo)_(p\d{4}_\d{2}|default)", n)}
            own = {re.sub(r"^case_(unit|photo)_", "case_", n) for n in months}
            assert own <= {"case_p2026_10"}, (sql[:160], months)
            events = {n for n in names if re.fullmatch(r"case_event_(p\d{4}_\d{2}|default)", n)}
            assert events <= trail, (sql[:160], events)


def test_the_live_feed_reads_each_events_case_in_its_month(scratch: Engine) -> None:
    """The feed's page of events (spatial/cases/feed.py): each event's case through ``case_key`` — read in its
    month — and the state before it in the months of its trail (run-time pruning: the other months are never
    started). Events of three November cases, written and read in one transaction, rolled back."""
    from spatial.cases import feed

    with scratch.connect() as conn:
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role) SELECT id, now(), 'link', 't',"
                          " 'system' FROM \"case\" WHERE reported_at >= '2026-11-01 00:00+08' ORDER BY id LIMIT 3"))
        xid = conn.execute(text("SELECT txid_current()")).scalar_one()
        conn.execute(feed._SETTLE)
        plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) "
                                 + feed._ROWS.text), {"xid": xid, "below": xid + 1, "id": 0, "n": 100}).scalar()
        # the events by xid: every month's BRIN (the feed's order is the transactions', not the months'); the
        # cases and the states before each event: only their months
        read = {n["Relation Name"] for n in plan_nodes(plan[0]["Plan"]) if n.get("Actual Loops", 0) > 0
                and not n.get("Alias", "").startswith("e")
                and re.fullmatch(r"(case|case_event)_(p\d{4}_\d{2}|default)", n.get("Relation Name", ""))}
        rows = conn.execute(feed._ROWS, {"xid": xid, "below": xid + 1, "id": 0, "n": 100}).all()
        conn.rollback()
    assert len(rows) == 3
    now = datetime.now(LOCAL).strftime("%Y_%m")
    # the cases' month; the events' months: the trails' (November) and the new events' (now)
    assert {n for n in read if n.startswith("case_p")} == {"case_p2026_11"}, read
    assert {n for n in read if n.startswith("case_event_")} <= {"case_event_p2026_11", f"case_event_p{now}"}, read
