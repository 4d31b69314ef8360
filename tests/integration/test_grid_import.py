"""Importing grids (issue 19, item 1): the real Suzhou districts into an empty database through the CLI, every
repair listed; towns in every supported format and CRS; refusals (a gap with its polygon, overlaps, codes
that do not extend the parent's, duplicates, children outside their parent) that store nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, box, shape
from sqlalchemy import text

from api.cli import main
from spatial.access.audit import Actor
from spatial.access.principal import Principal
from spatial.errors import ForbiddenError, GridImportRefusedError
from spatial.grids.importing import import_grids
from spatial.grids.imports import Mapping
from tests.conftest import migrated_engine

REAL = Path(__file__).parents[2] / "spatial" / "reference" / "data" / "suzhou_districts.geojson"
ADMIN = Principal(0, "test-admin", "admin", "*")
ACTOR = Actor("test-admin", "admin", "test")


@pytest.fixture(scope="module")
def empty_city():
    engine = migrated_engine("gridlink_test_import")
    yield engine
    engine.dispose()


def _cli(monkeypatch, engine, *argv: str) -> int:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return main(list(argv))


def test_the_real_suzhou_file_imports_as_districts_with_every_repair_listed(empty_city, monkeypatch, tmp_path,
                                                                           capsys) -> None:
    out = tmp_path / "report.json"
    assert _cli(monkeypatch, empty_city, "import", "grids", str(REAL), "--level", "1", "--report", str(out)) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    source = {f["properties"]["code"]: shape(f["geometry"])
              for f in json.loads(REAL.read_text(encoding="utf-8"))["features"]}
    invalid = sorted(code for code, geom in source.items() if not geom.is_valid)
    assert len(invalid) == 8  # every district but 虎丘区 has a self-intersecting ring
    assert sorted(r["codes"][0] for r in report["repairs"] if r["kind"] == "invalid") == invalid
    slivers = [r for r in report["repairs"] if r["kind"] == "sliver"]
    assert len(slivers) == 4 and all(0 < r["area_m2"] < 1_000_000 and r["location"] for r in slivers)
    assert report["ok"] and not report["problems"] and report["grids"] == 9
    printed = capsys.readouterr().out
    assert all(r["action"] in printed for r in report["repairs"])  # every repair listed on the terminal too
    with empty_city.connect() as conn:
        stored = conn.execute(text(
            "SELECT count(*), bool_and(ST_IsValid(gg.geom)), count(DISTINCT gg.version_id) FROM grid g"
            " JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL WHERE g.level = 1")).one()
        assert tuple(stored) == (9, True, 1)
        overlaps = conn.execute(text(
            "SELECT count(*) FROM grid_geometry a JOIN grid_geometry b ON a.grid_code < b.grid_code"
            " AND a.geom && b.geom WHERE ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1")).scalar()
        assert overlaps == 0
        holes = conn.execute(text(
            "SELECT count(*) FROM (SELECT (ST_Dump(ST_Union(geom))).geom AS g FROM grid_geometry) u,"
            " generate_series(1, ST_NumInteriorRings(u.g)) n")).scalar()
        assert holes == 0  # the four slivers were filled
        plan = conn.execute(text("SELECT state, source, report->>'grids' FROM grid_plan")).one()
        assert tuple(plan) == ("committed", "import", "9")
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'grid.import'")).scalar() == 1


def _towns(gap: float = 0.0, sliver: float = 0.0) -> list[tuple[str, str, MultiPolygon]]:
    """The world's two towns of district 320506 (west and east halves), the east one moved by ``gap``°
    (leaving a strip uncovered) or overlapping the west one by ``sliver``°."""
    east = box(120.2 + gap - sliver, 31.0, 120.4, 31.2)
    return [("320506001", "西镇", MultiPolygon([box(120.0, 31.0, 120.2, 31.2)])),
            ("320506002", "东镇", MultiPolygon([east]))]


def _write(path: Path, towns, *, driver: str, epsg: int, fields=("code", "name")) -> Path:
    transform = Transformer.from_crs(4326, epsg, always_xy=True)
    geoms = [shapely.transform(g, lambda xy: np.column_stack(transform.transform(xy[:, 0], xy[:, 1])))
             for _, _, g in towns]
    pyogrio.raw.write(path, shapely.to_wkb(np.array(geoms, dtype=object)), [
        np.array([c for c, _, _ in towns], dtype=object), np.array([n for _, n, _ in towns], dtype=object)],
        list(fields), geometry_type="MultiPolygon", crs=f"EPSG:{epsg}", driver=driver)
    return path


@pytest.mark.parametrize(("driver", "suffix", "epsg"), [
    ("GPKG", "gpkg", 4549), ("ESRI Shapefile", "shp", 4490), ("FlatGeobuf", "fgb", 3857), ("GeoJSON", "geojson", 4326),
])
def test_towns_import_from_every_format_and_crs_with_a_column_mapping(world, tmp_path, driver, suffix,
                                                                      epsg) -> None:
    towns = _towns(sliver=0.00002)  # 1.9 m × 22 km ≈ 42,000 m² of overlap: a sliver, kept by the lower code
    path = _write(tmp_path / f"towns.{suffix}", towns, driver=driver, epsg=epsg, fields=("DM", "MC"))
    result = import_grids(world, ADMIN, ACTOR, path, 2, Mapping(code="DM", name="MC"), store="draft")
    assert result.state == "draft"
    overlap = [r for r in result.report["repairs"] if r["kind"] == "overlap"]
    assert [r["codes"] for r in overlap] == [["320506001", "320506002"]]
    assert 35_000 < overlap[0]["area_m2"] < 50_000
    edits = world.execute(text(
        "SELECT code, op, name, ST_Area(ST_SymDifference(geom, ST_GeomFromText(:w, 4326))::geography)"
        " FROM grid_plan_edit WHERE plan_id = :p ORDER BY code"),
        {"p": result.plan_id, "w": box(120.2, 31.0, 120.4, 31.2).wkt}).all()
    assert [(c, op, n) for c, op, n, _ in edits] == [("320506001", "reshape", "西镇"), ("320506002", "reshape", "东镇")]
    assert edits[1][3] < 50  # the east town lost the overlap: back on the 120.2° line, to reprojection's metres
    closed = world.execute(text("SELECT count(*) FROM grid_geometry WHERE valid_to IS NOT NULL")).scalar()
    assert closed == 0  # a draft changes no live grid


def test_a_town_imported_with_a_gap_is_refused_with_the_gap_polygon(world, world_engine, monkeypatch,
                                                                    tmp_path, capsys) -> None:
    path = _write(tmp_path / "towns.geojson", _towns(gap=0.01), driver="GeoJSON", epsg=4326)
    with pytest.raises(GridImportRefusedError) as refused:
        import_grids(world, ADMIN, ACTOR, path, 2)
    problems = refused.value.extra["report"]["problems"]  # type: ignore[index]
    assert [p["kind"] for p in problems] == ["gap"] and problems[0]["codes"] == ["320506"]
    gap = shape(problems[0]["geometry"])
    assert gap.symmetric_difference(box(120.2, 31.0, 120.21, 31.2)).area < 1e-12
    assert 20_000_000 < problems[0]["area_m2"] < 22_500_000  # 953 m × 22.2 km
    assert world.execute(text("SELECT count(*) FROM grid_plan")).scalar() == 0
    out = tmp_path / "refused.json"
    assert _cli(monkeypatch, world_engine, "import", "grids", str(path), "--level", "2", "--report", str(out)) == 1
    assert "gap" in capsys.readouterr().err
    assert json.loads(out.read_text(encoding="utf-8"))["problems"][0]["geometry"]["type"] == "Polygon"


def test_codes_duplicates_and_children_outside_their_parent_are_refused(world, tmp_path) -> None:
    towns = [("320506001", "西镇", MultiPolygon([box(120.0, 31.0, 120.2, 31.2)])),
             ("320506001", "重复", MultiPolygon([box(120.2, 31.0, 120.3, 31.2)])),
             ("32050600X", "坏码", MultiPolygon([box(120.3, 31.0, 120.4, 31.2)])),
             ("320599002", "无父", MultiPolygon([box(120.3, 31.0, 120.4, 31.2)])),
             ("320506002", "越界", MultiPolygon([box(120.2, 31.0, 120.5, 31.2)]))]
    path = _write(tmp_path / "towns.gpkg", towns, driver="GPKG", epsg=4326)
    with pytest.raises(GridImportRefusedError) as refused:
        import_grids(world, ADMIN, ACTOR, path, 2)
    kinds = sorted((p["kind"], p["codes"][0]) for p in refused.value.extra["report"]["problems"])  # type: ignore[index]
    assert kinds == [("bad_code", "32050600X"), ("duplicate", "320506001"), ("no_parent", "320599002"),
                     ("outside_parent", "320506002")]


def test_a_planner_may_import_only_inside_its_area(world, tmp_path) -> None:
    path = _write(tmp_path / "towns.geojson", _towns(), driver="GeoJSON", epsg=4326)
    planner = Principal(7, "planner-t1", "planner", "320506001")
    with pytest.raises(ForbiddenError):
        import_grids(world, planner, Actor("planner-t1", "planner"), path, 2, store="draft")
    assert world.execute(text("SELECT count(*) FROM grid_plan")).scalar() == 0


def _export(engine, level: int, path: Path) -> Path:
    """The current grids of ``level`` written to a GeoPackage at full precision (WKB as stored)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, g.name, g.parent_code, ST_AsBinary(gg.geom) FROM grid g JOIN grid_geometry gg"
            " ON gg.grid_code = g.code AND gg.valid_to IS NULL WHERE g.level = :l ORDER BY g.code"), {"l": level}).all()
    pyogrio.raw.write(path, np.array([bytes(r[3]) for r in rows], dtype=object),
                      [np.array([r[i] for r in rows], dtype=object) for i in range(3)], ["code", "name", "parent"],
                      geometry_type="MultiPolygon", crs="EPSG:4326", driver="GPKG")
    return path


def _reimport(engine, path: Path, level: int) -> dict:
    with engine.connect() as conn, conn.begin():
        report = import_grids(conn, ADMIN, ACTOR, path, level, Mapping(parent="parent"), store="none").report
        conn.rollback()
    return report


@pytest.mark.parametrize("level", [2, 3, 4])
def test_the_small_demos_own_grids_reimport_as_an_exact_partition(small_demo, tmp_path, level) -> None:
    """The demo's Voronoi grids partition their parents exactly in lon/lat: re-imported, they show no gap, no
    overlap and need no repair. (Measured with geodesic edges, the seams along the parents' long straight
    edges, where the children have vertices the parent lacks, used to count thousands of m² of gap.)"""
    report = _reimport(small_demo, _export(small_demo, level, tmp_path / f"level{level}.gpkg"), level)
    assert (report["ok"], report["problems"], report["repairs"]) == (True, [], [])
    with small_demo.connect() as conn:
        assert report["grids"] == conn.execute(text("SELECT count(*) FROM grid WHERE level = :l AND retired_at"
                                                    " IS NULL"), {"l": level}).scalar()


def test_the_full_demos_base_grids_reimport_with_no_gap(full_demo, tmp_path) -> None:
    report = _reimport(full_demo, _export(full_demo, 4, tmp_path / "base.gpkg"), 4)
    assert report["grids"] == 1841
    assert (report["ok"], report["problems"], report["repairs"]) == (True, [], [])
