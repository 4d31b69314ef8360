"""In-process spatial indexes for big batches (STYLE: "an in-process STRtree serves batch work").

For a bulk file of thousands of reports, probing PostGIS row by row costs milliseconds a row. Instead the
current base grids, special grids, the components a batch needs and the open original cases of its time
window are read from PostGIS once, indexed with shapely's STRtree, and every row is assigned in
vectorised steps. PostGIS stays the only source of truth: the indexes live for one batch, inside its
transaction, and ``tests/integration/test_bulk.py`` checks that they assign exactly as ``assign_core.sql``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import shapely
from sqlalchemy import Connection, text

from spatial.assignment import Report

SPHERE_M_PER_DEG = 6_371_008.8 * math.pi / 180  # PostGIS's sphere (use_spheroid = false)
RETIRED = ("abandoned", "removed")


def sphere_metres(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres on PostGIS's mean sphere (vectorised haversine)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def _tree(conn: Connection, kinds: str) -> tuple[shapely.STRtree, list[str]]:
    rows = conn.execute(text(
        "SELECT grid_code, ST_AsBinary(geom) FROM grid_geometry WHERE valid_to IS NULL AND kind IN " + kinds
        + " ORDER BY grid_code")).all()
    return shapely.STRtree(shapely.from_wkb([bytes(g) for _, g in rows])), [code for code, _ in rows]


@dataclass
class Components:
    """Point anchors and attributes of components (ST_PointOnSurface, as in the SQL)."""

    codes: np.ndarray
    classes: np.ndarray
    owners: np.ndarray
    status: np.ndarray
    districts: np.ndarray
    xy: np.ndarray
    lookup: dict[str, int]


class BatchIndex:
    """Everything one batch needs, read once from PostGIS."""

    def __init__(self, conn: Connection, reports: list[Report]) -> None:
        self.base_tree, self.base_codes = _tree(conn, "('base')")
        self.special_tree, self.special_codes = _tree(conn, "('enterprise', 'park', 'scenic', 'commercial')")
        self.components = self._components(conn)
        self.trees: dict[tuple[str, ...] | None, tuple[shapely.STRtree, np.ndarray]] = {}
        first = min(r.at for r in reports) - timedelta(hours=24)
        last = max(r.at for r in reports)
        self.open_cases = conn.execute(text(
            "SELECT id, category_code, ST_X(location), ST_Y(location), component_code, reported_at FROM \"case\""
            " WHERE state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"
            " AND reported_at > :first AND reported_at <= :last"), {"first": first, "last": last}).all()

    @staticmethod
    def _components(conn: Connection) -> Components:
        rows = conn.execute(text(
            "SELECT code, class_code, owner_key, status, district_code, ST_X(p), ST_Y(p)"
            " FROM component, ST_PointOnSurface(geom) AS p")).all()
        codes = np.array([r[0] for r in rows])
        return Components(codes, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                          np.array([r[3] for r in rows]), np.array([r[4] for r in rows]),
                          np.array([(r[5], r[6]) for r in rows], dtype=float),
                          {code: i for i, code in enumerate(codes.tolist())})

    def grids(self, xy: np.ndarray) -> tuple[list[str | None], list[list[str]]]:
        """Return the base grid (smallest covering code) and the covering special grids of each point."""
        points = shapely.points(xy)
        hits, which = self.base_tree.query(points, predicate="covered_by")
        best = np.full(len(xy), np.iinfo(np.int64).max)
        np.minimum.at(best, hits, which)
        base = [self.base_codes[b] if b != np.iinfo(np.int64).max else None for b in best.tolist()]
        specials: list[list[str]] = [[] for _ in range(len(xy))]
        hits, which = self.special_tree.query(points, predicate="covered_by")
        for hit, index in sorted(zip(hits.tolist(), which.tolist(), strict=True)):
            specials[hit].append(self.special_codes[index])
        return base, specials

    def nearest_component(self, classes: tuple[str, ...] | None, lon: float, lat: float,
                          radius_m: float) -> int | None:
        """Return the index of the nearest usable component of ``classes`` within ``radius_m``, or None."""
        if classes not in self.trees:
            c = self.components
            usable = ~np.isin(c.status, RETIRED)
            if classes is not None:
                usable &= np.isin(c.classes, classes)
            members = np.flatnonzero(usable)
            self.trees[classes] = (shapely.STRtree(shapely.points(c.xy[members])), members)
        tree, members = self.trees[classes]
        box = radius_m / (SPHERE_M_PER_DEG * max(math.cos(math.radians(lat)), 0.01)) * 1.01
        near = members[tree.query(shapely.box(lon - box, lat - box, lon + box, lat + box))]
        if len(near) == 0:
            return None
        metres = sphere_metres(lon, lat, self.components.xy[near, 0], self.components.xy[near, 1])
        order = np.lexsort((self.components.codes[near], metres))
        return int(near[order[0]]) if metres[order[0]] <= radius_m else None

    def open_originals(self) -> list[tuple[int, str, float, float, str | None, datetime]]:
        """Return the open original cases that rows of this batch may duplicate."""
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in self.open_cases]

