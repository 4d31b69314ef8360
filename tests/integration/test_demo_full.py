"""The full-scale Suzhou demo, checked in PostGIS (SPEC scale: 14 / 205 / 942 in Wuzhong, 680,000 components)."""

from __future__ import annotations

import pytest
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

pytestmark = pytest.mark.full


def test_full_demo_counts(full_demo) -> None:
    with full_demo.connect() as conn:
        wuzhong = level_counts(conn, WUZHONG)
        assert (wuzhong["district"], wuzhong["town"], wuzhong["community"], wuzhong["base"]) == (1, 14, 205, 942)
        wujiang = level_counts(conn, WUJIANG)
        assert (wujiang["base"], wujiang["enterprise"]) == (899, 160)
        assert level_counts(conn, "")["district"] == 9
        cases = conn.execute(text("SELECT count(*) FROM \"case\"")).scalar()
        assert 1400 * 365 < cases < 1800 * 365


def test_full_demo_partitions(full_demo) -> None:
    with full_demo.connect() as conn:
        assert_partitions(conn)
        assert_codes_numbered(conn)


def test_full_demo_components(full_demo) -> None:
    with full_demo.connect() as conn:
        assert_components(conn, 680_000)


def test_full_demo_cases(full_demo) -> None:
    with full_demo.connect() as conn:
        assert_cases(conn)
