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

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from spatial import errors
from spatial.codes import COMPONENT_CODE, COMPONENT_CODE_PATTERN, component_class_of, district_of
from spatial.store.models.components import STATUSES
from spatial.text import NOT_XML, text_problem

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


@dataclass(frozen=True)
class Problem:
    """The first rule a component breaks: the error it is refused with, its detail, the parameter named."""

    error: type[errors.GridlinkError]
    detail: str
    parameter: str | None = None

    def exception(self) -> errors.GridlinkError:
        """The error to raise."""
        return self.error(self.detail, parameter=self.parameter) if self.parameter else self.error(self.detail)


@dataclass
class Checked:
    """The verdict of ``check_columns`` on a set of components, one entry per row: the first ``problems`` each
    breaks (None: valid) and, for the valid ones, the values the rules settle (departments defaulted to the
    class's owner, status defaulted to intact)."""

    problems: list[Problem | None]
    owner_key: list[str]
    manager_key: list[str]
    maintainer_key: list[str]
    status: list[str]


def check_columns(book: RuleBook, columns: Mapping[str, Sequence[Any]],
                  shape_problems: Sequence[str | None]) -> Checked:
    """Every rule of ``check_component`` over many components at once, decided column by column (pyarrow
    compute and numpy over the whole column, Python only for the rows that break a rule, to word the reason):
    ``columns`` holds ``code`` and the ``EDITABLE`` fields (absent: None everywhere), ``shape_problems``
    what ``geometry_problems`` found for each geometry. The rules are taken in ``check_component``'s order —
    code, owner text, status, name, manager, maintainer and note texts, geometry, departments — and each row
    gets the first it breaks. A single component (``check_component``, the Part 4 edits) is a column of one."""
    n = len(columns["code"])
    out: list[Problem | None] = [None] * n

    def fill(found: dict[int, Problem]) -> None:
        for i, problem in found.items():
            if out[i] is None:
                out[i] = problem

    def column(name: str) -> list[Any]:
        return list(columns.get(name) or [None] * n)

    codes = column("code")
    fill(_code_problems(book, codes))
    owners_given = column("owner_key")
    fill(_text_problems(owners_given, "owner_key"))
    statuses = [v or "intact" for v in column("status")]
    fill({i: Problem(errors.InvalidParameterError, f"status must be one of {', '.join(STATUSES)}", "status")
          for i in _not_in(statuses, STATUSES)})
    texts = {name: column(name) for name in ("name", "manager_key", "maintainer_key", "note")}
    for name, values in texts.items():
        fill(_text_problems(values, name))
    fill({i: Problem(errors.InvalidGeometryError, str(p)) for i, p in enumerate(shape_problems) if p})
    # the departments, defaulted: the owner to its class's, the manager and maintainer to the owner
    default = [book.classes[c[6:10]][1] if out[i] is None else "" for i, c in enumerate(codes)]
    owners = [str(o) if o else d for o, d in zip(owners_given, default, strict=True)]
    managers = [str(m) if m else o for m, o in zip(texts["manager_key"], owners, strict=True)]
    maintainers = [str(m) if m else o for m, o in zip(texts["maintainer_key"], owners, strict=True)]
    unknown = sorted(set(_not_in(owners, book.departments)) | set(_not_in(managers, book.departments))
                     | set(_not_in(maintainers, book.departments)))
    fill({i: Problem(errors.InvalidParameterError, "unknown department(s): " + ", ".join(
        sorted({owners[i], managers[i], maintainers[i]} - book.departments)), "owner_key") for i in unknown
          if out[i] is None})
    return Checked(out, owners, managers, maintainers, [str(s) for s in statuses])


def _strings(values: Sequence[Any]) -> pa.Array | None:
    """``values`` as an Arrow string column (None where a value is not text), or None when a text cannot be
    encoded (a lone surrogate: the callers then read that column value by value)."""
    try:
        return pa.array([v if isinstance(v, str) else None for v in values], pa.string())
    except (UnicodeEncodeError, pa.ArrowException):
        return None


def _not_in(values: Sequence[Any], allowed: Collection[str]) -> list[int]:
    """The rows whose value is not one of ``allowed`` (a value that is not text never is)."""
    arrow = _strings(values)
    if arrow is None:
        return [i for i, v in enumerate(values) if not (isinstance(v, str) and v in allowed)]
    known = pc.fill_null(pc.is_in(arrow, value_set=pa.array(sorted(allowed), pa.string())), False)
    return [int(i) for i in np.flatnonzero(~known.to_numpy(zero_copy_only=False))]


def _code_problems(book: RuleBook, codes: Sequence[Any]) -> dict[int, Problem]:
    """16 digits (district + class + serial) naming a known class and a known district: ``check_code``."""
    arrow = _strings(codes)
    if arrow is None:
        well_formed = np.array([isinstance(c, str) and COMPONENT_CODE.fullmatch(c) is not None for c in codes])
    else:
        matched = pc.fill_null(pc.match_substring_regex(arrow, COMPONENT_CODE_PATTERN), False)
        well_formed = matched.to_numpy(zero_copy_only=False)
    out = {int(i): Problem(errors.InvalidParameterError,
                           "code must be 16 digits: district (6) + class (4) + serial (6)", "code")
           for i in np.flatnonzero(~well_formed)}
    index = [int(i) for i in np.flatnonzero(well_formed)]
    if index:
        formed = pa.array([codes[i] for i in index], pa.string())
        classes = pc.utf8_slice_codeunits(formed, 6, 10)
        districts = pc.utf8_slice_codeunits(formed, 0, 6)
        class_known = pc.is_in(classes, value_set=pa.array(sorted(book.classes), pa.string())).to_numpy(
            zero_copy_only=False)
        district_known = pc.is_in(districts, value_set=pa.array(sorted(book.districts), pa.string())).to_numpy(
            zero_copy_only=False)
        for j in np.flatnonzero(~class_known):
            out[index[j]] = Problem(errors.InvalidParameterError,
                                    f"unknown component class {component_class_of(codes[index[j]])}", "code")
        for j in np.flatnonzero(class_known & ~district_known):
            out[index[j]] = Problem(errors.InvalidParameterError,
                                    f"unknown district {district_of(codes[index[j]])}", "code")
    return out


def _text_problems(values: Sequence[Any], name: str) -> dict[int, Problem]:
    """Text of at most ``TEXT_LIMITS[name]`` characters, none outside XML 1.0 (``text_problem``): the length of
    the whole column at once, its characters in one pass of the pattern over all of them (each row's reason
    worded only when that pass finds one)."""
    limit = TEXT_LIMITS[name]
    present = np.fromiter((v is not None for v in values), bool, len(values))
    is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    arrow = _strings(values)
    if arrow is not None:
        lengths = pc.fill_null(pc.utf8_length(arrow), 0).to_numpy(zero_copy_only=False)
    else:
        lengths = np.fromiter((len(v) if isinstance(v, str) else 0 for v in values), np.int64, len(values))
    wrong = present & (~is_text | (lengths > limit))
    out = {int(i): Problem(errors.InvalidParameterError, f"{name} must be text of at most {limit} characters", name)
           for i in np.flatnonzero(wrong)}
    fine = [int(i) for i in np.flatnonzero(is_text & ~wrong)]
    if fine and NOT_XML.search("\n".join(values[i] for i in fine)):
        for i in fine:
            problem = text_problem(values[i]) if values[i] else None
            if problem:
                out[i] = Problem(errors.InvalidTextError, f"{name} {problem}", name)
    return out


def check_component(book: RuleBook, props: Mapping[str, Any], geom: BaseGeometry, *,
                    surveyed_on: date | None = None, shape_problem: str | bool | None = True) -> ComponentInput:
    """A component from its properties (``code`` and the ``EDITABLE`` fields) and shapely geometry in
    EPSG:4326, checked by every rule of the registry (``check_columns`` on a column of one); the departments
    default to the class's owner. ``shape_problem``: what ``geometry_problems`` found for it in its batch
    (None: nothing), or True to check it here."""
    code = props.get("code")
    if shape_problem is True:
        shape_problem = geometry_problems(book, np.array([geom], dtype=object),
                                          [code if isinstance(code, str) else None])[0]
    checked = check_columns(book, {k: [props.get(k)] for k in ("code", *EDITABLE)}, [shape_problem or None])
    return component_of(checked, 0, props, geom, surveyed_on)


def component_of(checked: Checked, i: int, props: Mapping[str, Any], geom: BaseGeometry,
                 surveyed_on: date | None = None) -> ComponentInput:
    """Row ``i`` of ``checked`` as a component (``props``: its values), or the error of the rule it breaks."""
    problem = checked.problems[i]
    if problem is not None:
        raise problem.exception()
    return ComponentInput(code=props["code"], name=props.get("name"), owner_key=checked.owner_key[i],
                          manager_key=checked.manager_key[i], maintainer_key=checked.maintainer_key[i],
                          status=checked.status[i], note=props.get("note"), geometry=geom, surveyed_on=surveyed_on)
