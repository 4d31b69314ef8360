"""OGC API - Tiles at /ogc: the vector tiles of tiles/ advertised per collection, in the WebMercatorQuad set.

``/ogc/collections/{id}/tiles`` lists the collection's one vector tileset, ``…/tiles/WebMercatorQuad``
describes it and ``…/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}`` is the tile (OGC orders row
before column; the same bytes and ETag as ``/tiles/{layer}/{z}/{x}/{y}.mvt``, from the same cache).
``/ogc/tileMatrixSets/WebMercatorQuad`` is morecantile's definition of the set.
"""

from __future__ import annotations

import asyncio
from typing import Any

import morecantile
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.ogc.limits import budgeted
from api.problems import ogc_errors
from api.routes.tiles import tile_response
from spatial.access.scope import case_filter
from spatial.errors import NotFoundError
from spatial.store.routing import ReadRouter
from tiles.cache import TileCache
from tiles.layers import LAYERS, MAX_ZOOM

TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MVT = "application/vnd.mapbox-vector-tile"
CONFORMANCE = [f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"
               for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")]
TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILESET_ONLY = "no such tileset: the tiles are in WebMercatorQuad"


def collection_links(base_url: str, name: str) -> list[dict[str, str]]:
    """The links a collection's description carries to its tilesets (pygeoapi config ``links``)."""
    return [{"type": "application/json", "rel": TILESETS_REL, "title": "Vector tiles (OGC API - Tiles)",
             "href": f"{base_url}/collections/{name}/tiles"}]


def _tileset(base_url: str, name: str) -> dict:
    layer = LAYERS[name]
    tiles = f"{base_url}/collections/{name}/tiles/WebMercatorQuad"
    return {
        "title": f"{name} (MVT)", "dataType": "vector", "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "links": [
            {"rel": "self", "type": "application/json", "href": tiles},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
             "href": f"{base_url}/tileMatrixSets/WebMercatorQuad"},
            {"rel": "item", "type": MVT, "templated": "true",
             "href": f"{tiles}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"},
        ],
        "tileMatrixSetLimits": [{"tileMatrix": str(z), "minTileRow": 0, "maxTileRow": 2**z - 1,
                                 "minTileCol": 0, "maxTileCol": 2**z - 1}
                                for z in range(layer.minzoom, MAX_ZOOM + 1)],
        "layers": [{"id": name, "dataType": "vector", "geometryType": "polygons" if layer.polygons else "points",
                    "propertiesSchema": {"type": "object", "properties": {
                        k: {"type": "number" if v == "Number" else "string"} for k, v in layer.fields.items()}}}],
    }


class OgcTiles:
    """The OGC API - Tiles routes of /ogc."""

    def __init__(self, base_url: str, engine: Engine, cache: TileCache, reader: Any, budget_ms: int,
                 reads: ReadRouter | None = None) -> None:
        self.base_url, self.engine, self.cache, self.reader = base_url, engine, cache, reader
        self.budget_ms = budget_ms  # each statement's time budget (api/ogc/limits.py)
        self.reads = reads  # read replicas (spatial/store/routing.py), None: all on ``engine``

    def _name(self, request: Request, *, tileset: bool = True) -> str:
        """The collection of a tiles path (and, with ``tileset``, its tile matrix set); NotFoundError if it has
        no tiles or names another set than WebMercatorQuad."""
        name = request.path_params["collection"]
        if name not in LAYERS:
            raise NotFoundError("no such collection" if not tileset else TILESET_ONLY)
        if tileset and request.path_params["tms"] != "WebMercatorQuad":
            raise NotFoundError(TILESET_ONLY)
        return name

    @ogc_errors
    async def tilesets(self, request: Request) -> Response:
        name = self._name(request, tileset=False)
        return JSONResponse({"tilesets": [_tileset(self.base_url, name)], "links": [
            {"rel": "self", "type": "application/json", "href": f"{self.base_url}/collections/{name}/tiles"}]})

    @ogc_errors
    async def tileset(self, request: Request) -> Response:
        return JSONResponse(_tileset(self.base_url, self._name(request)))

    @ogc_errors
    async def tile(self, request: Request) -> Response:
        name, p = self._name(request), request.path_params
        principal = await self.reader.principal(request)  # components and cases need an account
        found = await asyncio.to_thread(self._build, name, p["z"], p["col"], p["row"], case_filter(principal),
                                        request.headers.get("gridlink-lsn"))
        return tile_response(found, request.headers.get("if-none-match"))

    def _build(self, name: str, z: int, x: int, y: int, scope: tuple[str, str] | None, seen: str | None):
        engine = self.reads.engine(seen) if self.reads is not None else self.engine
        with budgeted(engine, self.budget_ms) as conn:
            return self.cache.tile(conn, name, z, x, y, scope=scope)

    async def matrix_sets(self, request: Request) -> Response:
        return JSONResponse({"tileMatrixSets": [{"id": "WebMercatorQuad", "uri": TMS_URI, "links": [
            {"rel": "self", "type": "application/json", "href": f"{self.base_url}/tileMatrixSets/WebMercatorQuad"}]}]})

    @ogc_errors
    async def matrix_set(self, request: Request) -> Response:
        if request.path_params["tms"] != "WebMercatorQuad":
            raise NotFoundError("only WebMercatorQuad is offered")
        tms = morecantile.tms.get("WebMercatorQuad")
        return Response(tms.model_dump_json(exclude_none=True), media_type="application/json")
