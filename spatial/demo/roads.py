"""A synthetic road network for placing components and incidents "along lines".

Each town gets radial roads from its centre and a street grid around it; neighbouring towns are joined
by trunk roads. Roads are clipped to the district. The network is only a sampling aid: it is not stored.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon

from spatial.demo.partition import KM_PER_DEG_LAT, X_SCALE

DEG_PER_KM_Y = 1 / KM_PER_DEG_LAT
DEG_PER_KM_X = 1 / (KM_PER_DEG_LAT * X_SCALE)


def _offset(lon: float, lat: float, km: float, angle: float) -> tuple[float, float]:
    return lon + km * math.cos(angle) * DEG_PER_KM_X, lat + km * math.sin(angle) * DEG_PER_KM_Y


def _town_roads(lon: float, lat: float, rng: np.random.Generator) -> list[LineString]:
    roads = []
    for spoke in range(8):
        angle = spoke * math.pi / 4 + rng.normal(0, 0.15)
        length = rng.uniform(3, 7)
        points = [(lon, lat)]
        for step in range(1, 4):
            points.append(_offset(lon, lat, length * step / 3, angle + rng.normal(0, 0.08)))
        roads.append(LineString(points))
    tilt = rng.uniform(0, math.pi / 2)
    half_km, spacing_km = 1.6, 0.22
    for axis in (tilt, tilt + math.pi / 2):
        across = axis + math.pi / 2
        for k in np.arange(-half_km, half_km + 1e-9, spacing_km):
            mid = _offset(lon, lat, float(k), across)
            roads.append(LineString([_offset(*mid, -half_km, axis), _offset(*mid, half_km, axis)]))
    return roads


def road_network(district: MultiPolygon, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return road segments inside ``district`` as an (n, 4) array of lon1, lat1, lon2, lat2."""
    roads: list[LineString] = []
    for lon, lat in centres:
        roads.extend(_town_roads(float(lon), float(lat), rng))
    pairs: set[tuple[int, int]] = set()
    for i, (lon, lat) in enumerate(centres):
        distance = np.hypot((centres[:, 0] - lon) * X_SCALE, centres[:, 1] - lat)
        pairs.update((min(i, int(j)), max(i, int(j))) for j in np.argsort(distance)[1:3])
    roads.extend(LineString([tuple(centres[i]), tuple(centres[j])]) for i, j in sorted(pairs))
    clipped = shapely.intersection(np.array(roads, dtype=object), district)
    segments: list[np.ndarray] = []
    for line in shapely.get_parts(clipped):
        if line.geom_type != "LineString" or line.is_empty:
            continue
        coords = np.asarray(line.coords)
        segments.append(np.hstack([coords[:-1], coords[1:]]))
    return np.vstack(segments)


def points_along(
    segments: np.ndarray, weights: np.ndarray, count: int, rng: np.random.Generator, spread_m: float = 6.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``count`` points near roads (lon, lat) and the unit direction of the road at each."""
    pick = rng.choice(len(segments), size=count, p=weights / weights.sum())
    seg = segments[pick]
    t = rng.random(count)
    x = seg[:, 0] + t * (seg[:, 2] - seg[:, 0])
    y = seg[:, 1] + t * (seg[:, 3] - seg[:, 1])
    dx = (seg[:, 2] - seg[:, 0]) / DEG_PER_KM_X
    dy = (seg[:, 3] - seg[:, 1]) / DEG_PER_KM_Y
    norm = np.hypot(dx, dy) + 1e-12
    ux, uy = dx / norm, dy / norm
    side = np.clip(rng.normal(0, spread_m, count), -3 * spread_m, 3 * spread_m) / 1000
    x += -uy * side * DEG_PER_KM_X
    y += ux * side * DEG_PER_KM_Y
    return np.column_stack([x, y]), np.column_stack([ux, uy])
