"""Vector tile layers: what each tile layer shows at which zoom, built in PostGIS as Mapbox Vector Tiles.

Every tile is one statement: the tile's Web Mercator envelope (``ST_TileEnvelope``, with a 64-unit buffer)
is transformed to EPSG:4326 once, so the GiST index of the stored geometries answers ``&&``; the rows'
geometries are simplified in degrees to about half a screen pixel at that zoom (``ST_Simplify`` keeping
collapsed rings), transformed to 3857 and clipped by ``ST_AsMVTGeom``; ``ST_AsMVT`` encodes the layer.

A composite layer (``parts``: ``outlines`` = districts + towns) answers one tile holding each part's MVT layer
(an MVT tile is a sequence of layers: the parts' encodings are concatenated), so a map that draws both at low
zoom makes one request per tile instead of two.

Readability rule for points (components, open cases): below their readable zoom (``detail_from``:
components 16, cases 12) a tile does not carry one feature per row but one point per occupied cell of
32 × 32 tile pixels, at the cell's centre of mass, with a ``count`` attribute — so a z12 tile over a town
centre holds a few hundred aggregates instead of ~90,000 components. Attributes never include reporters'
personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from spatial.codes import SPECIAL_KINDS_SQL, prefix_range
from spatial.store.partitions import OPEN_SPAN

EXTENT = 4096
BUFFER = 64
CELL_PX = 32  # aggregation cell, in 256-pixel screen pixels
WORLD_M = 40_075_016.685578488
MAX_ZOOM = 22
# Open cases, in the months that hold them (:open_from, :open_to: spatial/store/partitions.py open_span).
OPEN_CASE = f"k.state NOT IN ('closed', 'voided') AND {OPEN_SPAN.format(k='k')}"


@dataclass(frozen=True)
class TileLayer:
    """One tile layer: its rows (``source`` with alias, geometry ``geom``), attributes and zoom rules."""

    name: str
    group: str  # invalidation group (tiles/cache.py): grids, components, cases
    source: str  # FROM … WHERE … (code-defined SQL; the tile's filter is added)
    geom: str
    attributes: str  # select list of attributes
    fields: dict[str, str]  # TileJSON vector_layers fields
    minzoom: int = 0
    maxzoom: int = MAX_ZOOM
    detail_from: int | None = None  # points: aggregated below this zoom
    polygons: bool = False
    parts: tuple[str, ...] = ()  # a composite layer: the layers (of LAYERS) its tiles hold, in this order


def _grid(name: str, condition: str) -> TileLayer:
    return TileLayer(
        name=name, group="grids",
        source=f"grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL WHERE {condition}",
        geom="gg.geom", attributes="g.code, g.name, g.level, g.kind",
        fields={"code": "String", "name": "String", "level": "Number", "kind": "String"}, polygons=True,
    )


LAYERS: dict[str, TileLayer] = {
    "districts": _grid("districts", "g.level = 1"),
    "towns": _grid("towns", "g.level = 2"),
    "communities": _grid("communities", "g.level = 3"),
    "grids": _grid("grids", "g.level = 4"),
    "special-grids": _grid("special-grids", f"g.kind IN {SPECIAL_KINDS_SQL}"),
    # The console's first view (z10, the whole city): the district and town outlines in one request per tile.
    "outlines": TileLayer(name="outlines", group="grids", source="", geom="", attributes="",
                          fields=_grid("towns", "").fields, polygons=True, parts=("districts", "towns")),
    "components": TileLayer(
        name="components", group="components", source="component c WHERE true", geom="c.geom",
        attributes="c.code, c.class_code, c.owner_key, c.status, c.grid_code",
        fields={"code": "String", "class_code": "String", "owner_key": "String", "status": "String",
                "grid_code": "String", "count": "Number"}, minzoom=10, detail_from=16,
    ),
    "cases": TileLayer(
        name="cases", group="cases", source=f'"case" k WHERE {OPEN_CASE}', geom="k.location",
        attributes="k.id, k.case_no, k.category_code, k.state, k.grid_code, k.owner_key,"
                   " to_char(k.reported_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF') AS reported_at",
        fields={"id": "Number", "case_no": "String", "category_code": "String", "state": "String",
                "grid_code": "String", "owner_key": "String", "reported_at": "String", "count": "Number"},
        minzoom=8, detail_from=12,
    ),
}
CASE_STATES = ("reported", "registered", "dispatched", "handled", "suspended")


# The reader's scope on cases (spatial.access.scope.case_filter kinds), bound as :scope / :scope_lo / :scope_hi:
# the rule of ``scope.case_clause`` written out. A unit's handlers and owners read the cases it leads and those
# it assists on (joint handling, 协办: ``assist_keys``, in the form the partial GIN index ix_case_assist_keys
# serves), as over REST.
SCOPE_SQL = {
    "prefix": " AND k.grid_code BETWEEN :scope_lo AND :scope_hi",
    "special": " AND CAST(:scope AS varchar) = ANY(k.special_grid_codes)",
    "owner": " AND (k.owner_key = :scope OR (k.assist_keys <> '{}'"
             " AND k.assist_keys @> ARRAY[CAST(:scope AS varchar)]))",
}


def parts_of(layer: TileLayer) -> tuple[TileLayer, ...]:
    """The layers a tile of ``layer`` holds: its parts (a composite), else itself."""
    return tuple(LAYERS[name] for name in layer.parts) or (layer,)


def part_names(name: str) -> tuple[str, ...]:
    """The names of the layers a tile of the layer ``name`` holds (``name`` itself when it is no composite or
    no layer at all): who may read a tile is who may read each of them."""
    layer = LAYERS.get(name)
    return layer.parts if layer is not None and layer.parts else (name,)


def tile_sql(layer: TileLayer, z: int, *, state: str | None = None, scope_kind: str | None = None) -> str:
    """The statement for one tile of ``layer`` at zoom ``z`` (bound: :z :x :y :tol :cell :state, and the
    scope's values for cases read within a scope)."""
    if layer.parts:  # one bytea: the parts' layers one after the other (an empty part adds nothing)
        return "SELECT " + " || ".join(f"coalesce(({tile_sql(part, z)}), ''::bytea)" for part in parts_of(layer))
    bounds = (f"WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS m,"
              f" ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4326) AS g)")
    where = f"{layer.source} AND {layer.geom} && b.g" + (" AND k.state = :state" if state else "")
    if scope_kind is not None and layer.group == "cases":
        where += SCOPE_SQL[scope_kind]
    if layer.detail_from is not None and z < layer.detail_from:
        return (f"{bounds} SELECT ST_AsMVT(t.*, '{layer.name}', {EXTENT}, 'geom') FROM ("
                f" SELECT ST_AsMVTGeom(ST_Centroid(ST_Collect(q.p)), b.m, {EXTENT}, {BUFFER}, true) AS geom,"
                " count(*)::int AS count"
                f" FROM (SELECT ST_Transform(ST_PointOnSurface({layer.geom}), 3857) AS p FROM b, {where}) q, b"
                " GROUP BY ST_SnapToGrid(q.p, :cell), b.m) t WHERE t.geom IS NOT NULL")
    geometry = f"ST_Simplify({layer.geom}, :tol, true)" if layer.polygons else layer.geom
    return (f"{bounds} SELECT ST_AsMVT(t.*, '{layer.name}', {EXTENT}, 'geom') FROM ("
            f" SELECT ST_AsMVTGeom(ST_Transform({geometry}, 3857), b.m, {EXTENT}, {BUFFER}, true) AS geom,"
            f" {layer.attributes} FROM b, {where}) t WHERE t.geom IS NOT NULL")


def tile_params(z: int, x: int, y: int, *, state: str | None = None, scope: tuple[str, str] | None = None,
                span: dict[str, datetime] | None = None) -> dict[str, object]:
    """Bound values of ``tile_sql``: half a screen pixel in degrees, the aggregation cell in metres; ``span``:
    the months of the open cases (``open_span``), for a tile that holds cases."""
    pixel_m = WORLD_M / (256 * 2**z)
    params: dict[str, object] = {"z": z, "x": x, "y": y, "tol": pixel_m / 2 / 111_320, "cell": pixel_m * CELL_PX,
                                 "state": state, **(span or {})}
    if scope is not None:
        params["scope_lo"], params["scope_hi"] = prefix_range(scope[1])
        params["scope"] = scope[1]
    return params
