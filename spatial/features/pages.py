"""Feature collections for OGC API Features (served by pygeoapi through api/ogc/provider.py).

Each collection of SPEC "OGC API" is a ``Layer``: a base query (current geometries only for grids), an id,
a geometry and the properties it publishes — never reporters' personal data. Pages are built here so that
they stay fast on 680,000 components:

- GeoJSON is built in PostGIS (``json_build_object`` + ``ST_AsGeoJSON``) in the requested CRS: CRS84
  (longitude, latitude; the default), EPSG:4326 and EPSG:4490 (CGCS2000) in their authority axis order
  (latitude, longitude), EPSG:3857 (metres);
- pages are keyset pages: ordered by the sort keys and then the id, the next page starts after the last
  row's keys (an opaque cursor), so a page after 100,000 items costs what the first one does;
- ``numberMatched`` is exact when it is cheap, otherwise omitted: for all components, from the trigger-kept
  ``row_count`` (migration 0008); for anything else by counting, but only up to ``COUNT_CAP`` matches (grids
  always fit; cases, ~600,000 a year, would cost a scan and a count table would serialise intake);
- filters (bbox, property equality, CQL2 through pygeofilter's SQLAlchemy backend, datetime) become SQL
  with bound values; sortable properties are the non-null ones.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from geoalchemy2 import functions as gf
from sqlalchemy import ColumnElement, Connection, Select, and_, cast, func, literal, or_, select, true
from sqlalchemy.dialects.postgresql import JSON

from spatial.access.principal import Principal
from spatial.access.scope import case_clause
from spatial.codes import SPECIAL_KINDS
from spatial.errors import InvalidParameterError, NotFoundError
from spatial.geo.srid import CGCS2000, WEB_MERCATOR, WGS84
from spatial.store.models import Case, Component, Grid, GridGeometry, RowCount

COUNT_CAP = 10_000
MAX_LIMIT = 10_000
MAX_OFFSET = 10_000  # offsets (for pygeoapi's HTML pages) up to here; keyset cursors beyond
# Output CRS → (SRID, axis order flipped to latitude, longitude, decimal digits).
CRS_OUTPUT = {
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84": (WGS84, False, 7),
    "http://www.opengis.net/def/crs/EPSG/0/4326": (WGS84, True, 7),
    "http://www.opengis.net/def/crs/EPSG/0/4490": (CGCS2000, True, 7),
    "http://www.opengis.net/def/crs/EPSG/0/3857": (WEB_MERCATOR, False, 2),
}
DEFAULT_CRS = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class Layer:
    """One feature collection: where its rows come from and what a feature shows."""

    name: str
    title: str
    description: str
    id_column: Any
    geometry: Any
    properties: dict[str, Any]
    base: Any  # a WHERE condition (and joins, through ``source``) selecting the collection's rows
    source: Any
    geometry_type: str
    time_column: Any = None
    sortable: frozenset[str] = field(default_factory=frozenset)
    counted: str | None = None  # a table whose exact size ``row_count`` keeps (migration 0008)
    public: bool = True  # anonymous callers may read it (SPEC "Accounts and access": the grid collections)

    def field_types(self) -> dict[str, dict[str, str]]:
        """Properties and their JSON types (pygeoapi's ``get_fields``)."""
        out = {}
        for name, column in self.properties.items():
            python = column.type.python_type
            kind = {int: "integer", float: "number", datetime: "string"}.get(python, "string")
            out[name] = {"type": kind, **({"format": "date-time"} if python is datetime else {})}
        return out


def _grid_layer(name: str, title: str, description: str, condition: ColumnElement[bool]) -> Layer:
    g, gg = Grid.__table__.c, GridGeometry.__table__.c
    return Layer(
        name=name, title=title, description=description, id_column=g.code, geometry=gg.geom,
        properties={"code": g.code, "name": g.name, "level": g.level, "kind": g.kind,
                    "parent_code": g.parent_code, "version_id": gg.version_id},
        base=and_(gg.valid_to.is_(None), condition),
        source=Grid.__table__.join(GridGeometry.__table__, gg.grid_code == g.code),
        geometry_type="MultiPolygon", sortable=frozenset({"code", "name", "kind"}),
    )


@cache
def layers() -> dict[str, Layer]:
    """The collections, by id (SPEC "OGC API")."""
    g = Grid.__table__.c
    c, k = Component.__table__.c, Case.__table__.c
    out = {
        "districts": _grid_layer("districts", "区县 Districts", "Level 1 grids (区/县)", g.level == 1),
        "towns": _grid_layer("towns", "镇街 Towns", "Level 2 grids (镇/街道)", g.level == 2),
        "communities": _grid_layer("communities", "社区 Communities", "Level 3 grids (社区/村)", g.level == 3),
        "grids": _grid_layer("grids", "单元网格 Base grids", "Level 4 base grids (单元网格)", g.level == 4),
        "special-grids": _grid_layer("special-grids", "专属网格 Special grids",
                                     "Enterprise, park, scenic and commercial grids", g.kind.in_(SPECIAL_KINDS)),
        "components": Layer(
            name="components", title="部件 Components", description="Coded urban components and their owners",
            id_column=c.code, geometry=c.geom,
            properties={"code": c.code, "class_code": c.class_code, "name": c.name, "district_code": c.district_code,
                        "grid_code": c.grid_code, "manager_key": c.manager_key, "owner_key": c.owner_key,
                        "maintainer_key": c.maintainer_key, "status": c.status, "revision": c.revision},
            base=true(), source=Component.__table__, geometry_type="Geometry", counted="component", public=False,
            sortable=frozenset({"code", "class_code", "district_code", "owner_key", "status"}),
        ),
        "cases": Layer(
            name="cases", title="案件 Cases", description="Cases with their assignment (no personal data)",
            id_column=k.id, geometry=k.location,
            properties={"id": k.id, "case_no": k.case_no, "category_code": k.category_code, "state": k.state,
                        "source": k.source, "grid_code": k.grid_code, "owner_key": k.owner_key,
                        "component_code": k.component_code, "duplicate_of": k.duplicate_of,
                        "deadline": k.deadline, "reported_at": k.reported_at, "closed_at": k.closed_at},
            base=true(), source=Case.__table__, geometry_type="Point", time_column=k.reported_at, public=False,
            sortable=frozenset({"id", "case_no", "category_code", "state", "grid_code", "reported_at"}),
        ),
    }
    return out


def layer(name: str) -> Layer:
    """The collection ``name``; NotFoundError if there is none."""
    found = layers().get(name)
    if found is None:
        raise NotFoundError(f"no collection {name!r}")
    return found


@dataclass
class Query:
    """One page request, already parsed (pygeoapi parses the OGC parameters)."""

    limit: int = 10
    cursor: str | None = None
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    equals: list[tuple[str, str]] = field(default_factory=list)
    condition: Any = None  # a CQL2 filter as a SQLAlchemy condition (see ``cql2_condition``)
    interval: tuple[datetime | None, datetime | None] | None = None
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (property, ascending)
    crs: str = DEFAULT_CRS
    skip_geometry: bool = False
    select: list[str] | None = None
    scope: Any = None  # the reader's scope as a SQL condition (``scope_condition``); None: everything

    def filtered(self) -> bool:
        """Whether anything narrows the collection."""
        return bool(self.bbox or self.equals or self.condition is not None or self.interval
                    or self.scope is not None)


def scope_condition(lay: Layer, principal: Principal | None) -> Any:
    """What of ``lay`` the reader may see, as a SQL condition (None: all of it). Cases are read within the
    reader's scope (spatial/access/scope.py); the other collections are whole for anyone allowed to read them."""
    if lay.name != "cases" or principal is None or principal.scope == "*":
        return None
    k = Case.__table__.c
    return case_clause(principal, k.grid_code, k.special_grid_codes, k.owner_key)


def cql2_condition(lay: Layer, ast: Any) -> Any:
    """A CQL2 filter (pygeofilter AST) as a SQLAlchemy condition with bound values."""
    from pygeofilter.backends.sqlalchemy import to_filter

    mapping = {**lay.properties, "geometry": lay.geometry}
    unknown = _attributes(ast) - set(mapping)
    if unknown:
        raise InvalidParameterError(f"filter names unknown properties: {', '.join(sorted(unknown))}; "
                                    f"see /collections/{lay.name}/queryables", parameter="filter")
    try:
        _in_storage_srid(ast)
        return to_filter(ast, mapping)
    except (KeyError, AttributeError, TypeError, ValueError, NotImplementedError) as exc:
        raise InvalidParameterError(f"filter cannot be applied: {exc}", parameter="filter") from exc


def _in_storage_srid(node: Any) -> None:
    """Mark the filter's geometries as EPSG:4326 (longitude, latitude). pygeoapi has already brought them
    into the storage CRS (CRS84) and labels them with its URI, which pygeofilter cannot turn into an SRID."""
    from pygeofilter import values

    if isinstance(node, values.Geometry):
        node.geometry = {key: value for key, value in node.geometry.items() if key != "crs"}
    for sub in getattr(node, "get_sub_nodes", lambda: [])() or []:
        _in_storage_srid(sub)
    for item in node if isinstance(node, list) else []:
        _in_storage_srid(item)


def _attributes(node: Any) -> set[str]:
    """The property names a filter refers to."""
    from pygeofilter import ast

    found = {node.name} if isinstance(node, ast.Attribute) else set()
    for sub in getattr(node, "get_sub_nodes", lambda: [])() or []:
        found |= _attributes(sub)
    for item in node if isinstance(node, list) else []:
        found |= _attributes(item)
    return found


def _feature(lay: Layer, q: Query) -> Any:
    srid, flip, digits = CRS_OUTPUT.get(q.crs, CRS_OUTPUT[DEFAULT_CRS])
    names = q.select if q.select is not None else list(lay.properties)
    props: list[Any] = []
    for name in names:
        props += [literal(name), lay.properties[name]]
    geom = lay.geometry if srid == WGS84 else gf.ST_Transform(lay.geometry, srid)
    if flip:
        geom = gf.ST_FlipCoordinates(geom)
    geometry = literal(None) if q.skip_geometry else cast(gf.ST_AsGeoJSON(geom, digits), JSON())
    return func.json_build_object("type", "Feature", "id", lay.id_column, "geometry", geometry,
                                  "properties", func.json_build_object(*props))


def _where(lay: Layer, q: Query) -> list[Any]:
    conditions = [lay.base]
    if q.bbox:
        conditions.append(lay.geometry.op("&&")(gf.ST_MakeEnvelope(*q.bbox, WGS84)))
        conditions.append(gf.ST_Intersects(lay.geometry, gf.ST_MakeEnvelope(*q.bbox, WGS84)))
    for name, value in q.equals:
        column = lay.properties.get(name)
        if column is None:
            raise InvalidParameterError(f"unknown query parameter {name!r}", parameter=name)
        conditions.append(column == _typed(column, name, value))
    if q.condition is not None:
        conditions.append(q.condition)
    if q.scope is not None:
        conditions.append(q.scope)
    if q.interval:
        if lay.time_column is None:
            raise InvalidParameterError(f"collection {lay.name!r} has no time", parameter="datetime")
        start, end = q.interval
        if start is not None:
            conditions.append(lay.time_column >= start)
        if end is not None:
            conditions.append(lay.time_column <= end)
    return conditions


def _typed(column: Any, name: str, value: str) -> Any:
    python = column.type.python_type
    if python in (int, float):
        try:
            return python(value)
        except ValueError as exc:
            raise InvalidParameterError(f"{name} must be a number", parameter=name) from exc
    return value


def _order(lay: Layer, q: Query) -> list[tuple[Any, bool]]:
    keys = []
    for name, ascending in q.sortby:
        if name not in lay.sortable:
            raise InvalidParameterError(f"cannot sort {lay.name} by {name!r}; sortable: {sorted(lay.sortable)}",
                                        parameter="sortby")
        keys.append((lay.properties[name], ascending))
    keys.append((lay.id_column, keys[-1][1] if keys else True))
    return keys


def _after(keys: list[tuple[Any, bool]], values: list[Any]) -> Any:
    """Rows after ``values`` in the order of ``keys`` (expanded: a < b or (a = b and …))."""
    alternatives = []
    for i, (column, ascending) in enumerate(keys):
        equal = [keys[j][0] == values[j] for j in range(i)]
        step = column > values[i] if ascending else column < values[i]
        alternatives.append(and_(*equal, step))
    return or_(*alternatives)


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor for the keys of a page's last row."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, keys: list[tuple[Any, bool]]) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError("wrong length")
        return [datetime.fromisoformat(v) if key.type.python_type is datetime else v
                for v, (key, _) in zip(values, keys, strict=True)]
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError("cursor is not one this server issued for this query",
                                    parameter="cursor") from exc


def page(conn: Connection, lay: Layer, q: Query) -> dict[str, Any]:
    """One page: ``features``, ``numberReturned``, ``numberMatched`` (when cheap) and ``next`` (a cursor or
    None)."""
    if not 1 <= q.limit <= MAX_LIMIT:
        raise InvalidParameterError(f"limit must be between 1 and {MAX_LIMIT}", parameter="limit")
    keys = _order(lay, q)
    where = _where(lay, q)
    query: Select = select(_feature(lay, q), *[k for k, _ in keys]).select_from(lay.source).where(*where)
    if q.cursor:
        query = query.where(_after(keys, _decode_cursor(q.cursor, keys)))
    query = query.order_by(*[k.asc() if up else k.desc() for k, up in keys]).limit(q.limit + 1)
    if q.offset:
        query = query.offset(q.offset)
    rows = conn.execute(query).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    out: dict[str, Any] = {"type": "FeatureCollection", "features": [r[0] for r in rows],
                           "numberReturned": len(rows)}
    matched = _count(conn, lay, where, q.filtered())
    if matched is not None:
        out["numberMatched"] = matched
    out["next"] = encode_cursor(list(rows[-1][1:])) if more and rows else None
    return out


def _count(conn: Connection, lay: Layer, where: list[Any], filtered: bool) -> int | None:
    if not filtered and lay.counted:
        table = RowCount.__table__.c
        return int(conn.execute(select(table.n).where(table.table_name == lay.counted)).scalar_one())
    capped = select(literal(1)).select_from(lay.source).where(*where).limit(COUNT_CAP + 1).subquery()
    found = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
    return found if found <= COUNT_CAP else None


def one(conn: Connection, lay: Layer, identifier: str, crs: str = DEFAULT_CRS, scope: Any = None) -> dict[str, Any]:
    """One feature by id; NotFoundError if there is none (or none within ``scope``, the reader's)."""
    ident: Any = identifier
    if lay.id_column.type.python_type is int:
        if not identifier.isdigit():
            raise NotFoundError(f"no item {identifier!r} in {lay.name}")
        ident = int(identifier)
    if scope is not None:
        found = conn.execute(select(_feature(lay, Query(crs=crs))).select_from(lay.source).where(
            lay.base, lay.id_column == ident, scope)).scalar()
    else:
        found = conn.exec_driver_sql(_one_sql(lay.name, crs), {"ident": ident}).scalar()
    if found is None:
        raise NotFoundError(f"no item {identifier!r} in {lay.name}")
    return found


@cache
def _one_sql(name: str, crs: str) -> str:
    """The single-item statement of a collection and CRS, compiled once (it is the same for every id)."""
    from sqlalchemy import literal_column
    from sqlalchemy.dialects import postgresql

    lay = layers()[name]
    # Constants (code-defined names and digits) are rendered inline; the id stays a driver parameter.
    query = select(_feature(lay, Query(crs=crs))).select_from(lay.source).where(
        lay.base, lay.id_column == literal_column("gridlink_ident"))
    compiled = str(query.compile(dialect=postgresql.psycopg2.dialect(), compile_kwargs={"literal_binds": True}))
    return compiled.replace("gridlink_ident", "%(ident)s")


def coverage_extent(conn: Connection) -> tuple[float, float, float, float] | None:
    """The bounding box (longitude, latitude) of the current district grids: every collection lies inside
    it, and it is cheap to compute (a few polygons), unlike an extent over 680,000 components."""
    box = conn.execute(select(func.ST_Extent(GridGeometry.__table__.c.geom))
                       .select_from(layers()["districts"].source).where(layers()["districts"].base)).scalar()
    if not box:
        return None
    x1, y1, x2, y2 = (float(n) for n in box[box.index("(") + 1:box.index(")")].replace(",", " ").split())
    return (x1, y1, x2, y2)
