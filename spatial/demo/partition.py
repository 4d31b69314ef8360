"""Partition a polygon into children: weighted sample, balanced k-means seeds, Voronoi cells clipped to it.

Children are numbered in reading order — north to south in rows, west to east inside a row — as SPEC.md
asks for base grids. Voronoi cells share their edges exactly, so the clipped children cover the parent
with no gaps or overlaps beyond floating-point noise (checked in PostGIS by the topology tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Polygon

from spatial.geo.geometry import polygonal

# Degrees of longitude are shorter than degrees of latitude at Suzhou (31.3° N): scale x for distances.
X_SCALE = math.cos(math.radians(31.3))
KM_PER_DEG_LAT = 110.9

Density = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sample_points(
    shape: MultiPolygon | Polygon, count: int, rng: np.random.Generator, density: Density | None = None
) -> np.ndarray:
    """Return ``count`` points (lon, lat) inside ``shape``, drawn with probability ∝ ``density``."""
    minx, miny, maxx, maxy = shape.bounds
    shapely.prepare(shape)
    chunks: list[np.ndarray] = []
    have = 0
    while have < count:
        n = max(4 * (count - have), 256)
        xs = rng.uniform(minx, maxx, n)
        ys = rng.uniform(miny, maxy, n)
        keep = shapely.contains_xy(shape, xs, ys)
        if density is not None:
            weight = density(xs, ys)
            keep &= rng.random(n) * weight.max(initial=1e-12) <= weight
        chunk = np.column_stack([xs[keep], ys[keep]])
        chunks.append(chunk)
        have += len(chunk)
    return np.concatenate(chunks)[:count]


def kmeans_seeds(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 15) -> np.ndarray:
    """Return ``k`` distinct cluster centres of ``points`` (Lloyd's algorithm in scaled coordinates)."""
    scaled = points * np.array([X_SCALE, 1.0])
    centres = scaled[rng.choice(len(scaled), size=k, replace=False)]
    for _ in range(iterations):
        distance = ((scaled[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = distance.argmin(axis=1)
        for j in range(k):
            members = scaled[label == j]
            # An empty cluster takes a random point again, so that every child gets a seed.
            centres[j] = members.mean(axis=0) if len(members) else scaled[rng.integers(len(scaled))]
    return centres / np.array([X_SCALE, 1.0])


def voronoi_children(parent: MultiPolygon, seeds: np.ndarray) -> list[MultiPolygon]:
    """Return the Voronoi cells of ``seeds`` clipped to ``parent``, in seed order."""
    if len(seeds) == 1:
        return [parent]
    minx, miny, maxx, maxy = parent.bounds
    frame = shapely.box(minx - 1, miny - 1, maxx + 1, maxy + 1)
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=frame, ordered=True)
    return [polygonal(shapely.intersection(cell, parent)) for cell in cells.geoms]


def reading_order(shapes: Sequence[MultiPolygon]) -> list[int]:
    """Return indexes of ``shapes`` ordered north→south in rows, west→east inside each row."""
    points = [shape.representative_point() for shape in shapes]
    by_north = sorted(range(len(shapes)), key=lambda i: -points[i].y)
    rows = max(1, round(math.sqrt(len(shapes))))
    size = math.ceil(len(shapes) / rows)
    order: list[int] = []
    for start in range(0, len(by_north), size):
        order.extend(sorted(by_north[start:start + size], key=lambda i: points[i].x))
    return order


def allocate(total: int, weights: Sequence[float], minimum: int = 1) -> list[int]:
    """Split ``total`` into integer shares ∝ ``weights``, each at least ``minimum`` (largest remainder)."""
    if total < minimum * len(weights):
        raise ValueError(f"cannot give {len(weights)} parts at least {minimum} each out of {total}")
    spare = total - minimum * len(weights)
    weight_sum = float(sum(weights)) or 1.0
    exact = [spare * w / weight_sum for w in weights]
    shares = [minimum + math.floor(e) for e in exact]
    leftover = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (exact[i] - math.floor(exact[i])), reverse=True)
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return shares


def partition(
    parent: MultiPolygon,
    count: int,
    rng: np.random.Generator,
    density: Density | None = None,
    seeds: np.ndarray | None = None,
) -> list[tuple[int, MultiPolygon]]:
    """Split ``parent`` into ``count`` non-empty children; return (seed index, child) in reading order.

    With ``seeds`` given (e.g. real town centres) they are used as they are; otherwise seeds come from
    k-means over points sampled with ``density``, which makes children smaller where density is high.
    """
    if count == 1:
        return [(0, parent)]
    for _attempt in range(8):
        if seeds is None:
            sample = sample_points(parent, max(60 * count, 600), rng, density)
            chosen = kmeans_seeds(sample, count, rng)
        else:
            chosen = seeds
        children = voronoi_children(parent, chosen)
        if all(child.area > 0 for child in children):
            return [(i, children[i]) for i in reading_order(children)]
        if seeds is not None:
            break
    raise ValueError("a Voronoi cell fell outside its parent; choose seeds inside the parent")
