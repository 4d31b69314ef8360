"""Geometry repair and conversion helpers shared by imports, the demo and the planner."""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity


@dataclass(frozen=True)
class Repair:
    """What was wrong with a geometry and what was done about it."""

    subject: str
    problem: str
    action: str


def polygonal(geom: BaseGeometry) -> MultiPolygon:
    """Return the polygonal part of ``geom`` as a MultiPolygon (lines and points left by repair are dropped)."""
    if isinstance(geom, Polygon):
        return MultiPolygon([geom]) if not geom.is_empty else MultiPolygon()
    if isinstance(geom, MultiPolygon):
        return geom
    parts: list[Polygon] = []
    for part in getattr(geom, "geoms", []):
        parts.extend(polygonal(part).geoms)
    return MultiPolygon(parts)


def repair_polygon(subject: str, geom: BaseGeometry) -> tuple[MultiPolygon, list[Repair]]:
    """Make ``geom`` a valid MultiPolygon with ``make_valid``; report what was repaired, never silently."""
    if geom.is_valid:
        return polygonal(geom), []
    problem = explain_validity(geom)
    fixed = polygonal(shapely.make_valid(geom))
    action = f"make_valid: area {geom.area:.6g} -> {fixed.area:.6g} deg², {len(fixed.geoms)} part(s)"
    return fixed, [Repair(subject, problem, action)]
