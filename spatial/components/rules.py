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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

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
    allowed = KINDS[kind]
    if geom.geom_type not in allowed:
        raise errors.InvalidGeometryError(f"a component of this class ({kind}) is a {' or '.join(allowed)},"
                                          f" not a {geom.geom_type}")
    if geom.is_empty or not geom.is_valid:
        raise errors.InvalidGeometryError(f"geometry is empty or invalid: {shapely.is_valid_reason(geom)}")
    if shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise errors.InvalidGeometryError(f"geometry has more than {MAX_VERTICES:,} vertices")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise errors.InvalidGeometryError("coordinates must be longitude, latitude in EPSG:4326")
    return geom


def check_place(book: RuleBook, code: str, geom: BaseGeometry) -> None:
    """Refused unless the component lies in its code's district and covers at most ``MAX_AREA_M2``."""
    point = geom.point_on_surface()
    district = district_of(code)
    if not book.districts[district].covers(point):
        there = book.district_at(point)
        where = f"in district {there}" if there else "outside every district"
        raise errors.InvalidGeometryError(f"the component lies outside district {district} (its code's): {where}")
    if geom.geom_type in KINDS["polygon"] and abs(_GEOD.geometry_area_perimeter(geom)[0]) > MAX_AREA_M2:
        raise errors.InvalidGeometryError(f"the component covers more than {MAX_AREA_M2:,} m²")


def check_keys(book: RuleBook, *keys: str) -> None:
    """Refused unless every department key is known."""
    unknown = sorted(set(keys) - book.departments)
    if unknown:
        raise errors.InvalidParameterError(f"unknown department(s): {', '.join(unknown)}", parameter="owner_key")


def check_component(book: RuleBook, props: Mapping[str, Any], geom: BaseGeometry, *,
                    surveyed_on: date | None = None) -> ComponentInput:
    """A component from its properties (``code`` and the ``EDITABLE`` fields) and shapely geometry in
    EPSG:4326, checked by every rule of the registry; the departments default to the class's owner."""
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
        status=status, note=check_text(props, "note"), geometry=check_geometry(geom, kind), surveyed_on=surveyed_on)
    check_place(book, code, item.geometry)
    check_keys(book, item.owner_key, item.manager_key, item.maintainer_key)
    return item
