"""Monthly partitions of the case trails (issue 22 item 1, migration 0028, spatial/store/partitions.py).

One scratch database holds the small demo plus audit rows and a scheduler order: it is taken down to 0026 and
up again (every row kept: counts and a digest of every row, the evaluation's summaries and rollup unchanged),
then its partitions are maintained and archived through the CLI. The pruning tests read EXPLAIN ANALYZE of
the queries as the code sends them on the small demo (its history spans October and November 2026).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from api import cli
from migrations import alembic_config
from spatial.access.principal import Principal
from spatial.access.scope import CLOCK_SKEW
from spatial.cases import actions, kpi, rows
from spatial.cases.feed import _ROWS as feed_rows
from spatial.store.cluster import find_bindir
from spatial.store.partitions import EVENT_MARGIN, PARTITIONED, months
from tests.conftest import fresh_database

BEFORE = "0027_registry_page_indexes"
OLD = datetime(2019, 5, 10, 8, 0, tzinfo=UTC)  # an audit row of a month no partition is made for at first
TABLES = ("case_event", "audit_log", '"case"', "case_unit", "kpi_rollup")
ORDER_KEY = {"step": "dispatched", "deadline": "2026-11-20T00:00:00.000000Z"}


def _digest(engine: Engine) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of every row (in the order of their text) of the case tables."""
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            out[table] = tuple(conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")).one())
    return out


def _kinds(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT relname, relkind FROM pg_class WHERE relname = ANY(:t)"),
                                 {"t": list(PARTITIONED)}).tuples().all())


@pytest.fixture(scope="module")
def scratch() -> Iterator[Engine]:
    """The small demo with audit rows (one old) and an order event, in its own database."""
    from spatial.demo.build import build_demo

    url = fresh_database("gridlink_test_partitions")
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    build_demo(engine, small=True, progress=False)
    with engine.begin() as conn:
        case_id = conn.execute(text('SELECT min(id) FROM "case" WHERE state = \'dispatched\'')).scalar()
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role, data) VALUES"
                          " (:c, now(), 'remind', 'scheduler', 'system', CAST(:d AS jsonb))"),
                     {"c": case_id, "d": json.dumps(ORDER_KEY)})
        conn.execute(text("INSERT INTO audit_log (at, actor, action, target) VALUES (:old, 'cli:root', 'case.bulk',"
                          " 'old'), (now(), 'cli:root', 'case.create', 'new')"), {"old": OLD})
        conn.execute(text("GRANT SELECT ON case_event, audit_log TO PUBLIC"))  # a grant survives the conversion
    yield engine
    engine.dispose()


def test_the_migration_keeps_every_row_down_and_up(scratch: Engine) -> None:
    config = alembic_config(scratch.url.render_as_string(hide_password=False))
    at_head = _digest(scratch)
    assert at_head["case_event"][0] > 1000 and at_head["audit_log"][0] == 2
    assert _kinds(scratch) == {"case_event": "p", "audit_log": "p"}
    command.downgrade(config, BEFORE)
    assert _kinds(scratch) == {"case_event": "r", "audit_log": "r"}
    assert _digest(scratch) == at_head
    command.upgrade(config, "head")
    assert _kinds(scratch) == {"case_event": "p", "audit_log": "p"}
    assert _digest(scratch) == at_head  # the KPI summaries of "case" and the rollup too: no trigger fired twice
    with scratch.connect() as conn:
        for table in PARTITIONED:
            assert conn.execute(text("SELECT has_table_privilege('public', :t, 'SELECT')"), {"t": table}).scalar()
        names = {name for name, _, _ in months(conn, "case_event")}
        assert {"case_event_p2026_10", "case_event_p2026_11"} <= names  # the demo's months, from its oldest row
        # every row in a month of its own, none in the default partition; the old audit row in the default one
        assert conn.execute(text("SELECT count(*) FROM case_event_default")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM audit_log_default")).scalar() == 1
        # the triggers as they were, on every partition: the evaluation's summary fires ALWAYS
        enabled = set(conn.execute(text(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'case_event_kpi'")).scalars())
        assert enabled == {"A"}
        parts = conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname = 'case_event_append_only'")).scalar()
        assert parts == 1 + len(names) + 1  # parent, months, default
        assert conn.execute(text("SELECT count(*) FROM pg_constraint WHERE conname = 'fk_case_event_case_id_case'"
                                 " AND conrelid = CAST('case_event' AS regclass)")).scalar() == 1


def test_partitioned_trails_keep_their_rules(scratch: Engine) -> None:
    with scratch.connect() as conn:
        case_id, top = conn.execute(text("SELECT case_id, (SELECT max(id) FROM case_event) FROM case_event"
                                         " WHERE kind = 'remind'")).one()
    # the doubled order is still refused with its constraint's name, after the move
    with pytest.raises(IntegrityError, match="uq_case_event_order"), scratch.begin() as conn:
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor, role, data) VALUES"
                          " (:c, now(), 'remind', 'someone', 'system', CAST(:d AS jsonb))"),
                     {"c": case_id, "d": json.dumps(ORDER_KEY)})
    with pytest.raises(IntegrityError, match="fk_case_event_case_id_case"), scratch.begin() as conn:
        conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor) VALUES (-1, now(), 'link', 'x')"))
    for statement in ("UPDATE case_event SET note = 'x' WHERE id = :id", "DELETE FROM audit_log WHERE id > :id"):
        with pytest.raises(Exception, match="append-only"), scratch.begin() as conn:
            conn.execute(text(statement), {"id": 0 if "audit" in statement else top})
    with pytest.raises(Exception, match="append-only"), scratch.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))
    with scratch.begin() as conn:  # the sequence goes on where it was
        new = conn.execute(text("INSERT INTO case_event (case_id, at, kind, actor) VALUES (:c, now(), 'link', 'x')"
                                " RETURNING id"), {"c": case_id}).scalar()
        assert new > top  # (the refused inserts above took ids too)
        conn.rollback()


def test_the_margin_is_the_intake_clock_skew() -> None:
    assert EVENT_MARGIN == CLOCK_SKEW


def _read(conn, sql: str, params: dict) -> set[str]:
    """The partitions of the case trails a statement reads (scan nodes executed at least once)."""
    plan = conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) " + sql),
                        params).scalar()
    found: set[str] = set()

    def walk(node: dict) -> None:
        name = node.get("Relation Name", "")
        if name.startswith(PARTITIONED) and node.get("Actual Loops", 0) > 0:
            found.add(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def _november_case(conn) -> int:
    return conn.execute(text("SELECT id FROM \"case\" WHERE reported_at >= '2026-11-05+08'"
                             " ORDER BY id LIMIT 1")).scalar()


def _scans(conn, sql: str, params: dict) -> list[tuple[str, str]]:
    """Each scan of a case_event partition in a statement's plan, with the index it reads by ('' for none)."""
    conn.execute(text("SET LOCAL enable_seqscan = off"))  # tiny test tables must not hide a missing index
    plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + sql), params).scalar()
    found: list[tuple[str, str]] = []

    def index_below(node: dict) -> str:
        return node.get("Index Name") or next((i for c in node.get("Plans", []) if (i := index_below(c))), "")

    def walk(node: dict) -> None:
        if node.get("Relation Name", "").startswith("case_event"):
            found.append((node["Relation Name"], index_below(node)))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_the_reads_without_a_time_bound_stay_index_probes(small_demo: Engine) -> None:
    """The events of a case are read in the months of its trail (case_key's bounds, migration 0034) through
    each month's index; without known bounds, every month is probed the same way, never scanned. The live
    feed knows no time at all (docs/scale-out.md says why): each month through its index too."""
    with small_demo.connect() as conn:
        case_id = _november_case(conn)
        window = rows.trail_window(conn, [case_id])
        by_case = _scans(conn, actions._EVENTS.text, {"id": case_id, **window})
        assert {r for r, _ in by_case} == {"case_event_p2026_11"}
        unknown = _scans(conn, actions._EVENTS.text, {"id": case_id, "trail_from": "-infinity", "trail_to": "infinity"})
        assert {"case_event_p2026_10", "case_event_p2026_11", "case_event_default"} <= {r for r, _ in unknown}
        assert all(index.endswith("case_id_at_idx") for _, index in by_case + unknown), by_case + unknown
        feed = _scans(conn, feed_rows.text, {"xid": 0, "below": 2**40, "id": 0, "n": 100})
        # the months holding rows through their BRIN on xid (the feed's order); no month scanned whole
        assert {"case_event_p2026_10", "case_event_p2026_11"} <= {r for r, i in feed if i.endswith("xid_idx")}
        assert all(index for _, index in feed), feed
        conn.rollback()


@pytest.mark.parametrize("path", ["trail", "summary", "rollup"])
def test_kpi_for_a_period_reads_only_its_months(small_demo: Engine, path: str) -> None:
    """GET /api/v1/kpi: each of the evaluation's three readings (spatial/cases/kpi.py) reads the events of the
    period's month only (without ``events_from`` they read October and the default partition too)."""
    admin = Principal(account_id=0, login="t", role="admin", scope="*")
    query = kpi.KpiQuery(group="town", start=datetime(2026, 11, 3, tzinfo=UTC), end=datetime(2026, 11, 10, tzinfo=UTC))
    params = kpi._params(query, admin)
    sql = kpi.statement("town", trail=path == "trail")
    if path == "rollup":
        window = kpi.window(query.start, query.end)
        assert window is not None
        params |= window.params() | {"forever": "infinity"}
        sql = kpi.rollup_statement("town")
    with small_demo.connect() as conn:
        kpi._settle(conn)
        assert _read(conn, sql, params) == {"case_event_p2026_11"}


def test_the_cli_maintains_and_archives(scratch: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", scratch.url.render_as_string(hide_password=False))
    assert cli.main(["db", "maintain"]) == 0
    out = capsys.readouterr().out
    assert "audit_log:" in out and "1 rows moved out of audit_log_default" in out
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log_p2019_05")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM audit_log_default")).scalar() == 0
        newest = months(conn, "case_event")[-1][1]
        assert newest >= datetime.now(UTC).replace(day=1) .astimezone(UTC)  # months made ahead of now
        october = conn.execute(text("SELECT count(*) FROM case_event_p2026_10")).scalar()
        total = conn.execute(text("SELECT count(*) FROM case_event")).scalar()
    assert october > 0
    assert cli.main(["db", "archive", "--before", "2099-01"]) == 2
    assert cli.main(["db", "archive", "--before", "November"]) == 2
    dump = tmp_path / "archive"
    assert cli.main(["db", "archive", "--before", "2026-11", "--dump", str(dump)]) == 0
    assert "case_event_p2026_10" in capsys.readouterr().out
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_event")).scalar() == total - october
        assert conn.execute(text("SELECT to_regclass('case_event_p2026_10')")).scalar() is None
        assert conn.execute(text("SELECT to_regclass('audit_log_p2019_05')")).scalar() is None
    with scratch.connect() as conn:  # audited, as every write
        audited = conn.execute(text("SELECT target, detail FROM audit_log WHERE action = 'partition.archive'")).one()
    assert audited[0] == "2026-11" and "case_event_p2026_10" in audited[1]["months"]
    listed = subprocess.run([str(find_bindir() / "pg_restore"), "--list", str(dump / "case_event_p2026_10.dump")],
                            capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA public case_event_p2026_10" in listed


def test_the_scheduler_keeps_the_months_ahead(scratch: Engine) -> None:
    """``gridlink worker`` and ``serve --scheduler`` run maintain hourly (spatial/cases/jobs.py)."""
    from spatial.cases import jobs

    app = jobs.build(scratch.url.render_as_string(hide_password=False))
    assert jobs.PARTITIONS in app.tasks
    periodic = app.periodic_registry.periodic_tasks.values()
    assert any(p.task.name == jobs.PARTITIONS and p.cron == "23 * * * *" for p in periodic)
    with scratch.begin() as conn:  # a row of a month without a partition: the task moves it into its own
        conn.execute(text("INSERT INTO audit_log (at, actor, action) VALUES ('2018-02-03+08', 'cli:root', 'x')"))
    task = app.tasks[jobs.PARTITIONS]
    assert task.func(SimpleNamespace(additional_context={"engine": scratch}), 0) == 1
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log_p2018_02")).scalar() == 1
