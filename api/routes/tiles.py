"""Vector tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt`` and TileJSON at ``/tiles/{layer}.json`` (tiles/)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from api.auth import OptionalPrincipalDep
from api.deps import EngineDep, ReadEngineDep
from spatial.access.scope import case_filter
from spatial.errors import NotFoundError
from spatial.features import coverage_extent, layers, require_reader
from tiles.cache import Tile
from tiles.layers import LAYERS, MAX_ZOOM, part_names, parts_of

router = APIRouter(prefix="/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"


@router.get("/{layer}/{z}/{x}/{y}.mvt", summary="A Mapbox Vector Tile of one layer (204 when empty)",
            response_class=Response, responses={200: {"content": {MVT: {}}}, 204: {}, 304: {}})
def tile(layer: str, z: int, x: int, y: int, request: Request, engine: ReadEngineDep, principal: OptionalPrincipalDep,
         state: str | None = Query(default=None, description="cases only: one open state")) -> Response:
    """The tile; ``ETag`` is a hash of its bytes, ``If-None-Match`` with it answers 304. Components and
    cases need an account; cases are those in the reader's scope."""
    for part in part_names(layer):  # who may read a tile layer is who may read the collection of its name
        collection = layers().get(part)
        if collection is not None:
            require_reader(collection, principal)
    with engine.connect() as conn:
        found = request.app.state.tiles.tile(conn, layer, z, x, y, state=state, scope=case_filter(principal))
    return tile_response(found, request.headers.get("if-none-match"))


def tile_response(found: Tile, if_none_match: str | None) -> Response:
    """A tile as HTTP: its bytes (204 when empty), its ETag, 304 when the client has these bytes."""
    headers = {"ETag": found.etag, "Cache-Control": "no-cache"}
    if if_none_match == found.etag:
        return Response(status_code=304, headers=headers)
    if not found.data:
        return Response(status_code=204, headers=headers)
    return Response(found.data, media_type=MVT, headers=headers)


@router.get("/{layer}.json", summary="TileJSON 3.0.0 of one layer")
def tilejson(layer: str, request: Request, engine: EngineDep) -> dict[str, Any]:
    """Where the layer's tiles are, their zooms, bounds and attributes."""
    found = LAYERS.get(layer)
    if found is None:
        raise NotFoundError(f"no tile layer {layer!r}; layers: {', '.join(LAYERS)}")
    with engine.connect() as conn:
        bounds = coverage_extent(conn) or (-180.0, -85.0511, 180.0, 85.0511)
    base = request.app.state.api_settings.base_url()  # the configured public URL, not the Host header
    return {
        "tilejson": "3.0.0", "name": layer, "scheme": "xyz", "minzoom": found.minzoom, "maxzoom": MAX_ZOOM,
        "bounds": list(bounds), "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 12],
        "tiles": [f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"],
        "vector_layers": [{"id": part.name, "fields": part.fields, "minzoom": found.minzoom, "maxzoom": MAX_ZOOM}
                          for part in parts_of(found)],
    }
