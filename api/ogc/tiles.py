"""OGC API - Tiles at /ogc: the vector tiles of tiles/ advertised per collection, in the WebMercatorQuad set.

``/ogc/collections/{id}/tiles`` lists the collection's one vector tileset, ``…/tiles/WebMercatorQuad``
describes it and ``…/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}`` is the tile (OGC orders row
before column; the same bytes and ETag as ``/tiles/{layer}/{z}/{x}/{y}.mvt``, from the same cache).
``/ogc/tileMatrixSets/WebMercatorQuad`` is morecantile's definition of the set.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import morecantile
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.ogc.edits import problem
from api.routes.tiles import tile_response
from spatial.access.scope import case_filter
from spatial.errors import GridlinkError
from tiles.cache import TileCache, TileError
from tiles.layers import LAYERS, MAX_ZOOM

TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MVT = "application/vnd.mapbox-vector-tile"
CONFORMANCE = [f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"
               for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")]
TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"


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

    def __init__(self, base_url: str, engine: Engine, cache: TileCache, reader: Any) -> None:
        self.base_url, self.engine, self.cache, self.reader = base_url, engine, cache, reader

    def _name(self, request: Request) -> str | None:
        name = request.path_params["collection"]
        return name if name in LAYERS else None

    async def tilesets(self, request: Request) -> Response:
        name = self._name(request)
        if name is None:
            return _not_found("no such collection")
        return JSONResponse({"tilesets": [_tileset(self.base_url, name)], "links": [
            {"rel": "self", "type": "application/json", "href": f"{self.base_url}/collections/{name}/tiles"}]})

    async def tileset(self, request: Request) -> Response:
        name = self._name(request)
        if name is None or request.path_params["tms"] != "WebMercatorQuad":
            return _not_found("no such tileset: the tiles are in WebMercatorQuad")
        return JSONResponse(_tileset(self.base_url, name))

    async def tile(self, request: Request) -> Response:
        name, p = self._name(request), request.path_params
        if name is None or p["tms"] != "WebMercatorQuad":
            return _not_found("no such tileset: the tiles are in WebMercatorQuad")
        try:
            principal = await self.reader.principal(request)  # components and cases need an account
        except GridlinkError as exc:
            return problem(exc)
        try:
            found = await asyncio.to_thread(self._build, name, p["z"], p["col"], p["row"], case_filter(principal))
        except TileError as exc:
            return _error(exc.status, "InvalidParameterValue" if exc.status == 400 else "NotFound", str(exc))
        return tile_response(found, request.headers.get("if-none-match"))

    def _build(self, name: str, z: int, x: int, y: int, scope: tuple[str, str] | None):
        with self.engine.connect() as conn:
            return self.cache.tile(conn, name, z, x, y, scope=scope)

    async def matrix_sets(self, request: Request) -> Response:
        return JSONResponse({"tileMatrixSets": [{"id": "WebMercatorQuad", "uri": TMS_URI, "links": [
            {"rel": "self", "type": "application/json", "href": f"{self.base_url}/tileMatrixSets/WebMercatorQuad"}]}]})

    async def matrix_set(self, request: Request) -> Response:
        if request.path_params["tms"] != "WebMercatorQuad":
            return _not_found("only WebMercatorQuad is offered")
        tms = morecantile.tms.get("WebMercatorQuad")
        return Response(tms.model_dump_json(exclude_none=True), media_type="application/json")


def _error(status: int, code: str, description: str) -> Response:
    return Response(json.dumps({"type": code, "code": code, "description": description}), status_code=status,
                    media_type="application/json")


def _not_found(description: str) -> Response:
    return _error(404, "NotFound", description)
