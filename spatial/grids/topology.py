"""Topology checks in PostGIS: each level partitions its parent; components sit in their grid.

Used by the tests on the demo, and by the planner before a new grid version is committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from spatial.store.sql import statement

TOLERANCE_M2 = 1.0


@dataclass(frozen=True)
class PartitionReport:
    """Problems found at one level below ``prefix``: parents not covered exactly, overlapping children."""

    level: int
    parents: int
    gaps: list[tuple[str, int, float]]
    overlaps: list[tuple[str, str, float]]

    @property
    def ok(self) -> bool:
        """Tell whether the children of every parent partition it within the tolerance."""
        return not self.gaps and not self.overlaps


def check_partition(conn: Connection, parent_level: int, prefix: str = "", *,
                    tolerance_m2: float = TOLERANCE_M2) -> PartitionReport:
    """Check that the current grids of ``parent_level + 1`` partition those of ``parent_level``."""
    rows = conn.execute(statement("partition_gaps"), {"level": parent_level, "prefix": prefix}).all()
    gaps = [(code, n, float(m2)) for code, n, m2 in rows if n == 0 or m2 > tolerance_m2]
    overlaps = conn.execute(
        statement("partition_overlaps"),
        {"level": parent_level + 1, "prefix": prefix, "tolerance_m2": tolerance_m2},
    ).all()
    return PartitionReport(parent_level, len(rows), gaps, [(a, b, float(m2)) for a, b, m2 in overlaps])


def component_grid_mismatches(conn: Connection, prefix: str = "") -> list[tuple[str, str | None, str | None]]:
    """Return up to 100 components whose grid is not the base grid covering their anchor point."""
    rows = conn.execute(statement("component_grid_mismatches"), {"prefix": prefix}).all()
    return [(code, grid, covering) for code, grid, covering in rows]
