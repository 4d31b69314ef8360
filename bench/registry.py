"""Benchmark: the component registry's survey import and export against GDAL's ogr2ogr as the floor.

    .venv/bin/python -m bench.registry [--limit N] [--keep]

1. A scratch copy of the full-demo template (bench/intake.py builds it; run that once first) holds Wuzhong's
   680,000 components; with ``--limit N`` only the first N (by code) are kept, for a shorter run.
2. Export: ``gridlink export components survey.gpkg`` (server-side cursor → Arrow → GDAL) against
   ``ogr2ogr -f GPKG`` from the same table and the same columns; ratio = ours / ogr2ogr.
3. The survey: the export without its owner columns (an owner's survey with code, name, status, note, date).
   The registry is emptied, then:
   - floor: ``ogr2ogr -f PostgreSQL`` loads the survey into a bare PostGIS table (no rules, no grid);
   - ours: ``gridlink import components survey.gpkg --owner URBAN`` — every row validated by the registry's
     rules, the grid assigned spatially, history and audit written; seconds, rows/s, peak memory of the
     process, ratio = ours / floor;
   - re-import of the same survey with 1 % of names changed (a diff against the registry; 1 % written);
   - the registry emptied again, the survey imported with ``--exclusive`` (the maintenance window: foreign
     keys dropped, the table locked against readers), for what the default's open table costs.
The load average is printed at each step (the machine is shared: ratios within a step are what to compare).
Targets (issue 18): 680,000 rows imported in under 60 s and 1.5 GiB; the re-import under 30 s.
Prints one table; writes bench/results/registry.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, make_url, text

from bench import machine, save
from bench.intake import TEMPLATE, fresh_copy
from migrations import alembic_config
from spatial.settings import DatabaseSettings
from spatial.store.db import database_url

SCRATCH = "gridlink_bench_registry"
COLUMNS = ("code, class_code, district_code, grid_code, name, owner_key, manager_key, maintainer_key, status,"
           " surveyed_on, changed_at, source, note, revision")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command``; return its wall seconds and peak resident memory (MiB). Fails loudly if it fails."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):  # 1: some rows refused (reported)
        raise SystemExit(f"{command[0]} … failed ({child.returncode})")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def pg_source(url: str) -> tuple[str, dict[str, str]]:
    """The GDAL connection string of ``url`` and the environment carrying its password (not the command line)."""
    u = make_url(url)
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    return f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username}", env


def scratch(settings: DatabaseSettings, limit: int | None) -> str:
    """A fresh copy of the demo template, its cases gone and its components cut to ``limit``."""
    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": TEMPLATE}).scalar():
            raise SystemExit(f"no {TEMPLATE}: run `python -m bench.intake` once to build the full-demo template")
    admin.dispose()
    url = fresh_copy(settings, SCRATCH)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text('TRUNCATE case_event, "case" CASCADE'))
        if limit:
            conn.execute(text("DELETE FROM component WHERE code > (SELECT code FROM component ORDER BY code"
                              " OFFSET :n LIMIT 1)"), {"n": limit - 1})
        rows = conn.execute(text("SELECT count(*) FROM component")).scalar_one()
    engine.dispose()
    print("bench: upgrading the scratch copy to head …", file=sys.stderr)  # the template may be older
    command.upgrade(alembic_config(url), "head")
    print(f"scratch database {SCRATCH}: {rows:,} components")
    return url


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N components (shorter run)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    settings = DatabaseSettings()
    url = scratch(settings, args.limit)
    pg, pg_env = pg_source(url)
    env = {**os.environ, "GRIDLINK_DATABASE_URL": url}
    gridlink = [sys.executable, "-m", "api.cli"]
    work = Path(tempfile.mkdtemp(prefix="gridlink-bench-registry-"))
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM component")).scalar_one()
    result: dict = {"machine": machine(), "rows": rows}

    export_ours, export_mem = timed([*gridlink, "export", "components", str(work / "export.gpkg"), "--quiet"], env)
    export_floor, _ = timed(["ogr2ogr", "-f", "GPKG", str(work / "floor.gpkg"), pg, "-nln", "components", "-sql",
                             f"SELECT {COLUMNS}, geom FROM component ORDER BY code"], pg_env)
    result["export"] = {"ours_s": export_ours, "ogr2ogr_s": export_floor, "ratio": export_ours / export_floor,
                        "peak_mib": export_mem}
    print(f"export: ours {export_ours:.1f} s, ogr2ogr {export_floor:.1f} s, load {_load()}", flush=True)

    survey, changed = work / "survey.gpkg", work / "changed.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(survey), str(work / "export.gpkg"), "-nln", "survey", "-sql",
                    "SELECT code, name, status, note, surveyed_on, geom FROM components"], check=True)
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(changed), str(survey), "-nln", "survey", "-dialect", "SQLite",
                    "-sql", "SELECT code, CASE WHEN fid % 100 = 0 THEN coalesce(name, '') || '改' ELSE name END"
                    " AS name, status, note, surveyed_on, geom FROM survey"], check=True)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE component_history, component CASCADE"))
        conn.execute(text("DROP TABLE IF EXISTS bench_floor"))
    engine.dispose()
    floor, _ = timed(["ogr2ogr", "-f", "PostgreSQL", pg, str(survey), "-nln", "bench_floor", "-lco",
                      "GEOMETRY_NAME=geom"], pg_env)
    print(f"floor: ogr2ogr into a bare table {floor:.1f} s, load {_load()}", flush=True)
    ours, mem = timed([*gridlink, "import", "components", str(survey), "--owner", "URBAN", "--quiet"], env)
    print(f"import: {ours:.1f} s ({ours / floor:.2f} × the floor), peak {mem:.0f} MiB, load {_load()}", flush=True)
    again, again_mem = timed([*gridlink, "import", "components", str(changed), "--owner", "URBAN", "--quiet"], env)
    print(f"re-import: {again:.1f} s, peak {again_mem:.0f} MiB, load {_load()}", flush=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE component_history, component CASCADE"))
    engine.dispose()
    window, window_mem = timed([*gridlink, "import", "components", str(survey), "--owner", "URBAN", "--quiet",
                                "--exclusive"], env)
    print(f"import --exclusive: {window:.1f} s, peak {window_mem:.0f} MiB, load {_load()}", flush=True)
    result["exclusive"] = {"ours_s": window, "ratio": window / floor, "default_over_exclusive": ours / window,
                           "peak_mib": window_mem}
    result["import"] = {"ours_s": ours, "ogr2ogr_s": floor, "ratio": ours / floor, "rows_per_s": rows / ours,
                        "peak_mib": mem}
    result["reimport_1pct"] = {"ours_s": again, "ratio_to_floor": again / floor, "peak_mib": again_mem}
    _print(result)
    save("registry.json", result)
    if not args.keep:
        admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        admin.dispose()


def _load() -> str:
    """The load averages (1, 5, 15 minutes)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _print(r: dict) -> None:
    print(f"\n{r['machine']}; {r['rows']:,} components")
    print("| step | ours | ogr2ogr floor | ratio | peak memory (ours) |")
    print("|---|---|---|---|---|")
    e, i, a = r["export"], r["import"], r["reimport_1pct"]
    print(f"| export to GeoPackage | {e['ours_s']:.1f} s | {e['ogr2ogr_s']:.1f} s | {e['ratio']:.2f} |"
          f" {e['peak_mib']:.0f} MiB |")
    print(f"| import (all new) | {i['ours_s']:.1f} s ({i['rows_per_s']:,.0f} rows/s) | {i['ogr2ogr_s']:.1f} s |"
          f" {i['ratio']:.2f} | {i['peak_mib']:.0f} MiB |")
    x = r["exclusive"]
    print(f"| import (all new) --exclusive | {x['ours_s']:.1f} s | {i['ogr2ogr_s']:.1f} s | {x['ratio']:.2f} |"
          f" {x['peak_mib']:.0f} MiB |")
    print(f"| re-import, 1 % changed | {a['ours_s']:.1f} s | {i['ogr2ogr_s']:.1f} s | {a['ratio_to_floor']:.2f} |"
          f" {a['peak_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
