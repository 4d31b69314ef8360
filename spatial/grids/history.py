"""The history of one grid (issue 19, time travel): every shape it had and the name it had then, when each
was valid, and who changed it (the grid version's author and note, and the plan that made it); and its names,
each with the time it held (a rename is a version of its own, migration 0022)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from spatial.errors import InvalidParameterError, NotFoundError


def as_utc(moment: datetime) -> datetime:
    """An instant in UTC; a time given without an offset is read as UTC. In UTC, because PostgreSQL refuses
    offsets beyond ±15:59 that ISO 8601 allows; InvalidParameterError for an instant beyond the calendar."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidParameterError(f"{moment.isoformat()} lies beyond the calendar in UTC", parameter="at") from None


def grid_history(conn: Connection, code: str) -> dict[str, Any]:
    """The grid ``code`` with every version of its shape (and name), oldest first, and ``names``: each name
    with the span it held (``valid_from``, ``valid_to``); NotFoundError if unknown."""
    grid = conn.execute(text("SELECT code, name, level, kind, parent_code, created_at, retired_at FROM grid"
                             " WHERE code = :c"), {"c": code}).mappings().first()
    if grid is None:
        raise NotFoundError(f"no grid {code}")
    versions = conn.execute(text(
        "SELECT gg.version_id, gg.name, gg.valid_from, gg.valid_to, v.author, v.note, p.id AS plan,"
        " ST_AsGeoJSON(gg.geom, 7)::json AS geometry"
        " FROM grid_geometry gg JOIN grid_version v ON v.id = gg.version_id"
        " LEFT JOIN grid_plan p ON p.version_id = v.id"
        " WHERE gg.grid_code = :c ORDER BY gg.valid_from, gg.id"), {"c": code}).mappings().all()
    return {**dict(grid), "versions": [dict(v) for v in versions], "names": _names(versions)}


def _names(versions: Any) -> list[dict[str, Any]]:
    """The names of consecutive versions, merged: one entry per name held, with its span."""
    names: list[dict[str, Any]] = []
    for v in versions:
        if names and names[-1]["name"] == v["name"] and names[-1]["valid_to"] == v["valid_from"]:
            names[-1]["valid_to"] = v["valid_to"]
        else:
            names.append({"name": v["name"], "valid_from": v["valid_from"], "valid_to": v["valid_to"]})
    return names
