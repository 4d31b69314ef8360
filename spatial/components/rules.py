"""The registry's rules for one component, once: every entry point (OGC API Part 4 edits, the survey import,
the REST registry) validates with these functions, so a rule changed here changes everywhere.

A component is valid when its 16-digit code (district + class + serial) names a known class and a known
district; its geometry is of the class's kind (point, line or polygon), valid, non-empty, at most
``MAX_VERTICES`` vertices, at most ``MAX_AREA_M2`` square metres, in longitude/latitude range and inside its
code's district (its point on surface, as the grid assignment reads it); its departments are known; its
status is one of ``STATUSES``; its texts are of bounded length and hold only characters XML 1.0 allows.
The reference the rules read (classes, departments, districts) is a ``RuleBook``, loaded once per edit or
once per import, so that a 680,000-row survey is checked in process without a query per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from spatial import errors
from spatial.codes import COMPONENT_CODE, component_class_of, district_of
from spatial.store.models.components import STATUSES
from spatial.text import text_problem

MAX_VERTICES = 5_000
MAX_AREA_M2 = 1_000_000
KINDS = {"point": ("Point",), "line": ("LineString", "MultiLineString"), "polygon": ("Polygon", "MultiPolygon")}
EDITABLE = ("code", "name", "owner_key", "manager_key", "maintainer_key", "status", "note")
TEXT_LIMITS = {"name": 200, "owner_key": 64, "manager_key": 64, "maintainer_key": 64, "note": 2000}
_GEOD = Geod(ellps="WGS84")
_TYPE_IDS = {"point": {0}, "line": {1, 5}, "polygon": {3, 6}}  # shapely's type ids of each kind's geometries


@dataclass(frozen=True)
class ComponentInput:
    """A validated component."""

    code: str
    name: str | None
    owner_key: str
    manager_key: str
    maintainer_key: str
    status: str
    note: str | None
    geometry: Any  # shapely geometry in EPSG:4326
    surveyed_on: date | None = None


@dataclass(frozen=True)
class RuleBook:
    """What the rules read: classes (code → geometry kind, default owner), departments, and the current
    district shapes (prepared for fast point-in-polygon tests)."""

    classes: dict[str, tuple[str, str]]
    departments: frozenset[str]
    districts: dict[str, BaseGeometry]

    @classmethod
    def load(cls, conn: Connection) -> RuleBook:
        """Read the rule book from the database (current district shapes only)."""
        classes = {c: (k, o) for c, k, o in conn.execute(text(
            "SELECT code, geometry_kind, default_owner FROM component_class"))}
        departments = frozenset(k for (k,) in conn.execute(text("SELECT key FROM department")))
        districts = {}
        for code, wkb in conn.execute(text("SELECT grid_code, ST_AsBinary(geom) FROM grid_geometry"
                                           " WHERE valid_to IS NULL AND kind = 'district'")):
            shape = shapely.from_wkb(bytes(wkb))
            shapely.prepare(shape)
            districts[code] = shape
        return cls(classes, departments, districts)

    def district_at(self, point: BaseGeometry) -> str | None:
        """The district covering ``point`` (the smallest code when several do), or None."""
        return min((code for code, shape in self.districts.items() if shape.covers(point)), default=None)


def check_code(book: RuleBook, code: Any) -> tuple[str, str]:
    """The geometry kind and default owner of a valid component code's class; refused otherwise."""
    if not isinstance(code, str) or not COMPONENT_CODE.fullmatch(code):
        raise errors.InvalidParameterError("code must be 16 digits: district (6) + class (4) + serial (6)",
                                           parameter="code")
    found = book.classes.get(component_class_of(code))
    if found is None:
        raise errors.InvalidParameterError(f"unknown component class {component_class_of(code)}", parameter="code")
    if district_of(code) not in book.districts:
        raise errors.InvalidParameterError(f"unknown district {district_of(code)}", parameter="code")
    return found


def check_text(props: Mapping[str, Any], name: str) -> str | None:
    """The text ``props[name]`` (None when absent), refused when too long or holding forbidden characters."""
    value = props.get(name)
    limit = TEXT_LIMITS[name]
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise errors.InvalidParameterError(f"{name} must be text of at most {limit} characters", parameter=name)
    problem = text_problem(value) if value else None
    if problem:
        raise errors.InvalidTextError(f"{name} {problem}", parameter=name)
    return value


def check_geometry(geom: BaseGeometry, kind: str) -> BaseGeometry:
    """``geom`` if it is a valid, non-empty geometry of ``kind`` within the vertex limit and lon/lat range
    (no repair: an owner must see and fix what was surveyed)."""
    problem = _shape_problems(np.array([geom], dtype=object), [kind])[0]
    if problem:
        raise errors.InvalidGeometryError(problem)
    return geom


def check_place(book: RuleBook, code: str, geom: BaseGeometry) -> None:
    """Refused unless the component lies in its code's district and covers at most ``MAX_AREA_M2``."""
    problem = _place_problems(book, np.array([geom], dtype=object), [district_of(code)])[0]
    if problem:
        raise errors.InvalidGeometryError(problem)


def geometry_problems(book: RuleBook, geoms: Any, codes: Sequence[str | None]) -> list[str | None]:
    """For a batch (a survey's), the first rule of ``check_geometry`` then ``check_place`` each geometry breaks
    (None: none, or a code whose class or district is unknown — ``check_code`` refuses it first), each rule
    evaluated once over the whole batch; ``check_component`` takes the answer as its ``shape_problem``."""
    geoms = np.asarray(geoms, dtype=object)
    kinds = [book.classes[c[6:10]][0] if c and c[6:10] in book.classes and c[:6] in book.districts else None
             for c in codes]
    out: list[str | None] = [None] * len(geoms)
    known = np.array([k is not None for k in kinds], dtype=bool)
    if not known.any():
        return out
    index = [int(i) for i in np.flatnonzero(known)]
    shapes = _shape_problems(geoms[index], [str(kinds[i]) for i in index])
    placed = [i for i, problem in zip(index, shapes, strict=True) if problem is None]
    for i, problem in zip(index, shapes, strict=True):
        out[i] = problem
    if placed:
        for i, problem in zip(placed, _place_problems(book, geoms[placed], [str(codes[i])[:6] for i in placed]),
                              strict=True):
            out[i] = problem
    return out


def _shape_problems(geoms: Any, kinds: Sequence[str]) -> list[str | None]:
    """Kind, emptiness and validity, vertex count, lon/lat range: the first one each geometry breaks."""
    types = shapely.get_type_id(geoms)
    empty_or_invalid = shapely.is_empty(geoms) | ~shapely.is_valid(geoms)
    too_many = shapely.get_num_coordinates(geoms) > MAX_VERTICES
    b = shapely.bounds(geoms)
    in_range = (b[:, 0] >= -180) & (b[:, 0] <= b[:, 2]) & (b[:, 2] <= 180) & (b[:, 1] >= -90) & (b[:, 1] <= b[:, 3]) \
        & (b[:, 3] <= 90)
    out: list[str | None] = []
    for i, kind in enumerate(kinds):
        allowed = KINDS[kind]
        if types[i] not in _TYPE_IDS[kind]:
            out.append(f"a component of this class ({kind}) is a {' or '.join(allowed)}, not a {geoms[i].geom_type}")
        elif empty_or_invalid[i]:
            out.append(f"geometry is empty or invalid: {shapely.is_valid_reason(geoms[i])}")
        elif too_many[i]:
            out.append(f"geometry has more than {MAX_VERTICES:,} vertices")
        elif not in_range[i]:
            out.append("coordinates must be longitude, latitude in EPSG:4326")
        else:
            out.append(None)
    return out


def _place_problems(book: RuleBook, geoms: Any, districts: Sequence[str]) -> list[str | None]:
    """Inside its code's district (its point on surface, as the grid assignment reads it), at most
    ``MAX_AREA_M2``: the first one each geometry breaks."""
    points = shapely.point_on_surface(geoms)
    inside = np.zeros(len(geoms), dtype=bool)
    wanted = np.array(districts, dtype=object)
    for district in set(districts):
        mask = wanted == district
        inside[mask] = shapely.covers(book.districts[district], points[mask])
    polygons = np.isin(shapely.get_type_id(geoms), list(_TYPE_IDS["polygon"]))
    out: list[str | None] = []
    for i, district in enumerate(districts):
        if not inside[i]:
            there = book.district_at(points[i])
            where = f"in district {there}" if there else "outside every district"
            out.append(f"the component lies outside district {district} (its code's): {where}")
        elif polygons[i] and abs(_GEOD.geometry_area_perimeter(geoms[i])[0]) > MAX_AREA_M2:
            out.append(f"the component covers more than {MAX_AREA_M2:,} m²")
        else:
            out.append(None)
    return out


def check_keys(book: RuleBook, *keys: str) -> None:
    """Refused unless every department key is known."""
    unknown = sorted(set(keys) - book.departments)
    if unknown:
        raise errors.InvalidParameterError(f"unknown department(s): {', '.join(unknown)}", parameter="owner_key")


def check_component(book: RuleBook, props: Mapping[str, Any], geom: BaseGeometry, *,
                    surveyed_on: date | None = None, shape_problem: str | bool | None = True) -> ComponentInput:
    """A component from its properties (``code`` and the ``EDITABLE`` fields) and shapely geometry in
    EPSG:4326, checked by every rule of the registry; the departments default to the class's owner.
    ``shape_problem``: what ``geometry_problems`` found for it in its batch (None: nothing), or True to check
    it here."""
    kind, default_owner = check_code(book, props.get("code"))
    code = props["code"]
    owner = check_text(props, "owner_key") or default_owner
    status = props.get("status") or "intact"
    if status not in STATUSES:
        raise errors.InvalidParameterError(f"status must be one of {', '.join(STATUSES)}", parameter="status")
    item = ComponentInput(
        code=code, name=check_text(props, "name"), owner_key=owner,
        manager_key=check_text(props, "manager_key") or owner,
        maintainer_key=check_text(props, "maintainer_key") or owner,
        status=status, note=check_text(props, "note"),
        geometry=check_geometry(geom, kind) if shape_problem is True else geom, surveyed_on=surveyed_on)
    if shape_problem is True:
        check_place(book, code, item.geometry)
    elif shape_problem:
        raise errors.InvalidGeometryError(str(shape_problem))
    check_keys(book, item.owner_key, item.manager_key, item.maintainer_key)
    return item
