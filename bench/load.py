"""Benchmark: build the full Suzhou demo, then COPY the very same rows into bare tables, in one run.

    .venv/bin/python -m bench.load [--small]

The reference is the floor for loading these rows at all: PostgreSQL's COPY of the finished rows (dumped
from the demo's own tables) into tables with the same columns and no index, constraint or trigger. The
ratio build / COPY says how much the generator, the indexes and the checks cost on top of raw I/O.
Results go to stdout and to bench/results/load.json; BENCHMARKS.md records them by hand.
"""

from __future__ import annotations

import argparse
import io
import time

from sqlalchemy import create_engine, text

from bench import machine, save
from migrations import alembic_config
from spatial.demo.build import build_demo
from spatial.settings import DatabaseSettings
from spatial.store.db import database_url

TABLES = ("grid", "grid_geometry", "team_member", "component", "component_history", "case", "case_event")
DBNAME = "gridlink_bench_load"


def fresh_engine():
    """Return an engine on a new, migrated benchmark database."""
    from alembic import command

    settings = DatabaseSettings()
    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DBNAME}"'))
    admin.dispose()
    url = database_url(settings, DBNAME)
    command.upgrade(alembic_config(url), "head")
    return create_engine(url)


def raw_copy(engine) -> dict[str, dict[str, float]]:
    """Dump each table's rows to memory, then time COPY of them into a bare twin table."""
    results: dict[str, dict[str, float]] = {}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table in TABLES:
            buffer = io.StringIO()
            cursor.copy_expert(f'COPY "{table}" TO STDOUT', buffer)
            rows = buffer.getvalue().count("\n")
            buffer.seek(0)
            started = time.perf_counter()
            cursor.execute(f'CREATE TABLE "bare_{table}" (LIKE "{table}")')
            cursor.copy_expert(f'COPY "bare_{table}" FROM STDIN', buffer)
            raw.commit()
            seconds = time.perf_counter() - started
            results[table] = {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}
            cursor.execute(f'DROP TABLE "bare_{table}"')
            raw.commit()
    finally:
        raw.close()
    return results


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="the small demo (a smoke test of this script)")
    args = parser.parse_args()
    engine = fresh_engine()
    started = time.perf_counter()
    report = build_demo(engine, small=args.small, force=True)
    build_seconds = time.perf_counter() - started
    copy = raw_copy(engine)
    engine.dispose()
    rows = sum(v["rows"] for v in copy.values())
    copy_seconds = sum(v["seconds"] for v in copy.values())
    result = {
        "machine": machine(),
        "small": args.small, "build_seconds": round(build_seconds, 1), "build_steps": report.seconds,
        "rows": rows, "copy_seconds": round(copy_seconds, 1), "copy_tables": copy,
        "ratio_build_over_copy": round(build_seconds / copy_seconds, 2),
    }
    print(f"\nfull demo build: {build_seconds:8.1f} s  ({rows:,} rows in the big tables)")
    print(f"raw COPY floor : {copy_seconds:8.1f} s  ({rows / copy_seconds:,.0f} rows/s into bare tables)")
    print(f"ratio build / COPY: {result['ratio_build_over_copy']}")
    for table, figures in copy.items():
        print(f"  {table:18s} {figures['rows']:>10,} rows  COPY {figures['seconds']:7.2f} s"
              f"  {figures['rows_per_s']:>10,} rows/s")
    save("load-small.json" if args.small else "load.json", result)


if __name__ == "__main__":
    main()
