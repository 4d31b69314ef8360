"""The feature collections of SPEC "OGC API": which rows, which id, geometry and properties, who may read them.

Each collection is a ``Layer``: a base query (current geometries only for grids), an id, a geometry and the
properties it publishes — never reporters' personal data. ``public`` layers are read anonymously (the grid
collections); the others need an account (``require_reader``), and cases are narrowed to the reader's scope
(``scope_condition``, the rule of spatial/access/scope.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select, true

from spatial.access.principal import Principal
from spatial.access.scope import case_clause
from spatial.codes import SPECIAL_KINDS
from spatial.errors import AuthenticationError, NotFoundError
from spatial.geo.srid import CGCS2000, WEB_MERCATOR, WGS84
from spatial.store.models import Case, Component, Grid, GridGeometry

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
    # Versioned layers (the grids): (valid_from, valid_to, the layer's condition without "current only", the
    # column naming the item a version belongs to), so that ``datetime`` answers with the shapes valid then
    # (an instant) or the items valid during an interval (issue 19, time travel).
    versions: tuple[Any, Any, Any, Any] | None = None
    sortable: frozenset[str] = field(default_factory=frozenset)
    counted: str | None = None  # a table whose exact size ``row_count`` keeps (migration 0008)
    public: bool = True  # anonymous callers may read it (SPEC "Accounts and access": the grid collections)
    large: bool = False  # hundreds of thousands of rows: filters no index can serve are refused (cql2.py)

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
        properties={"code": g.code, "name": gg.name, "level": g.level, "kind": g.kind,
                    "parent_code": g.parent_code, "version_id": gg.version_id},
        base=and_(gg.valid_to.is_(None), condition),
        versions=(gg.valid_from, gg.valid_to, condition, gg.grid_code),
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
            large=True,
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
            large=True,
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


def require_reader(lay: Layer, principal: Principal | None) -> None:
    """AuthenticationError unless ``lay`` is public or the caller has an account (SPEC "Accounts and access":
    grids are public, components and cases need an account) — OGC items and vector tiles alike."""
    if not lay.public and principal is None:
        raise AuthenticationError(f"collection {lay.name!r} needs an account: send a bearer token")


def scope_condition(lay: Layer, principal: Principal | None) -> Any:
    """What of ``lay`` the reader may see, as a SQL condition (None: all of it). Cases are read within the
    reader's scope (spatial/access/scope.py); the other collections are whole for anyone allowed to read them."""
    if lay.name != "cases" or principal is None or principal.scope == "*":
        return None
    k = Case.__table__.c
    return case_clause(principal, grid_code=k.grid_code, special_codes=k.special_grid_codes, owner_key=k.owner_key,
                       assist_keys=k.assist_keys)


def coverage_extent(conn: Connection) -> tuple[float, float, float, float] | None:
    """The bounding box (longitude, latitude) of the current district grids: every collection lies inside
    it, and it is cheap to compute (a few polygons), unlike an extent over 680,000 components."""
    box = conn.execute(select(func.ST_Extent(GridGeometry.__table__.c.geom))
                       .select_from(layers()["districts"].source).where(layers()["districts"].base)).scalar()
    if not box:
        return None
    x1, y1, x2, y2 = (float(n) for n in box[box.index("(") + 1:box.index(")")].replace(",", " ").split())
    return (x1, y1, x2, y2)
