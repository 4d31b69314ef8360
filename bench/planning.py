"""Benchmark: grid planning on the full demo (issue 19) — preview and commit of one boundary move and of a
town-wide re-grid, against a full reassignment of every component and open case in the same run; and the
import of every base grid with its topology report, against ``ogr2ogr`` loading the same file.

    .venv/bin/python -m bench.planning [--repeat 3] [--grids 70] [--import-only]

1. A scratch copy of the full-demo template of bench/intake.py (942 + 899 base grids, 680,000 components, a
   year of cases), upgraded to the newest schema; every write is in a transaction rolled back afterwards, so
   each row starts from the same state.
2. One boundary move: the base grid with the most components and its neighbour with the longest shared
   border; the line runs from one end of that border through the middle of the grid to the other end (about
   half the grid changes hands).
3. A town-wide re-grid: in the town whose base grids number closest to ``--grids``, each grid hands a piece
   to its longest-border neighbour (one move per grid, about ``--grids`` grids changed).
4. Reference: a full reassignment — every component's and every open case's base grid recomputed from the
   current shapes (the work a non-incremental commit would do), in the same run.
5. Import: every current base grid written to a GeoPackage (EPSG:4549, codes in a column ``DM``), then read,
   repaired and checked with its topology report (``gridlink import grids --dry-run``'s work), against
   ``ogr2ogr`` loading the same file into PostGIS, the floor.
Times are medians of ``repeat`` runs; ratios are reference (or floor) over ours. Writes bench/results/planning.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from shapely import wkt as shapely_wkt
from shapely.geometry import LineString
from sqlalchemy import Connection, create_engine, text

from bench import machine, save
from bench.intake import TEMPLATE, fresh_copy, template
from spatial.access.audit import Actor
from spatial.access.principal import Principal
from spatial.errors import GridlinkError
from spatial.grids import plan_edits, planning, plans
from spatial.grids.importing import check_file
from spatial.grids.imports import Mapping
from spatial.settings import DatabaseSettings

SCRATCH = "gridlink_bench_planning"
ADMIN = Principal(0, "bench", "admin", "*")
ACTOR = Actor("bench", "admin", "bench")


def timed(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` runs of ``work`` and its last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def rolled_back(engine, work: Callable[[Connection], Any]) -> Callable[[], Any]:
    """``work`` in a transaction that is rolled back, as a thunk."""
    def run() -> Any:
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                return work(conn)
            finally:
                transaction.rollback()
    return run


def _shape(conn: Connection, code: str) -> Any:
    return shapely_wkt.loads(conn.execute(text(
        "SELECT ST_AsText(geom) FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"), {"c": code}).scalar())


def move_line(conn: Connection, code: str) -> tuple[dict, str] | None:
    """A line cutting about half of base grid ``code`` off towards its longest-border sibling."""
    grid = _shape(conn, code)
    siblings = conn.execute(text(
        "SELECT g.code FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL"
        " WHERE g.parent_code = left(:c, 12) AND g.level = 4 AND g.retired_at IS NULL AND g.code <> :c"
        " AND gg.geom && ST_Buffer(ST_GeomFromText(:w, 4326), 0.00001)"), {"c": code, "w": grid.wkt}).scalars().all()
    best, border = None, None
    for other in siblings:
        shared = grid.boundary.intersection(_shape(conn, other).buffer(0.00001))
        parts = [p for p in getattr(shared, "geoms", [shared]) if p.geom_type == "LineString"]
        longest = max(parts, key=lambda p: p.length, default=None)
        if longest is not None and (border is None or longest.length > border.length):
            best, border = other, longest
    if best is None or border is None:
        return None
    a, b = border.coords[0], border.coords[-1]
    middle = border.interpolate(0.5, normalized=True)
    inside = grid.representative_point()
    bend = (middle.x + 0.5 * (inside.x - middle.x), middle.y + 0.5 * (inside.y - middle.y))
    return shapely.geometry.mapping(LineString([a, bend, b])), best


def one_move(conn: Connection, code: str) -> int:
    """A draft plan with one boundary move of ``code``; its id."""
    found = move_line(conn, code)
    if found is None:
        raise SystemExit(f"no neighbour for {code}")
    plan = plans.open_plan(conn, ADMIN, f"bench: move {code}")
    plan_edits.move_boundary(conn, ADMIN, plan, found[0], 4)
    return plan


def town_regrid(conn: Connection, town: str) -> int:
    """A draft plan where every base grid of ``town`` hands a piece to its longest-border sibling."""
    plan = plans.open_plan(conn, ADMIN, f"bench: re-grid {town}")
    codes = conn.execute(text("SELECT code FROM grid WHERE level = 4 AND retired_at IS NULL AND code LIKE :t || '%'"
                              " ORDER BY code"), {"t": town}).scalars().all()
    for code in codes[::2]:  # every other grid: each move changes the grid and a neighbour
        planned = plan_edits.planned_grids(conn, plan, codes=[code]).get(code)
        found = move_line(conn, code) if planned is not None and not planned["edited"] else None
        if found is not None:
            try:
                plan_edits.move_boundary(conn, ADMIN, plan, found[0], 4)
            except GridlinkError:  # a grid of odd shape the simple line does not cut: skip it
                continue
    return plan


def full_reassignment(conn: Connection) -> tuple[int, int]:
    """Recompute every component's and open case's base grid from the current shapes (the reference)."""
    comps = conn.execute(text(
        "UPDATE component c SET grid_code = (SELECT gg.grid_code FROM grid_geometry gg WHERE gg.valid_to IS NULL"
        " AND gg.kind = 'base' AND ST_Covers(gg.geom, ST_PointOnSurface(c.geom)) ORDER BY gg.grid_code LIMIT 1)"
        " WHERE c.grid_code IS NOT NULL")).rowcount
    cases = conn.execute(text(
        "UPDATE \"case\" k SET grid_code = COALESCE((SELECT gg.grid_code FROM grid_geometry gg"
        " WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND ST_Covers(gg.geom, k.location)"
        " ORDER BY gg.grid_code LIMIT 1), k.grid_code) WHERE k.state NOT IN ('closed', 'voided')")).rowcount
    return comps, cases


def write_base_grids(conn: Connection, path: Path) -> int:
    """Every current base grid into a GeoPackage in EPSG:4549 (column DM: code, MC: name)."""
    rows = conn.execute(text(
        "SELECT g.code, g.name, ST_AsBinary(ST_Transform(gg.geom, 4549)) FROM grid g JOIN grid_geometry gg"
        " ON gg.grid_code = g.code AND gg.valid_to IS NULL WHERE g.level = 4 AND g.retired_at IS NULL"
        " ORDER BY g.code")).all()
    pyogrio.raw.write(path, np.array([bytes(r[2]) for r in rows], dtype=object),
                      [np.array([r[0] for r in rows], dtype=object), np.array([r[1] for r in rows], dtype=object)],
                      ["DM", "MC"], geometry_type="MultiPolygon", crs="EPSG:4549", driver="GPKG")
    return len(rows)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--grids", type=int, default=70)
    parser.add_argument("--import-only", action="store_true", help="only the import of every base grid against"
                        " ogr2ogr (no moves, no full reassignment: a short run)")
    args = parser.parse_args()
    settings = DatabaseSettings()
    _ensure_template(settings)
    url = fresh_copy(settings, SCRATCH)
    from alembic import command

    from migrations import alembic_config

    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    rows: list[dict[str, Any]] = [] if args.import_only else _plans(engine, args)
    rows.append(_import(engine, url, args.repeat))
    engine.dispose()
    save("planning.json", {"machine": machine(), "repeat": args.repeat, "rows": rows})


def _plans(engine: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Preview and commit of one boundary move and of a town-wide re-grid, against a full reassignment."""
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        busiest = conn.execute(text("SELECT grid_code FROM component WHERE grid_code IS NOT NULL GROUP BY 1"
                                    " ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        town = conn.execute(text(
            "SELECT left(code, 9) FROM grid WHERE level = 4 AND retired_at IS NULL GROUP BY 1"
            " ORDER BY abs(count(*) - :n), 1 LIMIT 1"), {"n": args.grids}).scalar_one()
    reference, counts = timed(rolled_back(engine, full_reassignment), args.repeat)
    print(f"reference: full reassignment of {counts[0]:,} components and {counts[1]:,} open cases: {reference:.2f} s")
    for label, build in ((f"one boundary move ({busiest})", lambda c: one_move(c, busiest)),
                         (f"town-wide re-grid ({town})", lambda c: town_regrid(c, town))):
        def preview(conn: Connection, build=build) -> Any:
            plan = build(conn)
            started = time.perf_counter()
            impact = planning.impact(conn, ADMIN, plan)
            return time.perf_counter() - started, impact

        def commit(conn: Connection, build=build) -> Any:
            plan = build(conn)
            started = time.perf_counter()
            done = planning.commit(conn, ADMIN, ACTOR, plan)
            return time.perf_counter() - started, done

        previews = [rolled_back(engine, preview)() for _ in range(args.repeat)]
        commits = [rolled_back(engine, commit)() for _ in range(args.repeat)]
        p, c = statistics.median(t for t, _ in previews), statistics.median(t for t, _ in commits)
        impact, done = previews[-1][1], commits[-1][1]
        grids = len(impact["workload"])
        row = {"case": label, "grids_changed": grids, "components_moved": impact["numbers"]["components"],
               "open_cases_moved": impact["numbers"]["open_cases"], "preview_s": round(p, 3),
               "commit_s": round(c, 3), "reference_s": round(reference, 3),
               "reference_over_commit": round(reference / c, 1), "reassigned": done["reassigned"]}
        rows.append(row)
        print(f"{label}: {grids} grids, {row['components_moved']:,} components and {row['open_cases_moved']:,} open"
              f" cases move; preview {p:.3f} s, commit {c:.3f} s; full reassignment / commit = {reference / c:.1f}")
    return rows


def _import(engine: Any, url: str, repeat: int) -> dict[str, Any]:
    """Every base grid written to a GeoPackage, read, repaired and checked, against ogr2ogr loading it."""
    with tempfile.TemporaryDirectory() as folder, engine.connect() as conn:
        path = Path(folder) / "base_grids.gpkg"
        n = write_base_grids(conn, path)
        ours, checked = timed(lambda: check_file(conn, path, 4, Mapping(code="DM", name="MC")), repeat)
        floor, _ = timed(lambda: subprocess.run(
            ["ogr2ogr", "-f", "PostgreSQL", _pg(url), str(path), "-nln", "bench_import_floor", "-overwrite",
             "-lco", "SPATIAL_INDEX=GIST", "-t_srs", "EPSG:4326"], check=True), repeat)
        conn.execute(text("DROP TABLE IF EXISTS bench_import_floor"))
        conn.commit()
    gaps = sum(1 for p in checked.problems if p.kind == "gap")
    print(f"import of {n:,} base grids (GeoPackage, EPSG:4549) with the topology report: {ours:.2f} s;"
          f" ogr2ogr into PostGIS: {floor:.2f} s; ours / floor = {ours / floor:.1f}; {len(checked.repairs)}"
          f" repairs, {len(checked.problems)} problems ({gaps} gaps)")
    return {"case": f"import of {n:,} base grids with the topology report", "import_s": round(ours, 2),
            "ogr2ogr_s": round(floor, 2), "ours_over_floor": round(ours / floor, 1),
            "repairs": len(checked.repairs), "problems": len(checked.problems), "gaps": gaps}


def _ensure_template(settings: DatabaseSettings) -> None:
    """The full-demo template of bench/intake.py, built only if missing: an existing one is copied as it is
    (its copy, not the template, is upgraded to the newest schema)."""
    from spatial.store.db import database_url

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": TEMPLATE}).scalar()
    admin.dispose()
    if not exists:
        template(settings)


def _pg(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username} password={u.password}"


if __name__ == "__main__":
    main()
