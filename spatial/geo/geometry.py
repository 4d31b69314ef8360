"""Geometry repair and conversion helpers shared by imports, the demo and the planner."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from spatial.errors import InvalidGeometryError, InvalidParameterError, InvalidTextError
from spatial.text import text_problem


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


def checked_shape(value: object, allowed: tuple[str, ...], *, what: str, max_vertices: int) -> BaseGeometry:
    """A GeoJSON geometry from a request as shapely, refused (InvalidGeometryError) unless it parses, is one of
    ``allowed`` types, is valid and non-empty, has at most ``max_vertices`` vertices and lies in lon/lat range
    — no repair: an editor must see and fix what they sent."""
    from shapely.geometry import shape


    try:
        geom = shape(value)
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.ShapelyError) as exc:  # an unknown type too
        raise InvalidGeometryError("geometry is not valid GeoJSON") from exc
    if geom.geom_type not in allowed:
        raise InvalidGeometryError(f"{what} is a {' or '.join(allowed)}, not a {geom.geom_type}")
    if geom.is_empty or not geom.is_valid:
        raise InvalidGeometryError(f"geometry is empty or invalid: {shapely.is_valid_reason(geom)}")
    if shapely.get_num_coordinates(geom) > max_vertices:
        raise InvalidGeometryError(f"geometry has more than {max_vertices:,} vertices")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidGeometryError("coordinates must be longitude, latitude in EPSG:4326")
    return geom


def coded_feature(feature: Any, code: str | None, *, pattern: re.Pattern[str],
                  code_hint: str) -> tuple[str, str, dict]:
    """The code, name and properties of a GeoJSON Feature describing a grid (``code``: the one the URL
    names, for a replace); InvalidParameterError naming the field otherwise."""

    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InvalidParameterError("the body must be a GeoJSON Feature", parameter="body")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidParameterError("properties must be an object", parameter="properties")
    given = props.get("code", code)
    if code is not None and given != code:
        raise InvalidParameterError("the feature's code differs from the one in the URL", parameter="code")
    if not isinstance(given, str) or not pattern.match(given):
        raise InvalidParameterError(code_hint, parameter="code")
    name = props.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise InvalidParameterError("name must be text of 1–100 characters", parameter="name")
    problem = text_problem(name)
    if problem:
        raise InvalidTextError(f"name {problem}", parameter="name")
    return given, name, props
