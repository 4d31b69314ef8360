"""Bounding boxes given by callers: ``minLon,minLat,maxLon,maxLat`` in EPSG:4326."""

from __future__ import annotations

from spatial.errors import InvalidParameterError


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """Return (minx, miny, maxx, maxy) in EPSG:4326 from ``minx,miny,maxx,maxy``; refuse a bad box."""
    if value is None:
        return None
    try:
        minx, miny, maxx, maxy = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise InvalidParameterError("bbox must be four numbers: minLon,minLat,maxLon,maxLat",
                                    parameter="bbox") from exc
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidParameterError("bbox must satisfy -180 ≤ minLon < maxLon ≤ 180 and -90 ≤ minLat < maxLat ≤ 90",
                                    parameter="bbox")
    return minx, miny, maxx, maxy
