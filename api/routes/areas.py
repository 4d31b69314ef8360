"""Grids of every level: where a point lies (now or at a past instant), GeoJSON for the map, one grid's
history, and dataset counts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.deps import ConnectionDep
from spatial.errors import InvalidParameterError
from spatial.geo.bbox import parse_bbox
from spatial.geo.coords import coordinate_problem
from spatial.grids.areas import areas_geojson, dataset_stats, parse_level
from spatial.grids.history import as_utc, grid_history
from spatial.grids.locate import locate

router = APIRouter(prefix="/api/v1", tags=["areas"])
AtQuery = Annotated[datetime | None, Query(description="as of this instant (ISO 8601; without an offset: UTC)")]
GRID_CODE = r"^[0-9]{6}([0-9]{3}){0,3}$|^[0-9]{6}[EPSC][0-9]{4}$"


@router.get("/locate", summary="The grids of every level covering a point, now or at a past instant")
def locate_point(conn: ConnectionDep, lon: float = Query(allow_inf_nan=False),
                 lat: float = Query(allow_inf_nan=False),
                 at: AtQuery = None) -> dict[str, Any]:
    """Return district, town, community, base grid and special grids at (lon, lat), now or as of ``at``."""
    problem = coordinate_problem(lon, lat)
    if problem:
        raise InvalidParameterError(problem, parameter="lon,lat")
    return locate(conn, lon, lat, as_utc(at) if at is not None else None)


@router.get("/grids/{code}/history", summary="Every shape one grid had, with when and by whom")
def history(conn: ConnectionDep, code: str = Path(pattern=GRID_CODE, max_length=15)) -> dict[str, Any]:
    """Return the grid and its versions (valid_from, valid_to, author, note, plan, GeoJSON geometry)."""
    return grid_history(conn, code)


@router.get("/areas", summary="Current grids of one level as a GeoJSON FeatureCollection")
def list_areas(
    conn: ConnectionDep,
    level: str = Query(description="1 district, 2 town, 3 community, 4 base grid, or 'special'"),
    bbox: str | None = Query(default=None, description="minLon,minLat,maxLon,maxLat (EPSG:4326)"),
) -> Response:
    """Return grids of ``level`` intersecting ``bbox``, simplified for display."""
    body = areas_geojson(conn, parse_level(level), parse_bbox(bbox))
    return Response(body, media_type="application/geo+json")


@router.get("/stats", summary="Counts of grids, components and cases")
def stats(conn: ConnectionDep) -> dict[str, int]:
    """Return dataset counts for the landing page."""
    return dataset_stats(conn)


@router.get("/health", summary="Liveness and database reachability")
def health(conn: ConnectionDep) -> dict[str, str]:
    """Return ok when the database answers."""
    conn.exec_driver_sql("SELECT 1")
    return {"status": "ok"}
