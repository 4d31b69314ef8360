"""Repairs and the topology report of imported grids (issue 19, item 1), before anything is stored.

The rules, in order (every repair is reported with the codes, a location and its area in m²):

1. **codes**: a code has the level's width (6, 9, 12, 15 digits) and, when the file names a parent, extends
   the parent's code by three digits; a code given twice is a duplicate. These are problems, never repaired.
2. **make valid**: an invalid shape is repaired with ``make_valid``; only its polygonal parts are kept (lines
   and points left by the repair are dropped and counted). A feature without area is a problem.
3. **parent**: a child (levels 2–4) must lie inside its parent's current shape. What reaches outside by at
   most the sliver threshold is clipped; more is a problem (``outside_parent``, with its polygon).
4. **overlaps**: two grids overlapping by at most the sliver threshold — the grid with the lower code keeps
   the shared area (deterministic); a larger overlap is a problem with its polygon.
5. **gaps**: the area of the parent (for districts: the holes of their union) that no grid covers; a piece
   of at most the sliver threshold goes to the grid sharing the longest border with it, a larger one is a
   problem (``gap``) with its polygon.
6. **not in the file**: a current grid of the same level under a parent the file covers, but missing from
   the file, is a problem: the file gives every child of each parent it touches (retire grids in a plan).

Sliver thresholds per level (m², ``SLIVER_M2``): districts 1 km², towns 0.1 km², communities 10,000 m²,
base grids 1,000 m². Areas are geodesic (pyproj's ``Geod`` on WGS 84) over edges straight in lon/lat, as
PostGIS reads the stored grids (``area_m2``); pieces up to 1 m² (``NOISE_M2``) are floating-point seams,
neither repaired nor problems.

**Special grids** (level ``special``: enterprise, park, scenic and commercial grids, SPEC "Grids") overlay the
base grids and may overlap each other, so the partition rules (overlaps, gaps, not in the file) do not apply.
Theirs: the code is a district code, the kind's letter and four digits (``320506S0001``; a parent column,
when given, names that district) and is given once; the shape is made valid as above; the grid lies inside
its district — the coverage cases are assigned in — clipped up to 1,000 m² (``SPECIAL_SLIVER_M2``), a
problem beyond; and two features of the same shape (within the threshold) are a ``duplicate``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from spatial.codes import LEVEL_WIDTHS, SPECIAL_CODE, district_of
from spatial.geo.geometry import polygonal
from spatial.grids.imports import SourceRow
from spatial.text import text_problem

SLIVER_M2: dict[int, float] = {1: 1_000_000.0, 2: 100_000.0, 3: 10_000.0, 4: 1_000.0}
SPECIAL = "special"  # the level of special grids in an import (they have none in ``grid.level``)
SPECIAL_SLIVER_M2 = 1_000.0
Level = int | str  # 1–4, or SPECIAL
GEOD = Geod(ellps="WGS84")


NOISE_M2 = 1.0  # seams of floating-point geometry, not land: neither repaired nor a problem
EDGE_STEP_DEG = 0.0005  # ~50 m: a geodesic and a lon/lat straight line this long part by well under 1 mm


def area_m2(geom: BaseGeometry) -> float:
    """The area in m² of a lon/lat shape whose edges are straight in lon/lat — as PostGIS geometry, locate
    and the partition check (spatial/store/sql/partition_gaps.sql) read the grids. The edges are cut into
    steps of at most ``EDGE_STEP_DEG`` before the geodesic area is taken: measured with geodesic edges, the
    zero-width seam between a parent's long straight edge and its children's extra vertices on it (a
    partition exact in lon/lat, such as the demo's Voronoi grids) counts the thousands of m² between the
    geodesic and the lon/lat line, and an exact partition is refused for a gap it does not have."""
    if geom.is_empty:
        return 0.0
    return abs(GEOD.geometry_area_perimeter(shapely.segmentize(geom, EDGE_STEP_DEG))[0])


@dataclass
class Finding:
    """One repair made or one problem found: what, which grids, where, how large, and what was (or is to be)
    done; problems carry their polygon."""

    kind: str
    codes: list[str]
    area_m2: float
    location: tuple[float, float] | None
    action: str
    geometry: BaseGeometry | None = None

    def as_dict(self, with_geometry: bool = False) -> dict[str, Any]:
        """The finding as JSON (the polygon as GeoJSON when asked and known)."""
        out: dict[str, Any] = {"kind": self.kind, "codes": self.codes, "area_m2": round(self.area_m2, 1),
                               "location": [round(v, 6) for v in self.location] if self.location else None,
                               "action": self.action}
        if with_geometry and self.geometry is not None:
            out["geometry"] = mapping(self.geometry)
        return out


def _finding(kind: str, codes: list[str], geom: BaseGeometry | None, action: str) -> Finding:
    at = geom.representative_point() if geom is not None and not geom.is_empty else None
    return Finding(kind, codes, area_m2(geom) if geom is not None else 0.0,
                   (at.x, at.y) if at is not None else None, action, geom)


@dataclass
class Checked:
    """The grids as they would be stored, with the repairs made and the problems that block storing."""

    level: Level
    grids: dict[str, tuple[str, str | None, MultiPolygon]] = field(default_factory=dict)
    repairs: list[Finding] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the grids may be stored (no problem left)."""
        return not self.problems

    def report(self) -> dict[str, Any]:
        """The topology report as JSON: counts, repairs, and problems with their polygons."""
        return {"level": self.level, "grids": len(self.grids), "ok": self.ok,
                "repairs": [f.as_dict() for f in self.repairs],
                "problems": [f.as_dict(with_geometry=True) for f in self.problems]}


def _parent_code(code: str, level: Level) -> str | None:
    if level == SPECIAL:
        return district_of(code)
    return code[:LEVEL_WIDTHS[int(level) - 1]] if level != 1 else None


def _code_shape(code: str, index: int, level: Level) -> str | None:
    """Why ``code`` cannot be a code of ``level`` (None: it can)."""
    if level == SPECIAL:
        return None if SPECIAL_CODE.match(code) else (
            f"code {code!r} (feature {index}) is not a special grid code (district code, E/P/S/C, 4 digits)")
    width = LEVEL_WIDTHS[int(level)]
    return None if len(code) == width and code.isdigit() else f"code {code!r} (feature {index}) is not {width} digits"


def _check_code(row: SourceRow, level: Level, seen: set[str]) -> str | None:
    bad = _code_shape(row.code, row.index, level)
    if bad:
        return bad
    if row.parent is not None and row.parent != _parent_code(row.code, level):
        return f"code {row.code} does not extend its parent's code {row.parent}"
    if row.code in seen:
        return f"code {row.code} is given twice"
    return text_problem(row.name) and f"name of {row.code}: {text_problem(row.name)}"


def _where(problem: str, geom: BaseGeometry) -> tuple[float, float]:
    """The point GEOS names in its reason (``Self-intersection[120.6 31.2]``), else a point of ``geom``."""
    found = re.search(r"\[(-?[0-9.eE+-]+) (-?[0-9.eE+-]+)\]", problem)
    if found:
        return float(found.group(1)), float(found.group(2))
    at = geom.representative_point()
    return at.x, at.y


def _make_valid(out: Checked, code: str, geom: BaseGeometry) -> MultiPolygon | None:
    fixed = geom
    if not geom.is_valid:
        problem = explain_validity(geom)
        fixed = shapely.make_valid(geom)
        before, after = area_m2(geom), area_m2(polygonal(fixed))
        out.repairs.append(Finding("invalid", [code], abs(after - before), _where(problem, geom),
                                   f"{problem}: make_valid, {before:,.0f} m² -> {after:,.0f} m²"))
    dropped = [p for p in shapely.get_parts(fixed) if p.geom_type not in ("Polygon", "MultiPolygon")]
    kept = polygonal(fixed)
    if dropped:
        at = dropped[0].representative_point()
        out.repairs.append(Finding("non_polygonal", [code], 0.0, (at.x, at.y),
                                   f"{len(dropped)} line or point part(s) left by the repair dropped (no area)"))
    if kept.is_empty or area_m2(kept) == 0:
        out.problems.append(_finding("empty", [code], None, "the feature has no polygonal area"))
        return None
    return kept


def check_grids(rows: list[SourceRow], level: Level, parents: dict[str, BaseGeometry],
                existing: dict[str, str | None], *, sliver_m2: float | None = None) -> Checked:
    """Repair the rows and report their topology against ``parents`` (current shapes of level − 1, by code;
    for special grids the districts) and ``existing`` (current grids of ``level``: code → parent code)."""
    if level == SPECIAL:
        return check_specials(rows, parents, sliver_m2=sliver_m2)
    sliver = SLIVER_M2[int(level)] if sliver_m2 is None else sliver_m2
    out = _read(rows, level)
    if level != 1:
        _inside_parents(out, parents, sliver)
    _overlaps(out, sliver)
    _gaps(out, parents, sliver)
    _not_in_file(out, existing)
    return out


def check_specials(rows: list[SourceRow], districts: dict[str, BaseGeometry], *,
                   sliver_m2: float | None = None) -> Checked:
    """Repair special grids and report what matters for an overlay: codes, validity, inside their district
    (``districts``: current shapes by code), the same shape given twice. They may overlap and leave gaps."""
    sliver = SPECIAL_SLIVER_M2 if sliver_m2 is None else sliver_m2
    out = _read(rows, SPECIAL)
    _inside_parents(out, districts, sliver)
    _same_shapes(out, sliver)
    return out


def _read(rows: list[SourceRow], level: Level) -> Checked:
    """The rows with sound codes, made valid; bad codes, duplicates and empty features as problems."""
    out = Checked(level)
    seen: set[str] = set()
    for row in rows:
        problem = _check_code(row, level, seen)
        seen.add(row.code)
        if problem:
            out.problems.append(_finding("bad_code" if "twice" not in problem else "duplicate", [row.code],
                                         row.geom, problem))
            continue
        if row.geom is None:
            out.problems.append(_finding("empty", [row.code], None, "the feature has no geometry"))
            continue
        shape = _make_valid(out, row.code, row.geom)
        if shape is not None:
            out.grids[row.code] = (row.name or row.code, _parent_code(row.code, level), shape)
    return out


def _set(out: Checked, code: str, geom: BaseGeometry) -> None:
    name, parent, _ = out.grids[code]
    shape = polygonal(geom if geom.is_valid else shapely.make_valid(geom))
    out.grids[code] = (name, parent, shape)


def _inside_parents(out: Checked, parents: dict[str, BaseGeometry], sliver: float) -> None:
    for code, (_, parent, shape) in list(out.grids.items()):
        if parent not in parents:
            out.problems.append(_finding("no_parent", [code], shape, f"no current grid {parent} to hold {code}"))
            del out.grids[code]
            continue
        outside = polygonal(shape.difference(parents[parent]))
        size = area_m2(outside)
        if size <= NOISE_M2:
            continue
        if size <= sliver:
            _set(out, code, shape.intersection(parents[parent]))
            out.repairs.append(_finding("clipped", [code, parent], outside, f"clipped to its parent {parent}"))
        else:
            out.problems.append(_finding("outside_parent", [code, parent], outside,
                                         f"{size:,.0f} m² of {code} lie outside its parent {parent}"))


def _overlaps(out: Checked, sliver: float) -> None:
    codes = sorted(out.grids)
    tree = shapely.STRtree([out.grids[c][2] for c in codes])
    for i, j in zip(*tree.query([out.grids[c][2] for c in codes], predicate="intersects"), strict=True):
        if i >= j:
            continue
        low, high = codes[i], codes[j]
        overlap = polygonal(out.grids[low][2].intersection(out.grids[high][2]))
        size = area_m2(overlap)
        if size <= NOISE_M2:
            continue
        if size <= sliver:
            _set(out, high, out.grids[high][2].difference(out.grids[low][2]))
            out.repairs.append(_finding("overlap", [low, high], overlap,
                                        f"the overlap stays with {low} (lower code)"))
        else:
            out.problems.append(_finding("overlap", [low, high], overlap,
                                         f"{low} and {high} overlap by {size:,.0f} m²"))


def _same_shapes(out: Checked, sliver: float) -> None:
    """Two special grids whose shapes differ by at most ``sliver`` m²: the same grid given twice."""
    codes = sorted(out.grids)
    shapes = [out.grids[c][2] for c in codes]
    tree = shapely.STRtree(shapes)
    for i, j in zip(*tree.query(shapes, predicate="intersects"), strict=True):
        if i < j and area_m2(shapes[i].symmetric_difference(shapes[j])) <= sliver:
            out.problems.append(_finding("duplicate", [codes[i], codes[j]], shapes[i],
                                         f"{codes[i]} and {codes[j]} have the same shape: one grid given twice"))


def _holes(region: BaseGeometry | None, union: BaseGeometry) -> list[Polygon]:
    if region is not None:
        return list(polygonal(region.difference(union)).geoms)
    return [Polygon(ring) for part in polygonal(union).geoms for ring in part.interiors]


def _gaps(out: Checked, parents: dict[str, BaseGeometry], sliver: float) -> None:
    groups: dict[str | None, list[str]] = defaultdict(list)
    for code, (_, parent, _) in out.grids.items():
        groups[parent].append(code)
    for parent, codes in sorted(groups.items(), key=lambda kv: kv[0] or ""):
        union = shapely.union_all([out.grids[c][2] for c in codes])
        for hole in _holes(parents.get(parent) if parent else None, union):
            size = area_m2(hole)
            if size <= NOISE_M2:
                continue
            if size > sliver:
                where = f"of {parent} " if parent else ""
                out.problems.append(_finding("gap", [parent] if parent else [], hole,
                                             f"{size:,.0f} m² {where}covered by no grid"))
                continue
            border = {c: out.grids[c][2].boundary.intersection(hole.boundary).length for c in codes}
            winner = max(sorted(border), key=lambda c: border[c])
            _set(out, winner, out.grids[winner][2].union(hole))
            out.repairs.append(_finding("sliver", [winner], hole,
                                        f"gap given to {winner}, the grid with the longest border on it"))


def _not_in_file(out: Checked, existing: dict[str, str | None]) -> None:
    touched = {parent for _, parent, _ in out.grids.values() if parent is not None}
    for code, parent in sorted(existing.items()):
        if parent in touched and code not in out.grids:
            out.problems.append(_finding("not_in_file", [code], None,
                                         f"current grid {code} of {parent} is not in the file: the file gives every "
                                         "child of the parents it covers (retire it in a plan first)"))
