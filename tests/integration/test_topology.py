"""The topology checks find gaps and overlaps (they are what the demo tests and the planner rely on)."""

from __future__ import annotations

from sqlalchemy import text

from spatial.grids.topology import check_partition


def _add(conn, code, level, kind, parent, wkt) -> None:
    conn.execute(text("INSERT INTO grid (code, level, kind, name, parent_code) VALUES (:c, :l, :k, :c, :p)"),
                 {"c": code, "l": level, "k": kind, "p": parent})
    conn.execute(text("INSERT INTO grid_geometry (grid_code, version_id, kind, geom, valid_from)"
                      " VALUES (:c, 1, :k, ST_Multi(ST_GeomFromText(:w, 4326)), now())"),
                 {"c": code, "k": kind, "w": wkt})


def _box(x0, y0, x1, y1) -> str:
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def _setup(conn) -> None:
    conn.execute(text("INSERT INTO grid_version (id, effective_at, author) VALUES (1, now(), 'test')"))
    _add(conn, "320506", 1, "district", None, _box(120.0, 31.0, 120.1, 31.1))


def test_exact_partition_passes(conn) -> None:
    _setup(conn)
    _add(conn, "320506001", 2, "town", "320506", _box(120.0, 31.0, 120.05, 31.1))
    _add(conn, "320506002", 2, "town", "320506", _box(120.05, 31.0, 120.1, 31.1))
    report = check_partition(conn, 1, "320506")
    assert report.ok and report.parents == 1


def test_gap_and_overlap_are_found(conn) -> None:
    _setup(conn)
    # A 0.0001° (~10 m) overlap and a 0.0001° gap along the top: both far above 1 m².
    _add(conn, "320506001", 2, "town", "320506", _box(120.0, 31.0, 120.0501, 31.0999))
    _add(conn, "320506002", 2, "town", "320506", _box(120.05, 31.0, 120.1, 31.0999))
    report = check_partition(conn, 1, "320506")
    assert not report.ok
    assert [code for code, _, _ in report.gaps] == ["320506"]
    assert 90_000 < report.gaps[0][2] < 120_000  # 11 m × 9.5 km strip along the top
    assert [(a, b) for a, b, _ in report.overlaps] == [("320506001", "320506002")]
    assert 90_000 < report.overlaps[0][2] < 120_000  # 9.5 m × 11 km strip between the towns
