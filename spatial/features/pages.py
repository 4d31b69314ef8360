"""Feature collections for OGC API Features (served by pygeoapi through api/ogc/provider.py).

Pages of a collection (spatial/features/registry.py), built so that they stay fast on 680,000
components:

- GeoJSON is built in PostGIS (``json_build_object`` + ``ST_AsGeoJSON``) in the requested CRS: CRS84
  (longitude, latitude; the default), EPSG:4326 and EPSG:4490 (CGCS2000) in their authority axis order
  (latitude, longitude), EPSG:3857 (metres);
- pages are keyset pages: ordered by the sort keys and then the id, the next page starts after the last
  row's keys (an opaque cursor), so a page after 100,000 items costs what the first one does;
- ``numberMatched`` is always exact, and cheap: for all components, from the trigger-kept ``row_count``
  (migration 0008); for anything else by counting up to ``COUNT_CAP`` matches (grids always fit); beyond the
  cap, on the first page only (no cursor, no offset) by counting every match within ``Query.count_ms`` (cases:
  ~600,000 a year, 0.15 s warm and 0.7 s cold on the full demo; a count table would serialise intake), and
  omitted on later pages and when that count runs out of time. Clients read it from the first page: GDAL's
  OAPIF driver takes its feature count from there, and without it pages through the whole collection
  (issue 24: ``ogrinfo -so cases`` took ten minutes). Not an estimate (``pg_class.reltuples``): a feature
  count that is off misleads the person reading it, and a scoped reader's count has no estimate;
- filters (bbox, property equality, CQL2 through pygeofilter's SQLAlchemy backend, datetime) become SQL
  with bound values; sortable properties are the non-null ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from geoalchemy2 import functions as gf
from sqlalchemy import Connection, Select, and_, cast, func, literal, or_, select, true
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.exc import OperationalError

from spatial.errors import InvalidParameterError, NotFoundError
from spatial.features.cursors import after, column_value, decode_cursor, encode_cursor
from spatial.features.registry import CRS_OUTPUT, DEFAULT_CRS, Layer, layers
from spatial.geo.srid import WGS84
from spatial.store.models import RowCount

COUNT_CAP = 10_000
QUERY_CANCELED = "57014"  # SQLSTATE of a statement stopped by statement_timeout
MAX_LIMIT = 10_000
MAX_OFFSET = 10_000  # offsets (for pygeoapi's HTML pages) up to here; keyset cursors beyond


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
    count_cap: int = COUNT_CAP  # count up to this many matches on every page
    count_ms: int = 1_500  # beyond the cap, the first page counts every match within this time (0: never)

    def filtered(self) -> bool:
        """Whether anything narrows the collection."""
        return bool(self.bbox or self.equals or self.condition is not None or self.interval
                    or self.scope is not None)


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


def _utc(moment: datetime | None) -> datetime | None:
    """An interval's end in UTC (a time given without an offset is UTC), so that ends compare and PostgreSQL
    takes any offset ISO 8601 allows (it refuses offsets beyond ±15:59); a 400 beyond the calendar."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidParameterError(f"datetime {moment.isoformat()} lies beyond the calendar in UTC",
                                    parameter="datetime") from None


def _overlaps(valid_from: Any, valid_to: Any, start: datetime | None, end: datetime | None) -> Any:
    """A version valid during ``[start, end]`` (``valid_from <= end``, ``valid_to > start``; None: open)."""
    parts = [valid_from <= end] if end is not None else []
    if start is not None:
        parts.append(or_(valid_to.is_(None), valid_to > start))
    return and_(true(), *parts)


def _valid_at(lay: Layer, interval: tuple[datetime | None, datetime | None]) -> Any:
    """A versioned layer's rows valid at an instant (issue 19): ``valid_from <= t < valid_to``; for an
    interval (``a/b``, ``../b``, ``a/..``) every item valid at some time in it, once, with the last of its
    shapes valid in it. InvalidParameterError for an interval that ends before it starts."""
    start, end = _utc(interval[0]), _utc(interval[1])
    if start is not None and end is not None and start > end:
        raise InvalidParameterError(f"the datetime interval ends ({end.isoformat()}) before it starts"
                                    f" ({start.isoformat()})", parameter="datetime")
    valid_from, valid_to, condition, item = lay.versions  # type: ignore[misc]
    during = and_(condition, _overlaps(valid_from, valid_to, start, end))
    if start is not None and start == end:
        return during  # an instant: one shape per item at most
    later = valid_from.table.alias("later")
    newer = select(literal(1)).select_from(later).where(
        later.c[item.name] == item, later.c[valid_from.name] > valid_from,
        _overlaps(later.c[valid_from.name], later.c[valid_to.name], start, end))
    return and_(during, ~newer.exists())


def _where(lay: Layer, q: Query) -> list[Any]:
    versioned = bool(q.interval) and lay.versions is not None
    conditions = [_valid_at(lay, q.interval) if versioned and q.interval else lay.base]
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
    if q.interval and not versioned:
        if lay.time_column is None:
            raise InvalidParameterError(f"collection {lay.name!r} has no time", parameter="datetime")
        start, end = q.interval
        if start is not None:
            conditions.append(lay.time_column >= start)
        if end is not None:
            conditions.append(lay.time_column <= end)
    return conditions


def _typed(column: Any, name: str, value: str) -> Any:
    return column_value(column, value, name)  # a date that does not parse is a 400, not PostgreSQL's 500


def _order(lay: Layer, q: Query) -> list[tuple[Any, bool]]:
    keys = []
    for name, ascending in q.sortby:
        if name not in lay.sortable:
            raise InvalidParameterError(f"cannot sort {lay.name} by {name!r}; sortable: {sorted(lay.sortable)}",
                                        parameter="sortby")
        keys.append((lay.properties[name], ascending))
    keys.append((lay.id_column, keys[-1][1] if keys else True))
    return keys


def page(conn: Connection, lay: Layer, q: Query) -> dict[str, Any]:
    """One page: ``features``, ``numberReturned``, ``numberMatched`` (when cheap) and ``next`` (a cursor or
    None)."""
    if not 1 <= q.limit <= MAX_LIMIT:
        raise InvalidParameterError(f"limit must be between 1 and {MAX_LIMIT}", parameter="limit")
    keys = _order(lay, q)
    where = _where(lay, q)
    query: Select = select(_feature(lay, q), *[k for k, _ in keys]).select_from(lay.source).where(*where)
    if q.cursor:
        query = query.where(after(keys, decode_cursor(q.cursor, keys)))
    query = query.order_by(*[k.asc() if up else k.desc() for k, up in keys]).limit(q.limit + 1)
    if q.offset:
        query = query.offset(q.offset)
    rows = conn.execute(query).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    out: dict[str, Any] = {"type": "FeatureCollection", "features": [r[0] for r in rows],
                           "numberReturned": len(rows)}
    matched = _count(conn, lay, where, q)
    if matched is not None:
        out["numberMatched"] = matched
    out["next"] = encode_cursor(list(rows[-1][1:])) if more and rows else None
    return out


def _count(conn: Connection, lay: Layer, where: list[Any], q: Query) -> int | None:
    if not q.filtered() and lay.counted:
        table = RowCount.__table__.c
        return int(conn.execute(select(table.n).where(table.table_name == lay.counted)).scalar_one())
    capped = select(literal(1)).select_from(lay.source).where(*where).limit(q.count_cap + 1).subquery()
    found = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
    if found <= q.count_cap:
        return found
    first_page = not q.cursor and not q.offset
    return _count_all(conn, lay, where, q.count_ms) if first_page and q.count_ms > 0 else None


def _count_all(conn: Connection, lay: Layer, where: list[Any], budget_ms: int) -> int | None:
    """Every match counted within ``budget_ms``, or None when it takes longer. The statement timeout is set
    for the count alone, in a savepoint: a count stopped there rolls the savepoint back (and the setting with
    it), and the page's own budget is put back after a count that finished."""
    page_budget = conn.execute(select(func.current_setting("statement_timeout"))).scalar_one()
    try:
        with conn.begin_nested():
            conn.execute(select(func.set_config("statement_timeout", str(budget_ms), True)))
            found = int(conn.execute(select(func.count()).select_from(lay.source).where(*where)).scalar_one())
            conn.execute(select(func.set_config("statement_timeout", page_budget, True)))
            return found
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != QUERY_CANCELED:
            raise
        return None


def one(conn: Connection, lay: Layer, identifier: str, *, crs: str = DEFAULT_CRS,
        scope: Any = None) -> dict[str, Any]:
    """One feature by id; NotFoundError if there is none (or none within ``scope``, the reader's)."""
    ident: Any = identifier
    if lay.id_column.type.python_type is int:
        if not (identifier.isascii() and identifier.isdigit()) or len(identifier) > 18:  # int() of '²' fails
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
