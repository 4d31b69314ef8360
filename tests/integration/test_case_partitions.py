"""Monthly partitions of "case" itself (issue 22 item 1, migration 0031, spatial/store/partitions.py).

One scratch database holds the small demo plus what the demo lacks — a case with an idempotency key, a
duplicate, a photo, a case of 2019 (older than the 36 months the conversion makes) — and is taken down to 0030
and up again: counts and a digest of every row equal at each step, case_key equal to the keys of "case". Then
the keys' rules (the same refusals under the same constraint names as before), over HTTP the idempotency
replay and its lost race, the months maintained and archived through the CLI, and EXPLAIN ANALYZE of the
period reads of "case" as the code sends them: only the period's months are read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError

from api import cli
from migrations import alembic_config
from spatial.access.principal import Principal
from spatial.cases import intake, kpi
from spatial.cases.open311 import RequestFilter, list_requests
from spatial.cases.read import CaseFilter, list_cases
from spatial.reference.cache import ReferenceCache
from spatial.store.partitions import WITH_CASE, months, open_span
from tests.conftest import fresh_database
from tests.plans import as_text, case_months_in, case_months_planned, plan_nodes, root_indexes

BEFORE = "0030_kpi_rollup_area_index"
BEFORE_UNITS = "0034_case_trail_bounds"  # before the units and photos were partitioned (0035)
TABLES = ('"case"', "case_event", "case_unit", "case_photo", "kpi_rollup")
KEY = "0" * 63 + "1"  # a stored idempotency key (a digest of 64 hex digits)
OLD = "2019-05-10 08:00+08"
ADMIN = Principal(account_id=0, login="t", role="admin", scope="*")
WEEK = (datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))


def _digest(engine: Engine, tables: tuple[str, ...] = TABLES, *, own: bool = False) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of every row (in the order of their text) of the case tables — of the units and photos
    without the case's ``reported_at`` they carry since migration 0035, unless ``own``."""
    out = {}
    with engine.connect() as conn:
        for table in tables:
            row = "t::text" if own or table not in WITH_CASE else "(to_jsonb(t) - 'reported_at')::text"
            out[table] = tuple(conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) FROM {table} t")).one())
    return out


def _keys_match(engine: Engine) -> None:
    """case_key holds exactly the global keys of "case", one row per case."""
    with engine.connect() as conn:
        apart = conn.execute(text(
            'SELECT count(*) FROM (SELECT id, case_no, idempotency_key, reported_at FROM "case"'
            " EXCEPT SELECT id, case_no, idempotency_key, reported_at FROM case_key) a")).scalar()
        extra = conn.execute(text(
            "SELECT count(*) FROM (SELECT id, case_no, idempotency_key, reported_at FROM case_key"
            ' EXCEPT SELECT id, case_no, idempotency_key, reported_at FROM "case") a')).scalar()
        counts = conn.execute(text('SELECT (SELECT count(*) FROM "case"), (SELECT count(*) FROM case_key)')).one()
    assert (apart, extra) == (0, 0) and counts[0] == counts[1]


def _kind(engine: Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT relkind FROM pg_class WHERE oid = CAST('\"case\"' AS regclass)")).scalar()


@pytest.fixture(scope="module")
def scratch() -> Iterator[Engine]:
    """The small demo plus a keyed case, a duplicate, a photo and a case of 2019, in its own database."""
    from spatial.demo.build import build_demo

    url = fresh_database("gridlink_test_case_partitions")
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    build_demo(engine, small=True, progress=False)
    with engine.begin() as conn:
        first, second = conn.execute(text('SELECT id FROM "case" WHERE duplicate_of IS NULL ORDER BY id LIMIT 2'))
        conn.execute(text('UPDATE "case" SET idempotency_key = :k WHERE id = :id'), {"k": KEY, "id": first[0]})
        conn.execute(text('UPDATE "case" SET duplicate_of = :a WHERE id = :b'), {"a": first[0], "b": second[0]})
        conn.execute(text("INSERT INTO case_photo (case_id, actor, media_type, width, height, size, sha256, data,"
                          " thumb, reported_at) VALUES (:c, 'x', 'image/jpeg', 1, 1, 3, repeat('a', 64), 'abc', 'ab',"
                          " gridlink_case_month(:c))"),
                     {"c": first[0]})
        old = _copy_case(conn, first[0], OLD, "2019051000000001")
        conn.execute(text('UPDATE "case" SET state = \'closed\' WHERE id = :id'), {"id": old})
    yield engine
    engine.dispose()


def _copy_case(conn, case_id: int, reported_at: str, case_no: str) -> int:
    """A new case like ``case_id`` but reported at ``reported_at`` (with its number), without events."""
    columns = [c for c in conn.execute(text(
        "SELECT attname FROM pg_attribute WHERE attrelid = CAST('\"case\"' AS regclass) AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum")).scalars() if c not in ("id", "case_no", "idempotency_key",
                                                                          "reported_at", "duplicate_of")]
    listed = ", ".join(columns)
    return conn.execute(text(
        f'INSERT INTO "case" (case_no, reported_at, {listed}) SELECT :no, CAST(:at AS timestamptz), {listed}'
        ' FROM "case" WHERE id = :id RETURNING id'), {"no": case_no, "at": reported_at, "id": case_id}).scalar()


def test_the_conversion_keeps_every_row_down_and_up(scratch: Engine) -> None:
    config = alembic_config(scratch.url.render_as_string(hide_password=False))
    at_head = _digest(scratch)
    assert at_head['"case"'][0] > 800 and at_head["case_photo"][0] == 1
    assert _kind(scratch) == "p"
    _keys_match(scratch)
    command.downgrade(config, BEFORE)
    assert _kind(scratch) == "r"
    assert _digest(scratch) == at_head
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('case_key')")).scalar() is None
        # the keys are constraints of "case" again, and the children point at it
        owners = dict(conn.execute(text(
            "SELECT conname, conrelid::regclass::text FROM pg_constraint WHERE conname IN ('uq_case_case_no',"
            " 'uq_case_idempotency_key')")).tuples().all())
        assert owners == {"uq_case_case_no": '"case"', "uq_case_idempotency_key": '"case"'}
        referenced = set(conn.execute(text(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE conname IN ('fk_case_event_case_id_case',"
            " 'fk_case_unit_case_id_case', 'fk_case_photo_case_id_case', 'fk_case_duplicate_of_case')")).scalars())
        assert referenced == {'"case"'}
    command.upgrade(config, "head")
    assert _kind(scratch) == "p"
    assert _digest(scratch) == at_head  # the rollup too: its triggers did not fire for the move
    _keys_match(scratch)
    with scratch.connect() as conn:  # 0034's backfill: every key's trail bounds exact
        assert _trail_bounds_off(conn) == 0
    with scratch.connect() as conn:
        names = {name for name, _, _ in months(conn, "case")}
        assert {"case_p2026_10", "case_p2026_11"} <= names
        assert conn.execute(text("SELECT count(*) FROM case_default")).scalar() == 1  # 2019: before 36 months
        owners = dict(conn.execute(text(
            "SELECT conname, conrelid::regclass::text FROM pg_constraint WHERE conname IN ('uq_case_case_no',"
            " 'uq_case_idempotency_key')")).tuples().all())
        assert owners == {"uq_case_case_no": "case_key", "uq_case_idempotency_key": "case_key"}
        referenced = set(conn.execute(text(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE conname IN ('fk_case_event_case_id_case',"
            " 'fk_case_unit_case_id_case', 'fk_case_photo_case_id_case', 'fk_case_duplicate_of_case')"
            " AND conparentid = 0")).scalars())
        assert referenced == {"case_key"}
        # the triggers of "case" as they were, plus the keys', ALWAYS, on the parent and every month
        enabled = dict(conn.execute(text(
            "SELECT tgname, string_agg(DISTINCT tgenabled::text, '') FROM pg_trigger"
            " WHERE tgrelid = CAST('\"case\"' AS regclass) AND NOT tgisinternal GROUP BY 1")).tuples().all())
        assert enabled == {"case_key_sync": "A", "case_key_truncate": "A", "case_tiles": "A",
                           "case_kpi_rollup_insert": "A", "case_kpi_rollup_update": "A",
                           "case_kpi_rollup_delete": "A", "case_kpi_rollup_truncate": "A",
                           "case_open_month_insert": "A", "case_open_month_update": "A"}  # 0036
        copies = conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname = 'case_key_sync'")).scalar()
        assert copies == 1 + len(names) + 1  # parent, months, default


def test_the_units_and_photos_go_with_their_case_down_and_up(scratch: Engine) -> None:
    """Migration 0035: case_unit and case_photo partitioned by their case's reported_at, in place, and back."""
    config = alembic_config(scratch.url.render_as_string(hide_password=False))
    kinds = "SELECT relname, relkind FROM pg_class WHERE relname IN ('case_unit', 'case_photo')"
    with scratch.begin() as conn:  # a joint case's unit, beside the fixture's photo
        conn.execute(text("INSERT INTO case_unit (case_id, unit_key, role, state, dispatched_at, reported_at)"
                          ' SELECT id, \'SZ-PARKS\', \'assist\', \'dispatched\', now(), reported_at FROM "case"'
                          " WHERE duplicate_of IS NULL AND reported_at >= '2026-11-01+08' ORDER BY id LIMIT 1"))
    at_head, plain = _digest(scratch, WITH_CASE, own=True), _digest(scratch, WITH_CASE)
    assert at_head["case_unit"][0] == 1 and at_head["case_photo"][0] == 1
    with scratch.connect() as conn:
        assert dict(conn.execute(text(kinds)).tuples().all()) == {"case_unit": "p", "case_photo": "p"}
        # each row in the month of its case
        assert conn.execute(text(
            "SELECT count(*) FROM (SELECT case_id, reported_at, tableoid::regclass::text AS part FROM case_unit"
            " UNION ALL SELECT case_id, reported_at, tableoid::regclass::text FROM case_photo) r"
            " JOIN case_key k ON k.id = r.case_id WHERE r.reported_at = k.reported_at AND r.part ~ ("
            " to_char(k.reported_at AT TIME ZONE 'Asia/Shanghai', '\"p\"YYYY_MM') || '$')")).scalar() == 2
    command.downgrade(config, BEFORE_UNITS)
    with scratch.connect() as conn:
        assert dict(conn.execute(text(kinds)).tuples().all()) == {"case_unit": "r", "case_photo": "r"}
    assert _digest(scratch, WITH_CASE) == plain
    command.upgrade(config, "head")
    assert _digest(scratch, WITH_CASE, own=True) == at_head
    with scratch.begin() as conn:
        conn.execute(text("DELETE FROM case_unit"))


def test_the_keys_refuse_as_before(scratch: Engine) -> None:
    with scratch.connect() as conn:
        keyed, copied = conn.execute(text('SELECT id, (SELECT id FROM "case" WHERE reported_at < \'2020-01-01\')'
                                          ' FROM "case" WHERE idempotency_key = :k'), {"k": KEY}).one()
        number = conn.execute(text('SELECT case_no FROM "case" WHERE id = :id'), {"id": keyed}).scalar()
    refusals = {
        "uq_case_idempotency_key": ('UPDATE "case" SET idempotency_key = :k WHERE id = :other', {"other": copied}),
        "uq_case_case_no": ('UPDATE "case" SET case_no = :no WHERE id = :other', {"other": copied}),
        # the same id in another month: the partitions' own keys cannot see it, case_key does
        "pk_case_key": ('INSERT INTO "case" SELECT (c).* FROM (SELECT c FROM "case" c WHERE id = :id) s', {}),
        "fk_case_event_case_id_case": ("INSERT INTO case_event (case_id, at, kind, actor) VALUES (-1, now(), 'link',"
                                       " 'x')", {}),
        "fk_case_unit_case_id_case": ("INSERT INTO case_unit (case_id, unit_key, role, state, dispatched_at,"
                                      " reported_at) VALUES (-1, 'x', 'assist', 'dispatched', now(), now())", {}),
        "fk_case_duplicate_of_case": ('UPDATE "case" SET duplicate_of = -1 WHERE id = :id', {}),
    }
    for constraint, (sql, extra) in refusals.items():
        with pytest.raises(IntegrityError, match=constraint), scratch.begin() as conn:
            if constraint == "pk_case_key":
                conn.execute(text('UPDATE "case" SET reported_at = :at WHERE id = :id'),
                             {"at": datetime(2026, 10, 2, tzinfo=UTC), "id": keyed})
                sql = ('INSERT INTO "case" SELECT id, case_no || \'x\' AS case_no, category_code, state, source,'
                       " description, location, grid_code, community_code, town_code, district_code,"
                       " special_grid_codes, grid_version_id, component_code, component_distance_m, owner_key,"
                       " owner_area_code, deadline, duplicate_of, reporter_name, reporter_phone, NULL,"
                       " CAST('2026-11-20 10:00+08' AS timestamptz), created_at, closed_at, revision, step_deadline,"
                       " pending_action, kpi_registered_at, kpi_state_at, kpi_closed_at, kpi_handled_state_at,"
                       " kpi_voided_at, kpi_suspended_at, kpi_handled_at, kpi_reworks, kpi_through, assist_keys"
                       ' FROM "case" WHERE id = :id')
            conn.execute(text(sql), {"k": KEY, "no": number, "id": keyed, **extra})
    # a case whose trail holds events cannot be deleted: refused by the trail's key, by name (and the first
    # case, a duplicate's original, by the duplicate's)
    with scratch.connect() as conn:
        plain = conn.execute(text('SELECT min(id) FROM "case" c WHERE id > :id AND NOT EXISTS'
                                  ' (SELECT 1 FROM "case" d WHERE d.duplicate_of = c.id)'), {"id": keyed}).scalar()
    either = "fk_case_duplicate_of_case|fk_case_event_case_id_case"
    for case_id, constraint in ((plain, "fk_case_event_case_id_case"), (keyed, either)):
        with pytest.raises(IntegrityError, match=constraint), scratch.begin() as conn:
            conn.execute(text('DELETE FROM "case" WHERE id = :id'), {"id": case_id})
    _keys_match(scratch)


def test_a_moved_report_takes_its_key_and_trail_along(scratch: Engine) -> None:
    with scratch.begin() as conn:
        case_id, was, events = conn.execute(text(
            'SELECT id, reported_at, (SELECT count(*) FROM case_event e WHERE e.case_id = c.id) FROM "case" c'
            " WHERE reported_at >= '2026-11-05+08' ORDER BY id LIMIT 1")).one()
        conn.execute(text("INSERT INTO case_unit (case_id, unit_key, role, state, dispatched_at, reported_at)"
                          " VALUES (:id, 'SZ-PARKS', 'assist', 'dispatched', now(), :at)"), {"id": case_id, "at": was})
        conn.execute(text("INSERT INTO case_photo (case_id, actor, media_type, width, height, size, sha256, data,"
                          " thumb, reported_at) VALUES (:id, 'x', 'image/jpeg', 1, 1, 3, repeat('b', 64), 'abc', 'ab',"
                          " :at)"), {"id": case_id, "at": was})
        conn.execute(text('UPDATE "case" SET reported_at = :at WHERE id = :id'),
                     {"at": datetime(2026, 10, 2, tzinfo=UTC), "id": case_id})
        where = conn.execute(text('SELECT tableoid::regclass::text FROM "case" WHERE id = :id'),
                             {"id": case_id}).scalar()
        assert where == "case_p2026_10"
        # its unit and photo moved with it (case_key_sync, migration 0035)
        moved = datetime(2026, 10, 2, tzinfo=UTC)
        assert set(conn.execute(text(
            "SELECT tableoid::regclass::text, reported_at FROM case_unit WHERE case_id = :id UNION"
            " SELECT tableoid::regclass::text, reported_at FROM case_photo WHERE case_id = :id"),
            {"id": case_id}).tuples()) == {("case_unit_p2026_10", moved), ("case_photo_p2026_10", moved)}
        assert conn.execute(text("SELECT reported_at FROM case_key WHERE id = :id"),
                            {"id": case_id}).scalar() == datetime(2026, 10, 2, tzinfo=UTC)
        assert conn.execute(text("SELECT count(*) FROM case_event WHERE case_id = :id"),
                            {"id": case_id}).scalar() == events
        conn.execute(text('UPDATE "case" SET reported_at = :at WHERE id = :id'), {"at": was, "id": case_id})
        assert conn.execute(text("SELECT count(*) FROM case_unit WHERE case_id = :id AND reported_at = :at"),
                            {"id": case_id, "at": was}).scalar() == 1
        conn.execute(text("DELETE FROM case_unit WHERE case_id = :id"), {"id": case_id})
        conn.execute(text("DELETE FROM case_photo WHERE case_id = :id"), {"id": case_id})
    _keys_match(scratch)


def test_maintain_settles_the_old_case_and_archive_takes_closed_months(
        scratch: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", scratch.url.render_as_string(hide_password=False))
    with scratch.begin() as conn:  # the old case's trail: its report and an event a day later
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role)"
                          " SELECT id, reported_at + interval '1 day', 'link', 'x', 'system' FROM case_key"
                          " WHERE case_no = '2019051000000001'"))
        assert _trail_bounds_off(conn) == 0
    before = _digest(scratch, ('"case"',))
    assert cli.main(["db", "maintain"]) == 0
    assert "1 rows moved out of case_default" in capsys.readouterr().out
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_p2019_05")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM case_default")).scalar() == 0
        # moved out and back in by pg_partman, its key keeps its trail's bounds (its event is still read)
        assert _trail_bounds_off(conn) == 0
        assert conn.execute(text("SELECT trail_to - trail_from FROM case_key WHERE case_no = '2019051000000001'")
                            ).scalar() == timedelta(days=1)
    assert _digest(scratch, ('"case"',)) == before
    _keys_match(scratch)
    # the demo's months hold open cases: archiving before November takes October's trail, not its cases
    assert cli.main(["db", "archive", "--before", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert "case_event_p2026_10" in out and "case_p2019_05" in out and "case_p2026_10" not in out.split()
    assert "case_photo_p2026_10" not in out.split() and "case_unit_p2026_10" not in out.split()  # with their cases
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('case_p2026_10')")).scalar() == "case_p2026_10"
        assert conn.execute(text("SELECT count(*) FROM pg_inherits WHERE inhrelid ="
                                 " CAST('case_p2019_05' AS regclass)")).scalar() == 0  # detached
        # the archived case keeps its key: its number stays taken
        assert conn.execute(text("SELECT count(*) FROM case_key WHERE case_no = '2019051000000001'")).scalar() == 1


def _trail_bounds_off(conn) -> int:
    """How many keys' trail bounds (migration 0034) are not exactly their report time or their events' first
    and last time."""
    return conn.execute(text(
        "SELECT count(*) FROM case_key k LEFT JOIN (SELECT case_id, min(at) AS a, max(at) AS b FROM case_event"
        " GROUP BY case_id) e ON e.case_id = k.id WHERE (k.trail_from, k.trail_to) IS DISTINCT FROM"
        " (least(k.reported_at, e.a), greatest(k.reported_at, e.b))")).scalar()


def _case_months_read(conn, sql: str, params: dict) -> set[str]:
    """The months of "case" a statement reads (scan nodes executed at least once)."""
    plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + sql),
                        params).scalar()
    return case_months_in(plan[0]["Plan"], executed=True)


def _sent(engine: Engine, call) -> list[tuple[str, Any]]:
    """The statements ``call(conn)`` sends that read "case" (as sent, with their parameters)."""
    return _statements_on(engine, '"case"', call)


@pytest.mark.parametrize("path", ["trail", "summary", "rollup"])
def test_kpi_for_a_period_reads_only_its_months_of_cases(small_demo: Engine, path: str) -> None:
    """GET /api/v1/kpi: the three readings (spatial/cases/kpi.py) read the cases of the period's month only."""
    query = kpi.KpiQuery(group="town", start=WEEK[0], end=WEEK[1])
    params = kpi._params(query, ADMIN)
    sql = kpi.statement("town", trail=path == "trail")
    if path == "rollup":
        window = kpi.window(query.start, query.end)
        assert window is not None
        params |= window.params() | {"forever": "infinity"}
        sql = kpi.rollup_statement("town")
    with small_demo.connect() as conn:
        kpi._settle(conn)
        assert _case_months_read(conn, sql, params) == {"case_p2026_11"}


@pytest.mark.parametrize("reader", ["cases", "open311"])
def test_lists_by_report_time_read_only_their_months(small_demo: Engine, reader: str) -> None:
    """GET /api/v1/cases?since&until and GET /open311/v2/requests?start_date&end_date: the ids of the page come
    from the period's months only (then the page's rows by id)."""
    with small_demo.connect() as conn:
        ref = ReferenceCache.load(conn)

    def call(conn) -> None:
        if reader == "cases":
            list_cases(conn, ref, CaseFilter(since=WEEK[0], until=WEEK[1], limit=20), by=ADMIN)
        else:
            list_requests(conn, ref, RequestFilter(start=WEEK[0], end=WEEK[1], limit=20), by=ADMIN)

    sent = _sent(small_demo, call)
    assert sent
    with small_demo.connect() as conn:
        assert _case_months_read(conn, *as_text(sent[0])) == {"case_p2026_11"}


GOOD = {"category": "E010101", "location": {"type": "Point", "coordinates": [120.06, 31.17]},
        "description": "路边暴露垃圾", "source": "inspector"}


def test_a_retried_key_replays_over_http_also_after_a_lost_race(client: TestClient, world_engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = client.post("/api/v1/cases", json=GOOD, headers={"Idempotency-Key": "race-1"})
    assert first.status_code == 201, first.text
    # the retry does not see the first case before it inserts (as when both run at once): the key's unique
    # constraint, now on case_key, refuses the insert by name and the retry answers with the first case
    real = intake._replay
    calls: list[int] = []

    def late(*args, **kwargs):
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(intake, "_replay", late)
    again = client.post("/api/v1/cases", json=GOOD, headers={"Idempotency-Key": "race-1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and len(calls) == 2
    monkeypatch.setattr(intake, "_replay", real)
    conflict = client.post("/api/v1/cases", json={**GOOD, "description": "别的"}, headers={"Idempotency-Key": "race-1"})
    assert conflict.status_code == 409 and conflict.headers["content-type"] == "application/problem+json"
    with world_engine.connect() as conn:
        assert conn.execute(text('SELECT count(*) FROM "case"')).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM case_key WHERE idempotency_key IS NOT NULL")).scalar() == 1
    assert json.loads(first.text)["case_no"]


READS_BY_ID = ["get_case", "list_page_rows", "open311_by_id", "open311_by_ids", "open311_by_token",
               "action_lock", "photo_lock", "scheduler_lock"]


@pytest.mark.parametrize("reader", READS_BY_ID)
def test_reads_by_id_plan_only_the_cases_own_month(small_demo: Engine, reader: str) -> None:
    """A case read by its id (or number) reads its month of "case" only: the month comes from case_key
    (spatial/cases/rows.py) and is named as a constant, so the others are not even planned — every statement
    the read sends to "case" is checked."""
    from spatial.cases import actions, open311, photos, read, rows, scheduler

    with small_demo.connect() as conn:
        ref = ReferenceCache.load(conn)
        case_id, case_no, month = conn.execute(text(
            "SELECT id, case_no, to_char(reported_at AT TIME ZONE 'Asia/Shanghai', '\"case_p\"YYYY_MM')"
            ' FROM "case" WHERE reported_at >= :a AND reported_at < :b ORDER BY id LIMIT 1'),
            {"a": WEEK[0], "b": WEEK[1]}).one()
    calls = {
        "get_case": lambda c: read.get_case(c, ref, case_id, by=ADMIN),
        "list_page_rows": lambda c: list_cases(c, ref, CaseFilter(since=WEEK[0], until=WEEK[1], limit=5), by=ADMIN),
        "open311_by_id": lambda c: open311.get_request(c, ref, str(case_id), by=ADMIN),
        "open311_by_ids": lambda c: list_requests(c, ref, RequestFilter(ids=[case_id], limit=5), by=ADMIN),
        "open311_by_token": lambda c: open311.request_token(c, case_no, by=ADMIN),
        "action_lock": lambda c: rows.one_case(c, actions._CASE, case_id),
        "photo_lock": lambda c: photos.case_row(c, case_id, lock=True),
        "scheduler_lock": lambda c: rows.one_case(c, scheduler._LOCK, case_id),
    }
    sent = _sent(small_demo, calls[reader])
    assert sent
    with small_demo.connect() as conn:
        for statement in sent:
            assert case_months_planned(conn, *as_text(statement)) == {month}, statement[0][:200]


def test_a_case_moved_between_the_two_reads_is_still_found(small_demo: Engine, monkeypatch) -> None:
    """case_key names a month the case has just left (its report moved): the read by id looks again — a page
    of rows in every month, one case in the month case_key names now — instead of answering "no such case"."""
    from spatial.cases import rows

    real = rows.case_months
    with small_demo.connect() as conn:
        case_id = conn.execute(text('SELECT id FROM "case" ORDER BY id LIMIT 1')).scalar_one()
        monkeypatch.setattr(rows, "case_months", lambda _conn, ids: {int(i): datetime(2019, 1, 5, tzinfo=UTC)
                                                                     for i in ids})
        assert [r["id"] for r in rows.case_rows(conn, [case_id])] == [case_id]
        for read in (lambda: rows.one_case(conn, 'SELECT id FROM "case" WHERE id = :id __MONTH__', case_id),
                     lambda: rows.lock_case(conn, case_id)):
            calls: list[int] = []

            def stale_once(_conn, ids, calls=calls):
                calls.append(1)  # the first read finds the month the case left, the next its new one
                return ({int(i): datetime(2019, 1, 5, tzinfo=UTC) for i in ids} if len(calls) == 1
                        else real(_conn, ids))

            monkeypatch.setattr(rows, "case_months", stale_once)
            assert read() and len(calls) == 2


def test_a_skipped_locked_case_is_not_looked_for_in_every_month(small_demo: Engine) -> None:
    """The scheduler's FOR UPDATE SKIP LOCKED read of a case another transaction holds finds no row: its month
    has not changed, so the read ends there (before, it read every month again, for nothing)."""
    from spatial.cases import rows, scheduler

    with small_demo.connect() as holder, small_demo.connect() as sweeper:
        case_id = holder.execute(text('SELECT id FROM "case" ORDER BY id LIMIT 1')).scalar_one()
        assert rows.lock_case(holder, case_id)
        sent: list[str] = []
        event.listen(sweeper, "before_cursor_execute", lambda *a: sent.append(a[2]))
        assert rows.one_case(sweeper, scheduler._LOCK, case_id) is None
        assert [s for s in sent if '"case"' in s and "reported_at = " not in s] == []  # each read bounded
        holder.rollback()


def _intake_generic_plan(engine: Engine, category: str, lon: float, lat: float, at: datetime) -> dict:
    """EXPLAIN ANALYZE (JSON) of the intake statement run as the server runs it: prepared, generic plan; the
    write rolled back."""
    from spatial.cases.assignment.rules import AssignmentInput, report_params
    from spatial.store.sql import positional

    with engine.connect() as conn:
        ref = ReferenceCache.load(conn)
    params = {**report_params(AssignmentInput(ref.categories[category], lon, lat, at)),
              "source": "inspector", "description": "t", "actor": "test", "deadline": at, "reporter_name": None,
              "reporter_phone": None, "idempotency_key": None, "scope_area": None, "audit_who": "t",
              "audit_role": "admin", "audit_client": None}
    sql, order = positional("intake")
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN")
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE t_intake AS {sql}")
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) EXECUTE t_intake("
                           + ", ".join(["%s"] * len(order)) + ")", [params[k] for k in order])
            return cursor.fetchone()[0][0]["Plan"]
        finally:
            cursor.execute("ROLLBACK")
            cursor.execute("DEALLOCATE ALL")  # a prepared statement outlives the transaction (pooled connection)


def test_the_intakes_generic_plan_starts_only_the_months_of_its_duplicate_window(small_demo: Engine) -> None:
    """The intake runs as a prepared generic plan (spatial/store/sql run_prepared): its probe for an open
    original nearby names its window as parameters (:dup_from, :dup_to), so the executor drops every other month
    of "case" before it starts (initial pruning: the others are not in the executed plan at all, not merely
    never run)."""
    at = datetime(2026, 11, 12, 2, 0, tzinfo=UTC)  # the 24 hours before it lie in November
    plan = _intake_generic_plan(small_demo, "E010401", 120.06, 31.17, at)
    # the nearby probe: the Append over the months whose scans search by location (the same-component probe
    # reads each month's component index); every month it starts
    appends = [n for n in plan_nodes(plan) if n["Node Type"] in ("Append", "Merge Append")
               and any("location &&" in c.get("Index Cond", "") + c.get("Recheck Cond", "") for c in plan_nodes(n))]
    assert len(appends) == 1, appends
    started = case_months_in(appends[0])
    assert started == {"case_p2026_11"}, started


def test_the_same_component_probe_reads_the_components_open_cases_of_its_window(full_demo: Engine) -> None:
    """The duplicate probe on the same component runs only for a report with a component, through the
    component's open cases of the 24 hours (``ix_case_open_component_code``: component and report time,
    migration 0037) — not through the category's B-tree, nor the time in ix_case_open_location, which hold every
    case (every open original) of the 24 hours: 3 ms an intake where a category is busy, more at province scale.
    Its window names the months as parameters: the executor starts only the window's month (before 0037 it
    probed the component index of every month). On the full demo: on the small one's few open originals (74)
    the planner takes either index, each of a few rows."""
    with full_demo.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(c.geom), ST_Y(c.geom) FROM component c"
                                     " WHERE c.class_code = '0101' AND c.status = 'intact' ORDER BY c.code LIMIT 1")
                                ).one()
    plan = _intake_generic_plan(full_demo, "E010401", lon, lat, datetime(2026, 11, 12, 2, 0, tzinfo=UTC))
    with full_demo.connect() as conn:
        used = root_indexes(conn, [n["Index Name"] for n in plan_nodes(plan) if "Index Name" in n])
        probes = [n for n in plan_nodes(plan) if n["Node Type"] in ("Append", "Merge Append")
                  and "ix_case_open_component_code" in root_indexes(
                      conn, [c["Index Name"] for c in plan_nodes(n) if "Index Name" in c])]
    assert "ix_case_category_code_reported_at" not in used, used
    assert "ix_case_open_component_code" in used, used
    assert len(probes) == 1 and case_months_in(probes[0]) == {"case_p2026_11"}, probes


def _event_months_planned(conn, sql: str, params: dict) -> set[str]:
    """The months of case_event in a statement's plan (plan-time pruning: the others are not even planned)."""
    plan = conn.execute(text("EXPLAIN (COSTS OFF, FORMAT JSON) " + sql), params).scalar()[0]["Plan"]
    return {n["Relation Name"] for n in plan_nodes(plan)
            if re.fullmatch(r"case_event_(?:p\d{4}_\d{2}|default)", n.get("Relation Name", ""))}


def _trail_statements(engine: Engine, call) -> list[tuple[str, dict]]:
    """The statements ``call(conn)`` sends that read case_event, as text() takes them."""
    return [as_text(s) for s in _statements_on(engine, "case_event", call)]


TRAIL_READS = ["get_case", "load_trail", "inbox_trails", "inbox_orders", "open311_by_ids"]


@pytest.mark.parametrize("reader", TRAIL_READS)
def test_reads_of_a_trail_plan_only_its_months(small_demo: Engine, reader: str) -> None:
    """The events of a case (its history, the workflow's replay, the inbox's trails and orders, Open311's
    updated time) are read between the bounds case_key keeps for its trail (migration 0034), named as
    constants: only the months the trail spans are planned — every statement on case_event is checked."""
    from spatial.cases import actions, inbox, read, rows

    with small_demo.connect() as conn:
        ref = ReferenceCache.load(conn)
        case_id = conn.execute(text(
            'SELECT id FROM "case" WHERE reported_at >= :a AND reported_at < :b ORDER BY id LIMIT 1'),
            {"a": WEEK[0], "b": WEEK[1]}).scalar_one()
        spans = set(conn.execute(text(
            "SELECT DISTINCT to_char(at AT TIME ZONE 'Asia/Shanghai', '\"case_event_p\"YYYY_MM') FROM case_event"
            " WHERE case_id = :id"), {"id": case_id}).scalars())
        month = conn.execute(text("SELECT reported_at FROM case_key WHERE id = :id"), {"id": case_id}).scalar()
    assert spans == {"case_event_p2026_11"}
    calls = {
        "get_case": lambda c: read.get_case(c, ref, case_id, by=ADMIN),
        "load_trail": lambda c: actions.load_trail(c, case_id),
        "inbox_trails": lambda c: inbox._trails(c, [case_id], rows.trail_window(c, [case_id])),
        "inbox_orders": lambda c: inbox._orders(c, [case_id], [month], rows.trail_window(c, [case_id])),
        "open311_by_ids": lambda c: list_requests(c, ref, RequestFilter(ids=[case_id], limit=5), by=ADMIN),
    }
    sent = _trail_statements(small_demo, calls[reader])
    assert sent
    with small_demo.connect() as conn:
        for sql, params in sent:
            assert _event_months_planned(conn, sql, params) == spans, sql[:200]


def test_the_trail_bounds_hold_every_event(small_demo: Engine) -> None:
    """The demo's events came by COPY under session_replication_role = replica: the statement trigger
    case_event_trail kept every case's bounds exactly (the report time or its events' first and last). An
    event written outside them — before the report, months ahead — widens them in its statement, and the
    case's trail then reads it."""
    from spatial.cases import actions

    with small_demo.connect() as conn:
        assert _trail_bounds_off(conn) == 0
        case_id = conn.execute(text('SELECT id FROM "case" ORDER BY id LIMIT 1')).scalar_one()
        before = len(actions.load_trail(conn, case_id)[0])
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor) VALUES"
                          " (:c, '2026-01-15 10:00+08', 'link', 'x'), (:c, '2027-02-01 10:00+08', 'link', 'x')"),
                     {"c": case_id})
        bounds = conn.execute(text("SELECT trail_from, trail_to FROM case_key WHERE id = :id"), {"id": case_id}).one()
        assert bounds == (datetime(2026, 1, 15, 2, tzinfo=UTC), datetime(2027, 2, 1, 2, tzinfo=UTC))
        assert len(actions.load_trail(conn, case_id)[0]) == before + 2
        conn.rollback()


def _months_planned_of(conn, table: str, sql: str, params: dict) -> set[str]:
    """The months of ``table`` (case_unit, case_photo) in a statement's plan."""
    plan = conn.execute(text("EXPLAIN (COSTS OFF, FORMAT JSON) " + sql), params).scalar()[0]["Plan"]
    return {n["Relation Name"] for n in plan_nodes(plan)
            if re.fullmatch(rf"{table}_(?:p\d{{4}}_\d{{2}}|default)", n.get("Relation Name", ""))}


UNIT_PHOTO_READS = ["list_photos", "photo_bytes", "photo_refs", "units", "scheduler_unit"]


@pytest.mark.parametrize("reader", UNIT_PHOTO_READS)
def test_reads_of_a_cases_units_and_photos_plan_only_its_month(small_demo: Engine, reader: str) -> None:
    """case_unit and case_photo are partitioned with their case (migration 0035): a read of one case's units
    or photos names the case's month and plans that month only."""
    from spatial.cases import joint, photos, scheduler

    with small_demo.begin() as conn:
        case_id, at = conn.execute(text(
            'SELECT id, reported_at FROM "case" WHERE reported_at >= :a AND reported_at < :b ORDER BY id LIMIT 1'),
            {"a": WEEK[0], "b": WEEK[1]}).one()
        conn.execute(text("INSERT INTO case_unit (case_id, unit_key, role, state, dispatched_at, reported_at)"
                          " VALUES (:id, 'SZ-PARKS', 'assist', 'dispatched', now(), gridlink_case_month(:id))"),
                     {"id": case_id})
        photo = conn.execute(text(
            "INSERT INTO case_photo (case_id, actor, media_type, width, height, size, sha256, data, thumb,"
            " reported_at) VALUES (:id, 'x', 'image/jpeg', 1, 1, 3, repeat('c', 64), 'abc', 'ab',"
            " gridlink_case_month(:id)) RETURNING id"), {"id": case_id}).scalar_one()
    month = f"{at.astimezone(ZoneInfo('Asia/Shanghai')):p%Y_%m}"
    calls = {
        "list_photos": ("case_photo", lambda c: photos.list_photos(c, case_id, by=ADMIN)),
        "photo_bytes": ("case_photo", lambda c: photos.photo_bytes(c, case_id, photo, by=ADMIN)),
        "photo_refs": ("case_photo", lambda c: photos.check_refs(c, case_id, [f"photo:{photo}"])),
        "units": ("case_unit", lambda c: joint.units(c, case_id)),
        "scheduler_unit": ("case_unit", lambda c: c.execute(scheduler._UNIT, {"case": case_id, "unit": "SZ-PARKS"})),
    }
    table, call = calls[reader]
    try:
        sent = [as_text(s) for s in _statements_on(small_demo, table, call)]
        assert sent
        with small_demo.connect() as conn:
            for sql, params in sent:
                planned = _months_planned_of(conn, table, sql, params)
                # a STABLE month (gridlink_case_month) prunes when the statement starts: planned, not read
                assert planned == {f"{table}_{month}"} or "gridlink_case_month" in sql, (sql[:200], planned)
                assert _months_read_of(conn, table, sql, params) <= {f"{table}_{month}"}, sql[:200]
    finally:
        with small_demo.begin() as conn:
            conn.execute(text("DELETE FROM case_unit WHERE case_id = :id"), {"id": case_id})
            conn.execute(text("DELETE FROM case_photo WHERE id = :p"), {"p": photo})


def _statements_on(engine: Engine, table: str, call) -> list[tuple[str, Any]]:
    """The statements ``call(conn)`` sends that name ``table``."""
    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if table in statement:
            sent.append((statement, parameters))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", record)
        call(conn)
        event.remove(conn, "before_cursor_execute", record)
    return sent


def _months_read_of(conn, table: str, sql: str, params: dict) -> set[str]:
    """The months of ``table`` a statement reads (scan nodes run at least once)."""
    plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + sql),
                        params).scalar()[0]["Plan"]
    return {n["Relation Name"] for n in plan_nodes(plan) if n.get("Actual Loops", 0) > 0
            and re.fullmatch(rf"{table}_(?:p\d{{4}}_\d{{2}}|default)", n.get("Relation Name", ""))}


def test_the_scheduler_reads_each_candidates_trail_in_its_months(small_demo: Engine) -> None:
    """The scheduler's sweep reads, per candidate, its trail's events between case_key's bounds: the bounds are
    known per row only, so the other months are dropped as each sub-select runs (run-time pruning) — of
    case_event, only the month of the candidates' trails is ever read."""
    from spatial.cases import scheduler

    with small_demo.connect() as conn:
        made = conn.execute(text(
            'UPDATE "case" SET step_deadline = now() WHERE state = ANY(:s) AND reported_at >= :a'),
            {"s": list(scheduler.STATES), "a": WEEK[0]}).rowcount
        assert made > 10
        plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) "
                                 + scheduler._CANDIDATES.text),
                            {"states": list(scheduler.STATES), **open_span(conn)}).scalar()
        read = {n["Relation Name"] for n in plan_nodes(plan[0]["Plan"]) if n.get("Actual Loops", 0) > 0
                and n.get("Relation Name", "").startswith("case_event_")}
        planned = {n["Relation Name"] for n in plan_nodes(plan[0]["Plan"])
                   if n.get("Relation Name", "").startswith("case_event_")}
        conn.rollback()
    assert read == {"case_event_p2026_11"} and len(planned) > 2


def test_the_inbox_reads_each_cases_trail_in_its_months(small_demo: Engine) -> None:
    """The inbox's duty clauses (trail checks, the pending request's author) read each case's events between
    its trail's bounds, per case as they run: the empty months made ahead and the default partition, which an
    unbounded probe would read for every case, are never read."""
    from spatial.cases import inbox

    by = Principal(account_id=0, login="t", role="dispatcher", scope="*")
    with small_demo.connect() as conn:
        span = open_span(conn)
    sql = str(inbox.page_query(by, inbox.InboxQuery(), span).compile(small_demo,
                                                                      compile_kwargs={"literal_binds": True}))
    with small_demo.connect() as conn:
        plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + sql)).scalar()
        spans = set(conn.execute(text(
            "SELECT DISTINCT to_char(at AT TIME ZONE 'Asia/Shanghai', '\"case_event_p\"YYYY_MM') FROM case_event"
        )).scalars())
    read = {n["Relation Name"] for n in plan_nodes(plan[0]["Plan"]) if n.get("Actual Loops", 0) > 0
            and n.get("Relation Name", "").startswith("case_event_")}
    assert read and read <= spans and "case_event_default" not in read
