"""Editing special grids (专属网格: enterprise, park, scenic, commercial) through OGC API Features Part 4.

Special grids overlay the base grids and may cross them, so one can be drawn, redrawn or retired on its own
(base grids form a partition: their boundaries change only together, through the planner). Every change is
a new grid version (``grid_version``, author and time); the old geometry is closed (``valid_to``) and kept,
so "which special grids held this point on date D" stays answerable and cases keep what they were assigned.
Who: admins anywhere, planners whose scope is the grid's district
(``spatial.access.scope.check_edit_special_grid``; ``check_editor`` asks it before a write is read).
Concurrency: the ETag is the id of the current version; a replace or retire must name it.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import MultiPolygon
from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_special_grid
from spatial.codes import SPECIAL_CODE, district_of, special_kind
from spatial.geo.geometry import checked_shape, coded_feature
from spatial.grids.edits import check_current, new_version

CODE = SPECIAL_CODE  # district code, E/P/S/C, 4 digits
MAX_VERTICES = 10_000
OUTSIDE_TOLERANCE_M2 = 1.0


def parse_feature(conn: Connection, feature: Any, code: str | None = None) -> tuple[str, str, Any]:
    """Validate a Feature as a special grid: return (code, name, MultiPolygon)."""
    given, name, _ = coded_feature(feature, code, pattern=CODE,
                                   code_hint="code must be a district code, E/P/S/C and 4 digits")
    multi = _area(feature.get("geometry"))
    outside = conn.execute(text(
        "SELECT ST_Area(ST_Difference(ST_GeomFromText(:wkt, 4326), gg.geom)::geography) FROM grid_geometry gg"
        " WHERE gg.grid_code = :d AND gg.valid_to IS NULL AND gg.kind = 'district'"),
        {"wkt": multi.wkt, "d": district_of(given)}).first()
    if outside is None:
        raise errors.InvalidParameterError(f"unknown district {district_of(given)}", parameter="code")
    if outside[0] > OUTSIDE_TOLERANCE_M2:
        raise errors.InvalidGeometryError(
            f"the special grid reaches {outside[0]:,.0f} m² outside district {district_of(given)}")
    return given, name, multi


def _area(value: Any) -> Any:
    """A valid (Multi)Polygon within the complexity limit, as a MultiPolygon."""
    geom = checked_shape(value, ("Polygon", "MultiPolygon"), what="a special grid", max_vertices=MAX_VERTICES)
    return geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom])


def _draw(conn: Connection, code: str, version: int, multi: Any) -> None:
    conn.execute(text(
        "INSERT INTO grid_geometry (grid_code, version_id, kind, geom, valid_from) VALUES"
        " (:c, :v, :k, ST_Multi(ST_GeomFromText(:wkt, 4326)), now())"),
        {"c": code, "v": version, "k": special_kind(code), "wkt": multi.wkt})


def current_version(conn: Connection, code: str) -> int | None:
    """The version id of the grid's current geometry (its ETag), None if it has none."""
    found = conn.execute(text("SELECT version_id FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"),
                         {"c": code}).scalar()
    return None if found is None else int(found)


def _check_current(conn: Connection, code: str, expected: int | None = None) -> None:
    """``check_current`` for special grid ``code``; an edit (``expected`` given) first locks the grid, so that
    edits of one grid take turns."""
    if expected is not None:
        conn.execute(text("SELECT 1 FROM grid WHERE code = :c FOR UPDATE"), {"c": code})
    check_current(current_version(conn, code) if CODE.match(code) else None, f"special grid {code}", expected)


def check_editor(conn: Connection, principal: Principal, code: str) -> None:
    """ForbiddenError unless the caller may edit special grid ``code``, then NotFoundError unless it is current:
    what an edit of a stored grid checks before its preconditions and body are read."""
    check_edit_special_grid(principal, code)
    _check_current(conn, code)


def create(conn: Connection, principal: Principal, *, code: str, name: str, multi: Any) -> int:
    """Draw a new special grid; return its version."""
    check_edit_special_grid(principal, code)
    if conn.execute(text("SELECT 1 FROM grid WHERE code = :c"), {"c": code}).first():
        raise errors.ConflictError(f"grid {code} exists: replace it (PUT) instead")
    conn.execute(text("INSERT INTO grid (code, level, kind, name, parent_code) VALUES (:c, NULL, :k, :n, :p)"),
                 {"c": code, "k": special_kind(code), "n": name, "p": district_of(code)})
    version = new_version(conn, principal, f"special grid {code} drawn (OGC)")
    _draw(conn, code, version, multi)
    return version


def replace(conn: Connection, principal: Principal, *, code: str, name: str, multi: Any, expected: int) -> int:
    """Redraw a special grid read at version ``expected``; return the new version."""
    check_edit_special_grid(principal, code)
    _check_current(conn, code, expected)
    conn.execute(text("UPDATE grid_geometry SET valid_to = now() WHERE grid_code = :c AND valid_to IS NULL"),
                 {"c": code})
    conn.execute(text("UPDATE grid SET name = :n WHERE code = :c"), {"c": code, "n": name})
    version = new_version(conn, principal, f"special grid {code} redrawn (OGC)")
    _draw(conn, code, version, multi)
    return version


def retire(conn: Connection, principal: Principal, code: str, *, expected: int) -> None:
    """Retire a special grid read at version ``expected``: its geometry is closed and kept (history)."""
    check_edit_special_grid(principal, code)
    _check_current(conn, code, expected)
    conn.execute(text("UPDATE grid_geometry SET valid_to = now() WHERE grid_code = :c AND valid_to IS NULL"),
                 {"c": code})
    conn.execute(text("UPDATE grid SET retired_at = now() WHERE code = :c"), {"c": code})
