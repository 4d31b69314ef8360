"""In-process spatial indexes for big batches (STYLE: "an in-process STRtree serves batch work").

For a bulk file of thousands of reports, probing PostGIS row by row costs milliseconds a row. Instead the
current base grids, special grids, the components a batch needs and the open original cases of its time
window are read from PostGIS once, indexed with shapely's STRtree, and every row is assigned in
vectorised steps. PostGIS stays the only source of truth: the indexes live for one batch, inside its
transaction, and ``tests/integration/test_bulk.py`` checks that they assign exactly as ``assign_core.sql``.

Reading 680,000 components row by row costs seconds in the driver alone, so point components arrive as
a handful of aggregated values (codes, classes and owners as one delimited text each, locations as
concatenated little-endian WKB points read straight into numpy); the few line and polygon components
arrive row by row with their whole geometry, so that distances to them are distances to the shape, as
PostGIS measures them.

Those components are the slowest read (seconds) and do not depend on the batch, so a caller holding a big
body can start reading them with ``prefetch_usable`` on a connection of its own while it parses the body.
They are then read a moment before the batch's own transaction begins, in their own snapshot; components
named by code are always read inside the batch's transaction.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text

from spatial.cases.assignment.rules import DUPLICATE_WINDOW, RETIRED, AssignmentInput
from spatial.codes import SPECIAL_KINDS_SQL
from spatial.store.models.components import STATUSES

SPHERE_M_PER_DEG = 6_371_008.8 * math.pi / 180  # PostGIS's sphere (use_spheroid = false)
USABLE = tuple(s for s in STATUSES if s not in RETIRED)  # take new cases (assign_core.sql lists them)
_WKB_POINT = np.dtype([("order", "u1"), ("kind", "<u4"), ("x", "<f8"), ("y", "<f8")])


def sphere_metres(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres on PostGIS's mean sphere (vectorised haversine)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def metres_to_shape(lon: float, lat: float, shape: shapely.Geometry) -> float:
    """Distance in metres from (lon, lat) to a line or polygon: its nearest point found in a plane scaled
    at the report's latitude, then the great-circle distance to that point. Within the 30 m radius this
    differs from PostGIS's geography distance by far less than the 0.1 m the API rounds to."""
    k = math.cos(math.radians(lat))
    scaled = shapely.transform(shape, lambda c: c * np.array([k, 1.0]))
    if shapely.covers(scaled, shapely.Point(lon * k, lat)):
        return 0.0
    nearest = shapely.get_coordinates(shapely.shortest_line(scaled, shapely.Point(lon * k, lat)))[0]
    return float(sphere_metres(lon, lat, nearest[0] / k, nearest[1]))


def _tree(conn: Connection, kinds: str) -> tuple[shapely.STRtree, list[str]]:
    rows = conn.execute(text(
        "SELECT grid_code, ST_AsBinary(geom) FROM grid_geometry WHERE valid_to IS NULL AND kind IN " + kinds
        + " ORDER BY grid_code")).all()
    return shapely.STRtree(shapely.from_wkb([bytes(g) for _, g in rows])), [code for code, _ in rows]


@dataclass(frozen=True)
class Component:
    """One component as the assignment needs it."""

    code: str
    class_code: str
    owner_key: str
    status: str
    district_code: str
    geom: shapely.Geometry

    def metres_from(self, lon: float, lat: float) -> float:
        """Distance from (lon, lat) in metres, as PostGIS's ``geography`` distance on the sphere."""
        if shapely.get_type_id(self.geom) == 0:  # a point
            x, y = shapely.get_coordinates(self.geom)[0]
            return float(sphere_metres(lon, lat, x, y))
        return metres_to_shape(lon, lat, self.geom)


@dataclass
class Usable:
    """Components that take new cases, for the nearest-component rule: arrays by position."""

    codes: list[str]
    classes: np.ndarray
    owners: list[str]
    geoms: np.ndarray  # shapely geometries: points, and the whole shape of lines and polygons
    xy: np.ndarray  # point coordinates (NaN for shapes)

    @classmethod
    def load(cls, conn: Connection) -> Usable:
        """Read every usable component: points aggregated, shapes row by row."""
        dbapi = conn.connection.dbapi_connection
        if dbapi is None:
            raise RuntimeError("the connection is closed")
        cursor = dbapi.cursor()
        cursor.execute(
            "SELECT count(*), string_agg(code, ','), string_agg(class_code, ','), string_agg(owner_key, ','),"
            " string_agg(ST_AsBinary(geom, 'NDR'), ''::bytea) FROM component"
            " WHERE status = ANY(%s) AND ST_GeometryType(geom) = 'ST_Point'", (list(USABLE),))
        count, codes, classes, owners, wkb = cursor.fetchone() or (0, "", "", "", b"")
        points = np.frombuffer(wkb or b"", dtype=_WKB_POINT)
        if not (np.all(points["order"] == 1) and np.all(points["kind"] == 1)):
            raise RuntimeError("component points did not arrive as 2D little-endian WKB points")
        code_list: list[str] = codes.split(",") if count else []
        class_list: list[str] = classes.split(",") if count else []
        owner_list: list[str] = owners.split(",") if count else []
        if not len(code_list) == len(class_list) == len(owner_list) == len(points):
            raise RuntimeError("component columns arrived with different lengths")
        cursor.execute(
            "SELECT code, class_code, owner_key, ST_AsBinary(geom) FROM component"
            " WHERE status = ANY(%s) AND ST_GeometryType(geom) <> 'ST_Point'", (list(USABLE),))
        shapes = cursor.fetchall()
        xy = np.concatenate([np.column_stack([points["x"], points["y"]]), np.full((len(shapes), 2), np.nan)])
        geoms = np.concatenate([shapely.points(xy[:len(points)]),
                                shapely.from_wkb([bytes(s[3]) for s in shapes]) if shapes else []])
        return cls(code_list + [s[0] for s in shapes], np.array(class_list + [s[1] for s in shapes]),
                   owner_list + [s[2] for s in shapes], geoms, xy)

    def metres_from(self, lons: np.ndarray, lats: np.ndarray, members: np.ndarray) -> np.ndarray:
        """Distances in metres from each (lon, lat) to the component at the same place of ``members``."""
        metres = sphere_metres(lons, lats, self.xy[members, 0], self.xy[members, 1])
        for i in np.flatnonzero(np.isnan(metres)):
            metres[i] = metres_to_shape(float(lons[i]), float(lats[i]), self.geoms[members[i]])
        return metres


def prefetch_usable(engine: Engine) -> Future[Usable]:
    """Start reading the usable components in a thread, on a connection of the engine's own."""

    def load() -> Usable:
        with engine.connect() as conn:
            return Usable.load(conn)

    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usable-components")
    try:
        return worker.submit(load)
    finally:
        worker.shutdown(wait=False)  # the thread ends when the read does


class BatchIndex:
    """Everything one batch needs, read once from PostGIS (the usable components possibly prefetched)."""

    def __init__(self, conn: Connection, reports: list[AssignmentInput], usable: Future[Usable] | None = None) -> None:
        self.base_tree, self.base_codes = _tree(conn, "('base')")
        self.special_tree, self.special_codes = _tree(conn, SPECIAL_KINDS_SQL)
        wanted = any(r.wants_nearest_component for r in reports)
        self.usable = (usable.result() if usable else Usable.load(conn)) if wanted else None
        self.named = self._named(conn, sorted({r.component_code for r in reports if r.component_code}))
        self.trees: dict[tuple[str, ...] | None, tuple[shapely.STRtree, np.ndarray]] = {}
        first = min(r.at for r in reports) - DUPLICATE_WINDOW
        last = max(r.at for r in reports)
        # The open originals that rows of this batch may duplicate (columns in the order of Cases.from_rows).
        self.open_cases = conn.execute(text(
            "SELECT id, category_code, ST_X(location), ST_Y(location), reported_at, component_code, source, state"
            " FROM \"case\""
            " WHERE state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"
            " AND reported_at > :first AND reported_at <= :last"), {"first": first, "last": last}).all()

    @staticmethod
    def _named(conn: Connection, codes: list[str]) -> dict[str, Component]:
        """The components the batch names by code, whatever their status (to say why one is refused)."""
        if not codes:
            return {}
        rows = conn.execute(text(
            "SELECT code, class_code, owner_key, status, district_code, ST_AsBinary(geom) FROM component"
            " WHERE code = ANY(:codes)"), {"codes": codes}).all()
        return {r[0]: Component(r[0], r[1], r[2], r[3], r[4], shapely.from_wkb(bytes(r[5]))) for r in rows}

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

    def nearest_components(self, classes: tuple[str, ...] | None, lons: np.ndarray, lats: np.ndarray,
                           radius_m: float) -> list[tuple[Component, float] | None]:
        """For each point, the nearest usable component of ``classes`` within ``radius_m`` and its distance
        in metres (ties: the smaller code), or None — one tree query for all the points."""
        usable = self.usable
        if usable is None:
            raise RuntimeError("the batch index was built without components")
        if classes not in self.trees:
            members = (np.arange(len(usable.codes)) if classes is None
                       else np.flatnonzero(np.isin(usable.classes, classes)))
            self.trees[classes] = (shapely.STRtree(usable.geoms[members]), members)
        tree, members = self.trees[classes]
        reach = radius_m / (SPHERE_M_PER_DEG * np.maximum(np.cos(np.radians(lats)), 0.01)) * 1.01
        qi, ti = tree.query(shapely.box(lons - reach, lats - reach, lons + reach, lats + reach))
        found: list[tuple[Component, float] | None] = [None] * len(lons)
        if not len(qi):
            return found
        near = members[ti]
        metres = usable.metres_from(lons[qi], lats[qi], near)
        inside = metres <= radius_m
        qi, near, metres = qi[inside], near[inside], metres[inside]
        codes = np.array([usable.codes[i] for i in near.tolist()])
        order = np.lexsort((codes, metres, qi))
        rows, first = np.unique(qi[order], return_index=True)
        for row, k in zip(rows.tolist(), order[first].tolist(), strict=True):
            i = int(near[k])
            found[row] = (Component(usable.codes[i], str(usable.classes[i]), usable.owners[i], "usable", "",
                                    usable.geoms[i]), float(metres[k]))
        return found
