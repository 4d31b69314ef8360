"""The history of one grid (issue 19, time travel): every shape it had, when each was valid, and who changed
it (the grid version's author and note, and the plan that made it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from spatial.errors import NotFoundError


def as_utc(moment: datetime) -> datetime:
    """An instant with its offset; a time given without one is read as UTC."""
    return moment if moment.tzinfo is not None and moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def grid_history(conn: Connection, code: str) -> dict[str, Any]:
    """The grid ``code`` with every version of its shape, oldest first; NotFoundError if unknown."""
    grid = conn.execute(text("SELECT code, name, level, kind, parent_code, created_at, retired_at FROM grid"
                             " WHERE code = :c"), {"c": code}).mappings().first()
    if grid is None:
        raise NotFoundError(f"no grid {code}")
    versions = conn.execute(text(
        "SELECT gg.version_id, gg.valid_from, gg.valid_to, v.author, v.note, p.id AS plan,"
        " ST_AsGeoJSON(gg.geom, 7)::json AS geometry"
        " FROM grid_geometry gg JOIN grid_version v ON v.id = gg.version_id"
        " LEFT JOIN grid_plan p ON p.version_id = v.id"
        " WHERE gg.grid_code = :c ORDER BY gg.valid_from, gg.id"), {"c": code}).mappings().all()
    return {**dict(grid), "versions": [dict(v) for v in versions]}
