"""Generate the demo's coded components: classes by the CSV weights, placed along roads and in town centres.

Each component's grid is the base grid covering its anchor point (``ST_PointOnSurface`` of its geometry;
for a point, the point itself). On a shared edge the grid with the smallest code wins (SPEC rule 1).
Line components are three-vertex lines whose middle vertex is the anchor; polygon components are
rectangles with power-of-two half sizes centred on the anchor, so GEOS's interior point is exactly it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import shapely

from spatial.demo.roads import DEG_PER_KM_X, DEG_PER_KM_Y, points_along, road_network

ROAD_SHARE = 0.8
STATUS_WEIGHTS = {"intact": 0.93, "damaged": 0.035, "missing": 0.01, "abandoned": 0.01, "removed": 0.015}
# Owners that hand day-to-day maintenance to a contractor (养护单位); others maintain their own.
MAINTAINERS = {
    "LIGHTING": ("LIGHT_CO", "吴中区路灯养护有限公司", "Street Light Maintenance Co."),
    "SANITATION": ("CLEAN_CO", "吴中区环卫保洁服务公司", "Sanitation Services Co."),
    "PARKS": ("GREEN_CO", "吴中区绿化养护工程公司", "Greening Maintenance Co."),
    "TRAFFIC": ("SIGN_CO", "交通设施养护中心", "Traffic Facilities Maintenance Centre"),
}
SOURCES = ("2019年城市部件普查", "2022年部件补充普查", "日常巡查更新")
SURVEY_START = date(2019, 3, 1)


@dataclass
class ClassInfo:
    """What the generator needs of one component class."""

    code: str
    name: str
    geometry_kind: str
    owner: str
    weight: float


@dataclass
class ComponentSet:
    """The generated components as parallel arrays (row i of each is one component)."""

    codes: np.ndarray
    class_codes: np.ndarray
    anchors: np.ndarray  # (n, 2) lon, lat
    grid_index: np.ndarray  # index into the base grid list (sorted by code)
    geoms: np.ndarray  # shapely geometries
    owners: np.ndarray
    status: np.ndarray
    surveyed: np.ndarray  # days after SURVEY_START
    changed: np.ndarray  # days after survey of the last status change (0: none)
    source: np.ndarray


class PointSampler:
    """Draws points inside the district's base grids: mostly near roads, the rest by urban density."""

    def __init__(self, district, centres: np.ndarray, grids: list, density, rng: np.random.Generator) -> None:
        self.rng = rng
        self.density = density
        self.district = district
        self.tree = shapely.STRtree([g.geom for g in grids])
        self.segments = road_network(district, centres, rng)
        mid_x = (self.segments[:, 0] + self.segments[:, 2]) / 2
        mid_y = (self.segments[:, 1] + self.segments[:, 3]) / 2
        length = np.hypot((self.segments[:, 2] - self.segments[:, 0]) / DEG_PER_KM_X,
                          (self.segments[:, 3] - self.segments[:, 1]) / DEG_PER_KM_Y)
        self.weights = length * (0.15 + density(mid_x, mid_y))

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return points, road directions and base grid indexes; points outside every grid are redrawn."""
        from spatial.demo.partition import sample_points

        on_road = int(count * ROAD_SHARE)
        points, direction = points_along(self.segments, self.weights, on_road, self.rng)
        scattered = sample_points(self.district, count - on_road, self.rng, self.density)
        points = np.round(np.vstack([points, scattered]), 7)
        direction = np.vstack([direction, np.tile([1.0, 0.0], (count - on_road, 1))])
        grid = self.locate(points)
        missing = grid < 0
        while missing.any():
            redo, redo_dir = points_along(self.segments, self.weights, int(missing.sum()), self.rng)
            points[missing] = np.round(redo, 7)
            direction[missing] = redo_dir
            grid[missing] = self.locate(points[missing])
            missing = grid < 0
        return points, direction, grid

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Return for each point the index of the covering grid with the smallest code, or -1."""
        hits, which = self.tree.query(shapely.points(points), predicate="intersects")
        grid = np.full(len(points), np.iinfo(np.int64).max)
        np.minimum.at(grid, hits, which)
        grid[grid == np.iinfo(np.int64).max] = -1
        return grid


def shapes_for(kind: np.ndarray, anchors: np.ndarray, direction: np.ndarray, rng: np.random.Generator):
    """Return geometries: points, three-vertex lines, or rectangles exactly centred on the anchors."""
    geoms = shapely.points(anchors)
    lines = np.flatnonzero(kind == "line")
    if len(lines):
        half = rng.uniform(0.008, 0.04, len(lines))[:, None]  # km
        step = direction[lines] * half * np.array([DEG_PER_KM_X, DEG_PER_KM_Y])
        coords = np.stack([anchors[lines] - step, anchors[lines], anchors[lines] + step], axis=1)
        geoms[lines] = shapely.linestrings(coords)
    boxes = np.flatnonzero(kind == "polygon")
    if len(boxes):
        # Power-of-two half sizes keep (min + max) / 2 exact, so the interior point is the anchor itself.
        hx = 2.0 ** rng.integers(-14, -11, len(boxes))
        hy = 2.0 ** rng.integers(-14, -11, len(boxes))
        x, y = anchors[boxes, 0], anchors[boxes, 1]
        geoms[boxes] = shapely.box(x - hx, y - hy, x + hx, y + hy)
    return geoms


def generate_components(
    district_code: str, classes: list[ClassInfo], sampler: PointSampler, count: int, rng: np.random.Generator
) -> ComponentSet:
    """Generate ``count`` components of ``district_code`` with valid, unique 16-digit codes."""
    weights = np.array([c.weight for c in classes], dtype=float)
    pick = rng.choice(len(classes), size=count, p=weights / weights.sum())
    anchors, direction, grid = sampler.sample(count)
    # Codes run per class in grid order, so neighbouring components have neighbouring serials.
    order = np.lexsort((anchors[:, 0], grid, pick))
    pick, anchors, direction, grid = pick[order], anchors[order], direction[order], grid[order]
    class_codes = np.array([c.code for c in classes])[pick]
    serial = np.zeros(count, dtype=np.int64)
    for index in range(len(classes)):
        members = np.flatnonzero(pick == index)
        serial[members] = np.arange(1, len(members) + 1)
    codes = np.char.add(np.char.add(district_code, class_codes), np.char.zfill(serial.astype(str), 6))
    kinds = np.array([c.geometry_kind for c in classes])[pick]
    statuses = list(STATUS_WEIGHTS)
    status = np.array(statuses)[rng.choice(len(statuses), size=count, p=list(STATUS_WEIGHTS.values()))]
    surveyed = rng.integers(0, (date(2024, 12, 31) - SURVEY_START).days, count)
    changed = np.where(status == "intact", 0, rng.integers(30, 600, count))
    return ComponentSet(
        codes=codes, class_codes=class_codes, anchors=anchors, grid_index=grid,
        geoms=shapes_for(kinds, anchors, direction, rng), owners=np.array([c.owner for c in classes])[pick],
        status=status, surveyed=surveyed, changed=changed,
        source=np.array(SOURCES)[rng.choice(3, size=count, p=[0.7, 0.2, 0.1])],
    )


def survey_date(days: int) -> date:
    """Return the survey date ``days`` after the first survey."""
    return SURVEY_START + timedelta(days=int(days))
