"""Pure tests of the partition helpers used by the demo and, later, the planner."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon

from spatial.demo.partition import allocate, partition, reading_order


@pytest.mark.parametrize(
    ("total", "weights", "minimum", "expected"),
    [
        (10, [1, 1], 1, [5, 5]),
        (10, [3, 1], 1, [7, 3]),
        (942, [1.0] * 205, 1, None),
        (5, [100, 0, 0], 1, [3, 1, 1]),
        (7, [1, 1, 1], 2, [3, 2, 2]),
    ],
)
def test_allocate(total, weights, minimum, expected) -> None:
    shares = allocate(total, weights, minimum)
    assert sum(shares) == total
    assert min(shares) >= minimum
    if expected is not None:
        assert shares == expected


def test_allocate_refuses_impossible() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        allocate(3, [1, 1], 2)


def test_reading_order_is_north_to_south_then_west_to_east() -> None:
    cells = [MultiPolygon([shapely.box(x, y, x + 1, y + 1)]) for y in (0, 1) for x in (0, 1)]
    # cells: 0 = SW, 1 = SE, 2 = NW, 3 = NE  → reading order NW, NE, SW, SE
    assert reading_order(cells) == [2, 3, 0, 1]


def test_partition_covers_parent_without_overlap() -> None:
    rng = np.random.default_rng(7)
    parent = MultiPolygon([shapely.Polygon([(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)])])  # an L
    pieces = partition(parent, 9, rng)
    assert len(pieces) == 9
    children = [geom for _, geom in pieces]
    union = shapely.union_all(children)
    assert union.symmetric_difference(parent).area < 1e-9
    assert sum(c.area for c in children) == pytest.approx(parent.area, rel=1e-9)
    assert all(c.is_valid and c.area > 0 for c in children)


def test_partition_is_deterministic() -> None:
    parent = MultiPolygon([shapely.box(0, 0, 2, 1)])
    first = partition(parent, 5, np.random.default_rng(3))
    second = partition(parent, 5, np.random.default_rng(3))
    assert [g.wkb for _, g in first] == [g.wkb for _, g in second]
