"""Benchmark: migration 0028 (monthly partitions of case_event and audit_log) in place on the full demo, and
three reads before and after it (issue 22 item 1); with ``--part cases``, migration 0031 (monthly partitions of
"case" itself) and the reads of cases before and after it (``_cases`` below says which).

    .venv/bin/python -m bench.partitions [--rounds 5]
    .venv/bin/python -m bench.partitions --part cases [--rounds 5] [--source DATABASE]
    .venv/bin/python -m bench.partitions --part pruning [--rounds 5]

``--part pruning`` (``_pruning`` below): on a copy of the template at head, the reads that name their months of
"case" against the same reads over every month, interleaved in each round — a case by id (``case_rows``: the
month from ``case_key``, then one month; reference: the same statement without the month), a case by number
(Open311's token: ``case_key`` then one month; reference: ``"case"`` by ``case_no``), and the intake's
prepared statement (its duplicate window as parameters; reference: the same statement with an unbounded window,
which starts every month as before), and the events of a case (the workflow's ``load_trail``: the trail's
bounds from ``case_key``, then its months; reference: the same statement with unbounded times, every month as
before migration 0034), the workflow's UPDATE of a case (in its month, against by id alone as before session
14), and two reads of open cases of any age: the city's inbox, first page with its counts
(``inbox``), and the z14 tile of open cases holding the month's first case — in the months of open cases
(migration 0036, ``open_span``) against the same statements with an unbounded span (every month, as before).
Every write rolled back. Then the two open reads again on a city that settles its months: the copy's open
cases of every month before the last two are closed and the months narrowed (``narrow_open_months``).

1. A private copy of the full-demo template (bench/intake.py ``fresh_copy``: ~580,000 cases, ~3.9 million
   events), ``gridlink_bench_partitions``, upgraded to 0026 (the template is never migrated here; the time of
   that prelude is printed for the record: on an old template it is the workflow's backfills).
2. Before: a warm-up round (not counted), then R rounds, each timing once (a) the evaluation of one month by
   town (``spatial.cases.kpi.evaluate`` as a city-wide account, the rollup path GET /api/v1/kpi takes), (b)
   the case list of that month, first page of 100 (``list_cases``, GET /api/v1/cases?since&until), (c) one
   case with its event history (``get_case``, GET /api/v1/cases/{id}), on 50 cases of the month. Medians.
3. The upgrade to 0028, timed: minutes, rows moved (events and audit rows), rows/s; then ``VACUUM (ANALYZE)``
   of both tables, timed apart (a migration runs in one transaction and cannot vacuum; the copy before it
   comes from a vacuumed template, so without it the reads after would meet unvacuumed pages).
4. After: the same reads, same rounds; the ratio after / before (the reference is the same database, same
   run, before the migration). The copy is dropped at the end.
Writes bench/results/partitions.json.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import create_engine, text

from bench import machine, save
from bench.intake import TEMPLATE, fresh_copy
from migrations import alembic_config
from spatial.access.principal import Principal
from spatial.cases import kpi
from spatial.cases.read import CaseFilter, get_case, list_cases
from spatial.reference.cache import ReferenceCache
from spatial.settings import DatabaseSettings
from spatial.store.db import database_url

SCRATCH = "gridlink_bench_partitions"
LOCAL = ZoneInfo("Asia/Shanghai")
MONTH = (datetime(2026, 9, 1, tzinfo=LOCAL), datetime(2026, 10, 1, tzinfo=LOCAL))
ADMIN = Principal(account_id=0, login="bench", role="admin", scope="*")


def _reads(url: str, rounds: int) -> dict[str, float]:
    """Median seconds of each read over ``rounds`` rounds."""
    engine = create_engine(url)
    times: dict[str, list[float]] = {"kpi_month": [], "case_list_month": [], "case_with_history": []}
    with engine.connect() as conn:
        ref = ReferenceCache.load(conn)
        ids = list(conn.execute(text('SELECT id FROM "case" WHERE reported_at >= :a AND reported_at < :b'
                                     " ORDER BY id LIMIT 50"), {"a": MONTH[0], "b": MONTH[1]}).scalars())
        conn.rollback()
        for _ in range(rounds + 1):  # the first is a warm-up: its times are dropped below
            started = time.perf_counter()
            kpi.evaluate(conn, kpi.KpiQuery(group="town", start=MONTH[0], end=MONTH[1]), by=ADMIN)
            conn.rollback()
            times["kpi_month"].append(time.perf_counter() - started)
            started = time.perf_counter()
            list_cases(conn, ref, CaseFilter(since=MONTH[0], until=MONTH[1], limit=100), by=ADMIN)
            conn.rollback()
            times["case_list_month"].append(time.perf_counter() - started)
            started = time.perf_counter()
            for case_id in ids:
                get_case(conn, ref, case_id, by=ADMIN)
            conn.rollback()
            times["case_with_history"].append((time.perf_counter() - started) / len(ids))
    engine.dispose()
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--part", choices=("trails", "cases", "pruning"), default="trails")
    parser.add_argument("--source", default=TEMPLATE, help="the database copied (--part cases; at 0028 or older)")
    args = parser.parse_args()
    settings = DatabaseSettings()
    if args.part == "cases":
        _cases(settings, args.rounds, args.source)
        return
    if args.part == "pruning":
        _pruning(settings, args.rounds)
        return
    url = fresh_copy(settings, SCRATCH)
    config = alembic_config(url)
    started = time.perf_counter()
    command.upgrade(config, "0026_component_upload_jobs")
    prelude = time.perf_counter() - started
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ("case_event", "audit_log")}
        conn.execute(text("ANALYZE"))
        conn.commit()
    before = _reads(url, args.rounds)
    started = time.perf_counter()
    command.upgrade(config, "0028_monthly_partitions")
    migration = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) case_event, audit_log"))
    vacuum = time.perf_counter() - started
    with engine.connect() as conn:
        partitions = conn.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'case_event'::regclass")
                                  ).scalar_one()
        kept = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in rows}
    engine.dispose()
    after = _reads(url, args.rounds)
    moved = sum(rows.values())
    result = {
        "machine": machine(), "rounds": args.rounds, "prelude_upgrade_to_0026_s": round(prelude, 1),
        "rows": rows, "rows_after": kept, "case_event_partitions": partitions,
        "migration_s": round(migration, 1), "vacuum_after_s": round(vacuum, 1),
        "migration_min": round(migration / 60, 2),
        "rows_per_s": round(moved / migration), "before_s": before, "after_s": after,
        "ratio_after_before": {k: round(after[k] / before[k], 2) for k in before},
    }
    save("partitions.json", result)
    print(f"{machine()}; prelude (upgrade of the copy to 0026): {prelude:.0f} s")
    print(f"migration 0028: {migration / 60:.2f} min, {moved:,} rows ({rows['case_event']:,} events,"
          f" {rows['audit_log']:,} audit rows) into {partitions} partitions of case_event:"
          f" {moved / migration:,.0f} rows/s; rows kept: {kept == rows}; VACUUM ANALYZE after: {vacuum:.0f} s")
    print(f"{'read':<22}{'before ms':>12}{'after ms':>12}{'after/before':>14}")
    for name in before:
        print(f"{name:<22}{before[name] * 1000:>12.1f}{after[name] * 1000:>12.1f}{after[name] / before[name]:>14.2f}")
    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
    admin.dispose()


CASE_READS = ("kpi_month", "case_list_month", "case_by_id", "case_with_history", "open311_by_token",
              "inbox_page", "intake_with_duplicate_probe", "open_case_tile_z14", "open_cases_count")


def _case_reads(url: str, rounds: int) -> dict[str, float]:
    """Median seconds of each read of "case" over ``rounds`` rounds (after one warm-up round). Every write is
    rolled back. The reads with a time bound (the month's KPI and list), the reads by id or number (one case, with
    and without its trail, 50 cases a round; Open311's token), and those of open cases of any age (the inbox's
    first page, an intake's duplicate probe, a z14 tile of open cases, their count)."""
    from pydantic import TypeAdapter

    from spatial.cases.inbox import InboxQuery, inbox
    from spatial.cases.intake import create_case
    from spatial.cases.open311 import request_token
    from spatial.cases.schemas import CaseCreate
    from spatial.store.partitions import open_span
    from tiles.layers import LAYERS, tile_params, tile_sql

    engine = create_engine(url)
    times: dict[str, list[float]] = {name: [] for name in CASE_READS}
    with engine.connect() as conn:
        ref = ReferenceCache.load(conn)
        rows = conn.execute(text('SELECT id, case_no, ST_X(location), ST_Y(location), category_code FROM "case"'
                                 " WHERE reported_at >= :a AND reported_at < :b ORDER BY id LIMIT 50"),
                            {"a": MONTH[0], "b": MONTH[1]}).all()
        lon, lat, category = rows[0][2], rows[0][3], rows[0][4]
        # the z14 tile holding the month's first case: x, y from its position
        z = 14
        x = int((lon + 180) / 360 * 2**z)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
        tile = text(tile_sql(LAYERS["cases"], z))
        conn.rollback()

        def timed(name: str, work, per: int = 1) -> None:
            started = time.perf_counter()
            work()
            conn.rollback()
            times[name].append((time.perf_counter() - started) / per)

        adapter = TypeAdapter(CaseCreate)
        body = {"category": category, "source": "inspector", "location": {"type": "Point", "coordinates": [lon, lat]}}
        for _ in range(rounds + 1):
            timed("kpi_month", lambda: kpi.evaluate(conn, kpi.KpiQuery(group="town", start=MONTH[0], end=MONTH[1]),
                                                    by=ADMIN))
            timed("case_list_month", lambda: list_cases(conn, ref, CaseFilter(since=MONTH[0], until=MONTH[1],
                                                                              limit=100), by=ADMIN))
            timed("case_by_id", lambda: [get_case(conn, ref, r[0], with_history=False, by=ADMIN) for r in rows],
                  len(rows))
            timed("case_with_history", lambda: [get_case(conn, ref, r[0], by=ADMIN) for r in rows], len(rows))
            timed("open311_by_token", lambda: [request_token(conn, r[1], by=ADMIN) for r in rows], len(rows))
            timed("inbox_page", lambda: inbox(conn, ref, InboxQuery(limit=50), by=ADMIN))
            timed("intake_with_duplicate_probe", lambda: create_case(conn, ref, adapter.validate_python(body),
                                                                     actor="bench", by=ADMIN))
            timed("open_case_tile_z14", lambda: conn.execute(tile, tile_params(z, x, y, span=open_span(conn))).scalar())
            timed("open_cases_count", lambda: conn.execute(text(
                "SELECT count(*) FROM \"case\" WHERE state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"
            )).scalar())
    engine.dispose()
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def _cases(settings: DatabaseSettings, rounds: int, source: str) -> None:
    """Migration 0031 on a copy of ``source`` (upgraded to 0030 first): reads before, the migration, VACUUM,
    reads after; bench/results/case_partitions.json."""
    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{SCRATCH}" TEMPLATE "{source}"'))  # names from the command line
    url = database_url(settings, SCRATCH)
    config = alembic_config(url)
    started = time.perf_counter()
    command.upgrade(config, "0030_kpi_rollup_area_index")
    prelude = time.perf_counter() - started
    engine = create_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text('VACUUM (ANALYZE) "case"'))
        cases = conn.execute(text('SELECT count(*) FROM "case"')).scalar_one()
        opened = conn.execute(text("SELECT count(*) FROM \"case\" WHERE state NOT IN ('closed', 'voided')")).scalar()
    before = _case_reads(url, rounds)
    started = time.perf_counter()
    command.upgrade(config, "0031_case_partitions")
    migration = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text('VACUUM (ANALYZE) "case", case_key'))
        vacuum = time.perf_counter() - started
        months = conn.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST('\"case\"' AS regclass)")
                              ).scalar_one()
        kept = conn.execute(text('SELECT count(*) FROM "case"')).scalar_one()
        keys = conn.execute(text("SELECT count(*) FROM case_key")).scalar_one()
    engine.dispose()
    after = _case_reads(url, rounds)
    result = {
        "machine": machine(), "source": source, "rounds": rounds, "prelude_upgrade_to_0028_s": round(prelude, 1),
        "cases": cases, "open_cases": opened, "cases_after": kept, "keys_after": keys, "case_partitions": months,
        "migration_s": round(migration, 1), "vacuum_after_s": round(vacuum, 1),
        "rows_per_s": round(cases / migration), "before_s": before, "after_s": after,
        "ratio_after_before": {k: round(after[k] / before[k], 2) for k in before},
    }
    save("case_partitions.json", result)
    print(f"{machine()}; prelude (upgrade of the copy of {source} to 0028): {prelude:.0f} s")
    print(f"migration 0031: {migration:.1f} s, {cases:,} cases ({opened:,} open) into {months} partitions:"
          f" {cases / migration:,.0f} rows/s; rows kept: {kept == cases == keys}; VACUUM ANALYZE after: {vacuum:.0f} s")
    print(f"{'read':<30}{'before ms':>12}{'after ms':>12}{'after/before':>14}")
    for name in before:
        print(f"{name:<30}{before[name] * 1000:>12.2f}{after[name] * 1000:>12.2f}{after[name] / before[name]:>14.2f}")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
    admin.dispose()


def _pruning(settings: DatabaseSettings, rounds: int) -> None:
    """Reads that prune to their months against the same reads over every month (see the module docstring);
    bench/results/case_pruning.json."""
    from datetime import UTC

    from bench.intake import scratch_at_head
    from spatial.cases.actions import _EVENTS, load_trail
    from spatial.cases.assignment.rules import AssignmentInput, report_params
    from spatial.cases.open311 import request_token
    from spatial.cases.rows import case_rows
    from spatial.store.sql import run_prepared, statement

    url = scratch_at_head(settings, "gridlink_bench_pruning")
    engine = create_engine(url)
    from spatial.cases import inbox as inbox_module
    from spatial.cases.inbox import InboxQuery
    from spatial.store.partitions import narrow_open_months, open_span
    from tiles.layers import LAYERS, tile_params, tile_sql

    names = ("by_id", "by_id_every_month", "by_token", "by_token_every_month", "intake", "intake_every_month",
             "trail", "trail_every_month", "update", "update_every_month", "inbox", "inbox_every_month", "tile",
             "tile_every_month")
    with engine.connect() as conn:
        months = conn.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST('\"case\"' AS regclass)")
                              ).scalar_one()
        ref = ReferenceCache.load(conn)
        rows = conn.execute(text('SELECT id, case_no, ST_X(location), ST_Y(location), category_code, reported_at'
                                 ' FROM "case" WHERE reported_at >= :a AND reported_at < :b ORDER BY id LIMIT 50'),
                            {"a": MONTH[0], "b": MONTH[1]}).all()
        cat = ref.categories[rows[0][4]]
        conn.rollback()

        def intake(unbounded: bool) -> None:
            at = datetime.now(UTC)
            params = {**report_params(AssignmentInput(cat, rows[0][2], rows[0][3], at)), "source": "inspector",
                      "description": "bench", "actor": "bench", "reporter_name": None, "reporter_phone": None,
                      "idempotency_key": None, "scope_area": None, "audit_who": "bench", "audit_role": "admin",
                      "audit_client": None, "deadline": at}
            if unbounded:  # the same prepared statement, its window open: every month started, as before
                params |= {"dup_from": "-infinity", "dup_to": "infinity"}
            with conn.begin():
                run_prepared(conn, "intake", params)
                conn.rollback()

        every_month = {"months": None}
        unbounded = {"trail_from": "-infinity", "trail_to": "infinity"}
        every_open = {"open_from": "-infinity", "open_to": "infinity"}
        z = 14  # the z14 tile holding the month's first case
        tile_xy = (int((rows[0][2] + 180) / 360 * 2**z),
                   int((1 - math.asinh(math.tan(math.radians(rows[0][3]))) / math.pi) / 2 * 2**z))
        tile = text(tile_sql(LAYERS["cases"], z))

        def open_inbox(bounded: bool) -> None:
            """The city's inbox, first page: its page and counts in the open cases' months, or in every month
            (the same statements with an unbounded span, as before migration 0036)."""
            if bounded:
                inbox_module.inbox(conn, ref, InboxQuery(limit=50), by=ADMIN)
                return
            inbox_module.open_span = lambda _conn: dict(every_open)
            try:
                inbox_module.inbox(conn, ref, InboxQuery(limit=50), by=ADMIN)
            finally:
                inbox_module.open_span = open_span
        work = {
            "by_id": lambda: [case_rows(conn, [r[0]]) for r in rows],
            "by_id_every_month": lambda: [conn.execute(statement("case_get"), {"ids": [r[0]], **every_month}).all()
                                          for r in rows],
            "by_token": lambda: [request_token(conn, r[1], by=ADMIN) for r in rows],
            "by_token_every_month": lambda: [conn.execute(text(
                'SELECT id, case_no, source, grid_code, special_grid_codes, owner_key FROM "case"'
                " WHERE case_no = :t"), {"t": r[1]}).all() for r in rows],
            "trail": lambda: [load_trail(conn, r[0]) for r in rows],
            "trail_every_month": lambda: [conn.execute(_EVENTS, {"id": r[0], **unbounded}).all() for r in rows],
            "intake": lambda: [intake(False) for _ in range(10)],
            "intake_every_month": lambda: [intake(True) for _ in range(10)],
            # the workflow's write of its case (spatial/cases/actions.py), in its month or by id alone
            "update": lambda: [conn.execute(text('UPDATE "case" SET revision = revision WHERE id = :id'
                                                 " AND reported_at = :m"), {"id": r[0], "m": r[5]}) for r in rows],
            "update_every_month": lambda: [conn.execute(text('UPDATE "case" SET revision = revision WHERE id = :id'),
                                                        {"id": r[0]}) for r in rows],
            "inbox": lambda: open_inbox(True),
            "inbox_every_month": lambda: open_inbox(False),
            "tile": lambda: conn.execute(tile, tile_params(z, *tile_xy, span=open_span(conn))).scalar(),
            "tile_every_month": lambda: conn.execute(tile, tile_params(z, *tile_xy, span=every_open)).scalar(),
        }
        per = {"intake": 10, "intake_every_month": 10, "inbox": 1, "inbox_every_month": 1, "tile": 1,
               "tile_every_month": 1}

        def measure(chosen: tuple[str, ...]) -> dict[str, float]:
            times = {name: [] for name in chosen}
            for n in range(rounds + 1):  # the first round warms up (dropped); the pair's order alternates
                pairs = [chosen[i:i + 2] for i in range(0, len(chosen), 2)]
                order = [name for pair in pairs for name in (pair if n % 2 == 0 else pair[::-1])]
                for name in order:
                    started = time.perf_counter()
                    work[name]()
                    if conn.in_transaction():
                        conn.rollback()
                    times[name].append((time.perf_counter() - started) / per.get(name, len(rows)))
            return {name: statistics.median(values[1:]) for name, values in times.items()}

        medians = measure(names)
        held = len(narrow_open_months(engine) or [])
        conn.rollback()
        # A city that settles its months: the demo's long-tracked (suspended) cases of every month but the last
        # two closed, the set narrowed — the open reads again.
        with engine.begin() as writer:
            writer.execute(text("UPDATE \"case\" SET state = 'closed' WHERE state NOT IN ('closed', 'voided')"
                                " AND reported_at < date_trunc('month', now(), 'Asia/Shanghai') - interval '1 month'"))
        settled_held = len(narrow_open_months(engine) or [])
        settled = measure(("inbox", "inbox_every_month", "tile", "tile_every_month"))
    engine.dispose()
    keys = ("by_id", "by_token", "intake", "trail", "update", "inbox", "tile")
    result = {"machine": machine(), "rounds": rounds, "months_of_case": months, "months_with_open_cases": held,
              "median_ms": {k: round(v * 1000, 3) for k, v in medians.items()},
              "ratio_pruned_over_every_month": {k: round(medians[k] / medians[f"{k}_every_month"], 2) for k in keys},
              "settled": {"months_with_open_cases": settled_held,
                          "median_ms": {k: round(v * 1000, 3) for k, v in settled.items()},
                          "ratio_pruned_over_every_month": {k: round(settled[k] / settled[f"{k}_every_month"], 2)
                                                            for k in ("inbox", "tile")}}}
    save("case_pruning.json", result)
    _print_pruning(result, keys)
    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "gridlink_bench_pruning" WITH (FORCE)'))
    admin.dispose()


def _print_pruning(result: dict, keys: tuple[str, ...]) -> None:
    medians, ratios, settled = result["median_ms"], result["ratio_pruned_over_every_month"], result["settled"]
    print(f"{machine()}; months of \"case\" attached: {result['months_of_case']},"
          f" {result['months_with_open_cases']} with open cases; medians of {result['rounds']} rounds")
    print(f"{'read':<12}{'pruned ms':>12}{'every month ms':>16}{'ratio':>8}")
    for k in keys:
        print(f"{k:<12}{medians[k]:>12.3f}{medians[f'{k}_every_month']:>16.3f}{ratios[k]:>8.2f}")
    print(f"settled (open cases only in the last {settled['months_with_open_cases']} months):")
    for k in ("inbox", "tile"):
        print(f"{k:<12}{settled['median_ms'][k]:>12.3f}{settled['median_ms'][f'{k}_every_month']:>16.3f}"
              f"{settled['ratio_pruned_over_every_month'][k]:>8.2f}")


if __name__ == "__main__":
    main()
