"""Grids of every level as GeoJSON for the map, and dataset counts."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.deps import ConnectionDep
from spatial.geo.bbox import parse_bbox
from spatial.grids.areas import areas_geojson, dataset_stats, parse_level

router = APIRouter(prefix="/api/v1", tags=["areas"])


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
