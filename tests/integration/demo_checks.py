"""Checks shared by the small- and full-scale demo tests."""

from __future__ import annotations

from sqlalchemy import Connection, text

from spatial.grids.topology import check_partition, component_grid_mismatches

WUZHONG, WUJIANG = "320506", "320509"


def level_counts(conn: Connection, prefix: str) -> dict[str, int]:
    """Return counts of current grids per kind below ``prefix``."""
    rows = conn.execute(text(
        "SELECT g.kind, count(*) FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code"
        " AND gg.valid_to IS NULL WHERE g.code LIKE :p || '%' GROUP BY g.kind"
    ), {"p": prefix}).all()
    return dict(rows)


def assert_partitions(conn: Connection) -> None:
    """Every district is covered by its towns; Wuzhong and Wujiang to the base grids."""
    report = check_partition(conn, 1)
    assert report.parents == 9 and report.ok, report
    for prefix in (WUZHONG, WUJIANG):
        for level in (2, 3):
            report = check_partition(conn, level, prefix)
            assert report.parents > 0 and report.ok, report


def assert_codes_numbered(conn: Connection) -> None:
    """Base grids of each community are numbered 001, 002, … without holes."""
    holes = conn.execute(text(
        "SELECT parent_code FROM grid WHERE level = 4 GROUP BY parent_code"
        " HAVING max(right(code, 3)::int) <> count(*)"
    )).all()
    assert holes == []


def assert_components(conn: Connection, expected: int) -> None:
    """All components are in Wuzhong, with valid unique codes, in the base grid that covers them."""
    total, distinct, valid = conn.execute(text(
        "SELECT count(*), count(DISTINCT code),"
        " count(*) FILTER (WHERE code ~ '^[0-9]{16}$' AND left(code, 6) = district_code"
        "   AND substr(code, 7, 4) = class_code AND class_code IN (SELECT code FROM component_class))"
        " FROM component"
    )).one()
    assert (total, distinct, valid) == (expected, expected, expected)
    assert conn.execute(text("SELECT count(*) FROM component WHERE district_code <> :d"),
                        {"d": WUZHONG}).scalar() == 0
    assert component_grid_mismatches(conn) == []


def assert_cases(conn: Connection) -> None:
    """Cases sit in their grid's hierarchy and every case has its report event first."""
    bad_hierarchy = conn.execute(text(
        "SELECT count(*) FROM \"case\" WHERE community_code <> left(grid_code, 12)"
        " OR town_code <> left(grid_code, 9) OR district_code <> left(grid_code, 6)"
    )).scalar()
    assert bad_hierarchy == 0
    without_report = conn.execute(text(
        "SELECT count(*) FROM \"case\" c WHERE NOT EXISTS (SELECT 1 FROM case_event e"
        " WHERE e.case_id = c.id AND e.kind = 'report')"
    )).scalar()
    assert without_report == 0
    states = dict(conn.execute(text("SELECT state, count(*) FROM \"case\" GROUP BY state")).all())
    assert states.get("closed", 0) > sum(states.values()) * 0.5
    assert {"voided", "dispatched"} <= set(states)
