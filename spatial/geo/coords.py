"""Coordinate checks shared by every way a point comes in (REST, Open311, bulk files)."""

from __future__ import annotations

import math


def coordinate_problem(lon: float, lat: float) -> str | None:
    """Return why (lon, lat) is not a usable EPSG:4326 position, or None; hints at swapped order."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return "coordinates must be finite numbers"
    if -90 <= lon <= 90 and not -90 <= lat <= 90 and -180 <= lat <= 180:
        return (f"latitude {lat} is out of range [-90, 90]; the coordinates look swapped — "
                "GeoJSON order is [longitude, latitude]")
    if not -180 <= lon <= 180:
        return f"longitude {lon} is out of range [-180, 180]"
    if not -90 <= lat <= 90:
        return f"latitude {lat} is out of range [-90, 90]"
    return None
