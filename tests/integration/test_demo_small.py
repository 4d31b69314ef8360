"""The small demo: same generator as the full one, checked the same way, in seconds."""

from __future__ import annotations

from sqlalchemy import text

from tests.integration.demo_checks import (
    WUJIANG,
    WUZHONG,
    assert_cases,
    assert_codes_numbered,
    assert_components,
    assert_partitions,
    level_counts,
)


def test_small_demo_counts(small_demo) -> None:
    with small_demo.connect() as conn:
        wuzhong = level_counts(conn, WUZHONG)
        assert (wuzhong["town"], wuzhong["community"], wuzhong["base"]) == (14, 28, 56)
        wujiang = level_counts(conn, WUJIANG)
        assert wujiang["enterprise"] == 6
        assert level_counts(conn, "")["district"] == 9


def test_small_demo_topology(small_demo) -> None:
    with small_demo.connect() as conn:
        assert_partitions(conn)
        assert_codes_numbered(conn)
        assert_components(conn, 4000)
        assert_cases(conn)


def test_small_demo_teams_are_4_plus_n(small_demo) -> None:
    with small_demo.connect() as conn:
        short = conn.execute(text(
            "SELECT g.code FROM grid g WHERE g.level = 4 OR g.level IS NULL EXCEPT"
            " SELECT grid_code FROM team_member WHERE role IN ('chief', 'inspector', 'police', 'supervisor')"
            " GROUP BY grid_code HAVING count(DISTINCT role) = 4"
        )).all()
        assert short == []


def test_demo_is_deterministic_and_not_rebuilt(small_demo) -> None:
    from spatial.demo.build import build_demo

    with small_demo.connect() as conn:
        before = conn.execute(text("SELECT md5(string_agg(code || ST_AsEWKB(geom)::text, ',' ORDER BY code))"
                                   " FROM component")).scalar()
    assert build_demo(small_demo, small=True, progress=False).skipped
    with small_demo.connect() as conn:
        after = conn.execute(text("SELECT md5(string_agg(code || ST_AsEWKB(geom)::text, ',' ORDER BY code))"
                                  " FROM component")).scalar()
    assert before == after
