"""Read access to the current grids of every level, for maps and the landing page."""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

from spatial.codes import LEVEL_KINDS, SPECIAL_KINDS
from spatial.errors import InvalidParameterError
from spatial.store.sql import statement

# Display simplification per level, in degrees (~1 m at base grids, ~50 m for districts).
TOLERANCE = {1: 0.0005, 2: 0.0002, 3: 0.00005, 4: 0.00001, None: 0.00001}


def parse_level(value: str) -> int | None:
    """Return the level 1–4 for ``value``, or None for ``special``; refuse anything else."""
    if value == "special":
        return None
    if value in {"1", "2", "3", "4"}:
        return int(value)
    raise InvalidParameterError(f"level must be 1, 2, 3, 4 or 'special', not {value!r}", parameter="level")


def areas_geojson(conn: Connection, level: int | None, bbox: tuple[float, float, float, float] | None) -> str:
    """Return the current grids of ``level`` (None: special grids) as GeoJSON text."""
    kinds = [LEVEL_KINDS[level]] if level is not None else list(SPECIAL_KINDS)
    minx, miny, maxx, maxy = bbox if bbox else (None, None, None, None)
    params = {"kinds": kinds, "tolerance": TOLERANCE[level], "bbox_minx": minx, "bbox_miny": miny,
              "bbox_maxx": maxx, "bbox_maxy": maxy}
    return str(conn.execute(statement("areas"), params).scalar_one())


def dataset_stats(conn: Connection) -> dict[str, int]:
    """Return counts of grids per level, components and cases (large tables estimated)."""
    return dict(json.loads(conn.execute(statement("stats")).scalar_one()))


def area_bounds(conn: Connection, code: str) -> list[float] | None:
    """The bounding box ``[west, south, east, north]`` (degrees) of the current shape of the area or special grid
    ``code``, or None when it has none (a department's key, a retired grid)."""
    row = conn.execute(text(
        "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grid_geometry"
        " WHERE grid_code = :code AND valid_to IS NULL"), {"code": code}).first()
    return [round(float(v), 6) for v in row] if row is not None else None
