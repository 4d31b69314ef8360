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


DIGEST = text(
    "SELECT (SELECT md5(string_agg(code || ST_AsEWKB(geom)::text, ',' ORDER BY code)) FROM component),"
    " (SELECT md5(string_agg(grid_code || ST_AsEWKB(geom)::text, ',' ORDER BY grid_code)) FROM grid_geometry),"
    " (SELECT md5(string_agg(case_no || state || ST_AsEWKB(location)::text, ',' ORDER BY case_no)) FROM \"case\"),"
    " (SELECT md5(string_agg(name || coalesce(phone, ''), ',' ORDER BY id)) FROM team_member)"
)


def test_same_seed_same_demo_and_no_rebuild(small_demo) -> None:
    from spatial.demo.build import build_demo
    from tests.conftest import migrated_engine

    with small_demo.connect() as conn:
        first = conn.execute(DIGEST).one()
    assert build_demo(small_demo, small=True, progress=False).skipped
    twin = migrated_engine("gridlink_test_small_twin")
    try:
        assert not build_demo(twin, small=True, progress=False).skipped
        with twin.connect() as conn:
            assert conn.execute(DIGEST).one() == first
        other = build_demo(twin, seed=7, small=True, progress=False)
        assert not other.skipped
        with twin.connect() as conn:
            assert conn.execute(DIGEST).one()[0] != first[0]
    finally:
        twin.dispose()


def test_foreign_data_is_not_overwritten(engine) -> None:
    import pytest

    from spatial.demo.build import DemoError, build_demo

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO grid (code, level, kind, name) VALUES ('320599', 1, 'district', 'mine')"))
    try:
        with pytest.raises(DemoError, match="--force"):
            build_demo(engine, small=True, progress=False)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM grid WHERE code = '320599'")).scalar() == "mine"
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM grid WHERE code = '320599'"))
