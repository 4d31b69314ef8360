"""The map's questions (issue 20): what is at a clicked point, what a report there would be assigned, and the
reporting account's own recent cases.

- ``what_is_here``: the grid hierarchy and special grids (``spatial.grids.locate``), the teams of those grids —
  with telephone numbers only for the accounts ``scope.sees_team_phones`` allows — and the components around
  the point (within a bounded radius, nearest first, capped).
- ``preview``: the assignment a report would get — grid, owner, component, deadline on the working calendar,
  a possible duplicate — by the intake's own assignment code (``spatial.cases.assignment.rules.assign``),
  nothing stored, refused as intake would refuse it (the caller's role and area, the category, the place).
- ``my_cases``: the cases the caller reported itself (its ``case.create`` audit rows), newest first, that it
  may still read.

This module sits in ``cases/`` because it composes rooms below it (grids, components, the assignment).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, text

from spatial.access.principal import Principal
from spatial.access.scope import check_report, may_read, own_source, sees_team_phones
from spatial.cases.assignment.owner import owner_name
from spatial.cases.assignment.rules import assign, degrees_for
from spatial.cases.public import case_public
from spatial.cases.rows import case_row, case_rows, last_events
from spatial.cases.schemas import CaseCreate
from spatial.errors import InvalidParameterError
from spatial.grids.locate import AreaPublic, locate
from spatial.reference.cache import ReferenceCache

DEFAULT_RADIUS_M = 50.0
MAX_RADIUS_M = 200.0
MAX_COMPONENTS = 20
MAX_MINE = 50
RETIRED = ("abandoned", "removed")  # no longer on the street: not shown around a point
COMPONENTS_NEAR = """
SELECT c.code, c.class_code, k.name_zh AS class_name, c.name, c.status, c.owner_key,
       round(ST_Distance(c.geom::geography, p.g::geography)::numeric, 1)::float8 AS distance_m
FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g) AS p
JOIN component c ON ST_DWithin(c.geom, p.g, :deg)  -- the GiST index bounds the search in degrees first
JOIN component_class k ON k.code = c.class_code
WHERE c.status NOT IN ('abandoned', 'removed') AND ST_DWithin(c.geom::geography, p.g::geography, :radius)
ORDER BY distance_m, c.code
LIMIT :limit
"""


def what_is_here(conn: Connection, ref: ReferenceCache, lon: float, lat: float, *, by: Principal,
                 radius_m: float = DEFAULT_RADIUS_M) -> dict[str, Any]:
    """The grids covering (lon, lat) with their teams, and the components within ``radius_m`` (at most
    ``MAX_COMPONENTS``, nearest first); refused like ``/locate`` outside every grid (422 naming the nearest)."""
    if not 0 < radius_m <= MAX_RADIUS_M:
        raise InvalidParameterError(f"radius must be more than 0 and at most {MAX_RADIUS_M:g} m", parameter="radius")
    place = locate(conn, lon, lat)
    grid = cast(AreaPublic | None, place["grid"])
    specials = [s["code"] for s in cast(list[AreaPublic], place["special_grids"])]
    codes = ([grid["code"]] if grid else []) + specials
    phones = grid is not None and sees_team_phones(by, grid["code"], specials)
    teams: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    for row in conn.execute(text("SELECT grid_code, role, name, phone FROM team_member WHERE grid_code = ANY(:c)"
                                 " ORDER BY grid_code, id"), {"c": codes}).mappings():
        member = {"role": row["role"], "name": row["name"]} | ({"phone": row["phone"]} if phones else {})
        teams[row["grid_code"]].append(member)
    components = [dict(r) | {"owner_name": ref.departments.get(r["owner_key"], r["owner_key"])}
                  for r in conn.execute(text(COMPONENTS_NEAR), {
                      "lon": lon, "lat": lat, "deg": degrees_for(radius_m, lat), "radius": radius_m,
                      "limit": MAX_COMPONENTS}).mappings()]
    return {**place, "location": {"type": "Point", "coordinates": [lon, lat]}, "teams": teams,
            "phones_shown": phones, "radius_m": radius_m, "components": components}


def preview(conn: Connection, ref: ReferenceCache, report: CaseCreate, *, by: Principal,
            now: datetime | None = None) -> dict[str, Any]:
    """What ``POST /api/v1/cases`` would assign this report now, without storing anything: the case's areas,
    owner, component, deadline and the open case it would be linked to as a duplicate."""
    if report.lon is None or report.lat is None:
        raise InvalidParameterError("a preview needs the report's location", parameter="location")
    source = own_source(by, report.source)
    at = now or datetime.now(UTC)
    found = assign(conn, ref, report.category, lon=report.lon, lat=report.lat, at=at,
                   component_code=report.component_code, source=source)
    check_report(by, found.grid.code, [s.code for s in found.special_grids])
    component = None
    if found.component_code:
        component = {"code": found.component_code, "class_code": found.component_code[6:10],
                     "distance_m": found.component_distance_m}
    cat = ref.categories[report.category]
    return {
        "category": {"code": cat.code, "name": cat.name, "grade": cat.grade, "time_limit": cat.time_limit,
                     "time_unit": cat.time_unit, "flow": cat.flow},
        "source": source, "reported_at": at,
        "grid": found.grid.as_dict(), "community": found.community.as_dict(), "town": found.town.as_dict(),
        "district": found.district.as_dict(), "special_grids": [s.as_dict() for s in found.special_grids],
        "owner": {"key": found.owner_key, "name": owner_name(ref, found.owner_key, found.grid.code),
                  "area": found.owner_area_code},
        "component": component, "deadline": found.deadline, "duplicate": _visible_case(conn, found.duplicate_of, by),
    }


def _visible_case(conn: Connection, case_id: int | None, by: Principal) -> dict[str, Any] | None:
    """The open case a report would be linked to: its id, number and state when the caller may read it, else
    only ``{"hidden": true}`` (the report would still be linked to it)."""
    if case_id is None:
        return None
    row = case_row(conn, case_id)
    if row is None:  # archived meanwhile
        return None
    if not may_read(by, grid_code=row["grid_code"], special_codes=row["special_grid_codes"],
                    owner_key=row["owner_key"], assist_keys=row["assist_keys"]):
        return {"hidden": True}
    return {"id": row["id"], "case_no": row["case_no"], "state": row["state"]}


def my_cases(conn: Connection, ref: ReferenceCache, *, by: Principal, limit: int = 20) -> list[dict[str, Any]]:
    """The caller's own reports (its ``case.create`` audit rows, served by ``ix_audit_log_actor_at``), newest
    first, that it may still read, each with ``updated_at`` (its last event) and its number of photos."""
    if not 1 <= limit <= MAX_MINE:
        raise InvalidParameterError(f"limit must be between 1 and {MAX_MINE}", parameter="limit")
    # The audit row is written by the statement that inserts the case, so its time is the case's created_at:
    # a case number used again after the case tables were emptied (a demo rebuilt) does not match.
    # The case's id comes from its number in case_key, and the case, its events and photos are then read by id
    # in their own months (spatial/cases/rows.py): no read here plans every month.
    mine = conn.execute(text(
        "SELECT k.id, a.at FROM (SELECT target, at, id FROM audit_log WHERE actor = :login"
        "  AND action = 'case.create' ORDER BY at DESC, id DESC LIMIT :n) AS a"
        " JOIN case_key k ON k.case_no = a.target ORDER BY a.at DESC, a.id DESC"),
        {"login": by.login, "n": limit}).tuples().all()
    if not mine:
        return []
    created = dict(mine)
    cases = [row for row in case_rows(conn, created) if row["created_at"] == created[row["id"]]]
    ids = [row["id"] for row in cases]
    updated = last_events(conn, ids)
    photos = dict(conn.execute(text(
        "SELECT case_id, count(*) FROM case_photo WHERE case_id = ANY(CAST(:ids AS bigint[]))"
        " AND reported_at = ANY(CAST(:months AS timestamptz[])) GROUP BY case_id"),
        {"ids": ids, "months": sorted({row["reported_at"] for row in cases})}).tuples().all())
    personal = by.sees_personal_data()
    by_id = {}
    for row in cases:
        if may_read(by, grid_code=row["grid_code"], special_codes=row["special_grid_codes"],
                    owner_key=row["owner_key"], assist_keys=row["assist_keys"]):
            by_id[row["id"]] = dict(case_public(ref, dict(row), with_reporter=personal)) | {
                "updated_at": updated.get(row["id"]), "photos": photos.get(row["id"], 0)}
    return [by_id[i] for i, _ in mine if i in by_id]
