"""Editing base grids (单元网格) through OGC API Features Part 4, keeping the partition whole.

Base grids partition their community: every point of a community lies in exactly one of its base grids, so
no grid can change alone. The rules, until the planner's workflow (impact preview, scheduled versions)
takes over:

- **redraw** (PUT): the new shape must lie inside the grid's community and cover its old shape — a grid
  grows; whatever it takes from its neighbours, they lose (each affected neighbour gets a new version too).
  Shrinking would leave a gap: grow the neighbour instead, which is the same boundary move seen from the
  other side. A neighbour may not be swallowed whole (retire it instead).
- **split** (POST): a new base grid with a free code of the community (``community code + 3 digits``) is
  carved out of its neighbours by the same rule.
- **merge** (DELETE): the grid is retired and its area goes to the neighbour sharing its longest border.
  Refused while it has open cases (dispatch them first: they would point at a retired grid).

Every edit is a one-edit plan committed at once (issue 19: ``grid_plan`` with source ``ogc``, one path with
the planner's plans, spatial/grids/planning.py): one grid version (author, time, note); closed geometries
are kept (``valid_to``), so closed cases keep the version they were handled under and "which grid held this
point on date D" stays answerable. Components and open cases whose place moved to another grid are
reassigned to it. Who: admins, and
planners whose area covers the grid (``spatial.access.scope.check_edit_base_grid``; ``check_editor`` asks
it before a write is read) and every neighbour the edit changes (asked again for each of them in the edit's
transaction: a planner of one base grid may rename it, but grows, splits and merges move a neighbour too).
Concurrency: the ETag is the id of the grid's current version; a redraw or merge must name it (If-Match).
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import MultiPolygon
from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_base_grid
from spatial.codes import BASE_CODE, community_of
from spatial.geo.geometry import checked_shape, coded_feature
from spatial.grids import plan_edits, planning, plans
from spatial.store.partitions import OPEN_SPAN, open_span

CODE = BASE_CODE
MAX_VERTICES = 10_000
TOLERANCE_M2 = 1.0  # areas below this are seams of floating-point geometry, not land
# Area in m² of a geometry in degrees, scaled at its latitude (as sql/partition_gaps.sql measures).
AREA = "COALESCE(ST_Area({g}) * 111320.0 * 110574.0 * cos(radians(ST_Y(ST_Centroid({g})))), 0)"
CLEAN = "ST_Multi(ST_CollectionExtract(ST_MakeValid({g}), 3))"


def parse_feature(feature: Any, code: str | None = None) -> tuple[str, str, Any]:
    """Validate a Feature as a base grid: return (code, name, MultiPolygon)."""
    given, name, props = coded_feature(feature, code, pattern=CODE,
                                      code_hint="code must be a base grid code of 15 digits")
    unknown = set(props) - {"code", "name", "level", "kind", "parent_code", "version_id"}
    if unknown:
        raise errors.InvalidParameterError(f"unknown properties: {', '.join(sorted(unknown))}", parameter="properties")
    geom = checked_shape(feature.get("geometry"), ("Polygon", "MultiPolygon"), what="a base grid",
                         max_vertices=MAX_VERTICES)
    return given, name, geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom])


def current_version(conn: Connection, code: str) -> int | None:
    """The version id of the base grid's current geometry (its ETag), None if it has none."""
    found = conn.execute(text(
        "SELECT gg.version_id FROM grid_geometry gg JOIN grid g ON g.code = gg.grid_code"
        " WHERE gg.grid_code = :c AND gg.valid_to IS NULL AND g.level = 4"), {"c": code}).scalar()
    return None if found is None else int(found)


def check_current(current: int | None, what: str, expected: int | None = None) -> None:
    """NotFoundError unless ``what`` (``"base grid 3205…"``) has a ``current`` version; RevisionMismatchError
    unless that is ``expected`` (when given: the version an edit read)."""
    if current is None:
        raise errors.NotFoundError(f"no current {what}")
    if expected is not None and current != expected:
        raise errors.RevisionMismatchError(f"{what} is at version {current}, not {expected}: read it again",
                                           revision=current)


def check_editor(conn: Connection, principal: Principal, code: str) -> None:
    """ForbiddenError unless the caller may edit base grid ``code``, then NotFoundError unless it is current:
    what an edit of a stored grid checks before its preconditions and body are read."""
    check_edit_base_grid(principal, code)
    check_current(current_version(conn, code), f"base grid {code}")


def _lock_community(conn: Connection, community: str) -> None:
    """Serialise edits of one community's grids (and check it exists)."""
    if not conn.execute(text("SELECT 1 FROM grid WHERE code = :c AND level = 3 AND retired_at IS NULL FOR UPDATE"),
                        {"c": community}).first():
        raise errors.InvalidParameterError(f"no community {community} (the first 12 digits of the code)",
                                           parameter="code")


def new_version(conn: Connection, principal: Principal, note: str) -> int:
    """Open a grid version (author, time, note) for an edit of base or special grids; return its id."""
    return int(conn.execute(text(
        "INSERT INTO grid_version (effective_at, author, note) VALUES (now(), :a, :n) RETURNING id"),
        {"a": principal.login, "n": note}).scalar_one())


def _one_edit_plan(conn: Connection, principal: Principal, note: str) -> int:
    """Open the one-edit plan an OGC edit is stored as."""
    return plans.open_plan(conn, principal, note, source="ogc")


def _commit(conn: Connection, principal: Principal, plan: int) -> int:
    """Commit the one-edit plan at once; return its grid version (the new ETag)."""
    return int(planning.commit(conn, principal, None, plan)["version"])


def _check_inside(conn: Connection, community: str, wkt: str) -> None:
    outside = conn.execute(text(
        f"SELECT {AREA.format(g='d')} FROM grid_geometry gg,"
        " ST_Difference(ST_GeomFromText(:wkt, 4326), gg.geom) AS d"
        " WHERE gg.grid_code = :c AND gg.valid_to IS NULL"), {"wkt": wkt, "c": community}).scalar()
    if outside is not None and outside > TOLERANCE_M2:
        raise errors.InvalidGeometryError(f"the grid reaches {outside:,.0f} m² outside its community {community}")


def _take_from_neighbours(conn: Connection, principal: Principal, code: str, community: str, plan: int,
                          wkt: str) -> list[str]:
    """Plan the new shape cut out of the community's other grids; return those changed. ForbiddenError if the
    caller may not edit one of them (the transaction then stores nothing)."""
    rows = conn.execute(text(
        f"SELECT g.code, g.name, gg.version_id, ST_AsText({CLEAN.format(g='ST_Difference(gg.geom, n)')}) AS rest,"
        f" {AREA.format(g='ST_Intersection(gg.geom, n)')} AS taken,"
        f" {AREA.format(g='ST_Difference(gg.geom, n)')} AS left_m2"
        " FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL,"
        " ST_GeomFromText(:wkt, 4326) AS n"
        " WHERE g.parent_code = :p AND g.level = 4 AND g.retired_at IS NULL AND g.code <> :c"
        " AND gg.geom && n AND ST_Intersects(gg.geom, n)"), {"wkt": wkt, "p": community, "c": code}).all()
    changed = []
    for neighbour, name, version, rest, taken, left in rows:
        if taken <= TOLERANCE_M2:
            continue
        if left <= TOLERANCE_M2:
            raise errors.ConflictError(f"the new shape would swallow base grid {neighbour}: retire it (DELETE) instead")
        check_edit_base_grid(principal, neighbour, changed_by=code)
        plans.put_edit(conn, principal, plan, op="reshape", code=neighbour, level=4, name=name, parent=community,
                       wkt=rest, based_on=version, note=f"gave area to {code} (OGC)")
        changed.append(neighbour)
    return changed


def create(conn: Connection, principal: Principal, *, code: str, name: str, multi: Any) -> int:
    """Split: carve a new base grid out of its neighbours; return its version."""
    check_edit_base_grid(principal, code)
    community = community_of(code)
    _lock_community(conn, community)
    if conn.execute(text("SELECT 1 FROM grid WHERE code = :c"), {"c": code}).first():
        raise errors.ConflictError(f"grid {code} exists (codes are never reused): redraw it (PUT) or pick another code")
    _check_inside(conn, community, multi.wkt)
    plan = _one_edit_plan(conn, principal, f"base grid {code} split off (OGC)")
    _take_from_neighbours(conn, principal, code, community, plan, multi.wkt)
    plans.put_edit(conn, principal, plan, op="create", code=code, level=4, name=name, parent=community,
                   wkt=multi.wkt, based_on=None, note="split off (OGC)")
    return _commit(conn, principal, plan)


def replace(conn: Connection, principal: Principal, *, code: str, name: str, multi: Any, expected: int) -> int:
    """Redraw (grow) a base grid read at version ``expected``; return the new version."""
    check_edit_base_grid(principal, code)
    community = community_of(code)
    _lock_community(conn, community)
    check_current(current_version(conn, code), f"base grid {code}", expected)
    _check_inside(conn, community, multi.wkt)
    given_up = conn.execute(text(
        f"SELECT {AREA.format(g='d')} FROM grid_geometry gg, ST_Difference(gg.geom, ST_GeomFromText(:wkt, 4326)) d"
        " WHERE gg.grid_code = :c AND gg.valid_to IS NULL"), {"wkt": multi.wkt, "c": code}).scalar_one()
    if given_up > TOLERANCE_M2:
        raise errors.InvalidGeometryError(f"the new shape gives up {given_up:,.0f} m² that no grid would cover: "
                                          "base grids partition their community, so move a boundary by growing "
                                          "the grid on the other side of it")
    plan = _one_edit_plan(conn, principal, f"base grid {code} redrawn (OGC)")
    _take_from_neighbours(conn, principal, code, community, plan, multi.wkt)
    plans.put_edit(conn, principal, plan, op="reshape", code=code, level=4, name=name, parent=community,
                   wkt=multi.wkt, based_on=expected, note="redrawn (OGC)")
    return _commit(conn, principal, plan)


def merge(conn: Connection, principal: Principal, code: str, *, expected: int) -> str:
    """Retire a base grid read at version ``expected``, its area going to the neighbour with the longest
    shared border; return that neighbour's code."""
    check_edit_base_grid(principal, code)
    community = community_of(code)
    _lock_community(conn, community)
    check_current(current_version(conn, code), f"base grid {code}", expected)
    open_cases = conn.execute(text(  # in the months that hold open cases (spatial/store/partitions.py)
        f"SELECT count(*) FROM \"case\" k WHERE k.grid_code = :c AND k.state NOT IN ('closed', 'voided')"
        f" AND {OPEN_SPAN.format(k='k')}"), {"c": code, **open_span(conn)}).scalar_one()
    if open_cases:
        raise errors.ConflictError(f"base grid {code} has {open_cases} open cases: dispatch or close them first")
    found = conn.execute(text(
        "SELECT g.code"
        " FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL,"
        " grid_geometry t WHERE t.grid_code = :c AND t.valid_to IS NULL"
        " AND g.parent_code = :p AND g.level = 4 AND g.retired_at IS NULL AND g.code <> :c AND gg.geom && t.geom"
        " ORDER BY ST_Length(ST_Intersection(ST_Boundary(gg.geom), ST_Boundary(t.geom))) DESC, g.code LIMIT 1"),
        {"c": code, "p": community}).first()
    if found is None:
        raise errors.ConflictError(f"base grid {code} shares no border with another grid of its community")
    neighbour = found[0]
    check_edit_base_grid(principal, neighbour, changed_by=code)
    plan = _one_edit_plan(conn, principal, f"base grid {code} merged into {neighbour} (OGC)")
    plan_edits.merge(conn, principal, plan, code, into=neighbour)
    _commit(conn, principal, plan)
    return neighbour
