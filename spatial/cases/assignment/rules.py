"""Spatial auto-assignment of a report (SPEC "Assignment rules"), without a human deciding.

1. Point → base grid covering it (on a shared edge the smallest code wins), its community, town and
   district, and every special grid covering it. Outside coverage: refused, naming the nearest grid.
2. Component → the named one (its location is used when the report has none), or, for component
   categories, the nearest component of a matching class within the radius (default 30 m).
3. Owner → by the category's flow: the component's owner, the named department, the enforcement bureau,
   or the grid chief; the town sub-centre is the owner of last resort (属地兜底).
4. Duplicate → an open case of the same category within 50 m and 24 h, or on the same component, that is
   trusted at least as much as the report (``TRUST``): an unverified report never absorbs a trusted one.
5. Deadline → the category's time limit on the working calendar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from spatial.codes import LEVEL_WIDTHS, ancestor, district_of
from spatial.errors import ComponentError, UnknownCategoryError
from spatial.grids.locate import Area, area_of, outside_coverage
from spatial.reference.cache import CategoryInfo, ReferenceCache
from spatial.store.sql import statement

DEFAULT_RADIUS_M = 30.0
DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = timedelta(hours=24)  # the window of sql/assign_core.sql's duplicate probes
METRES_PER_DEGREE_LAT = 110_574.0
RETIRED = ("abandoned", "removed")
# How far a report is trusted, by its source (issue 23, finding 3): staff on site, the dispatch desk and
# cameras are trusted; a hotline call went through an operator; a public (anonymous Open311) report is
# unverified. An open case absorbs a later report as its duplicate only when the case is trusted at least
# as much as the report. A case that has been verified (any state after ``reported``: registered by a
# dispatcher, the workflow's 核实立案 step) is trusted whatever its source. The SQL twin is the CASE in
# sql/assign_core.sql; tests/integration/test_trust.py holds the two together for every source and state.
TRUST = {"inspector": 2, "dispatcher": 2, "video": 2, "hotline": 1, "public": 0}
VERIFIED_TRUST = 2
UNVERIFIED_STATE = "reported"


def trust_of(source: str, state: str = UNVERIFIED_STATE) -> int:
    """How far a report from ``source`` (or a stored case in ``state``) is trusted: 0 public … 2 trusted."""
    return VERIFIED_TRUST if state != UNVERIFIED_STATE else TRUST.get(source, 0)


def degrees_for(metres: float, lat: float) -> float:
    """Return a radius in degrees that surely covers ``metres`` around latitude ``lat`` (index bound)."""
    return metres / (METRES_PER_DEGREE_LAT * max(math.cos(math.radians(lat)), 0.01)) * 1.01


@dataclass(frozen=True)
class Assignment:
    """Everything the spatial assignment decided for one report."""

    grid: Area
    community: Area
    town: Area
    district: Area
    special_grids: list[Area]
    component_code: str | None
    component_distance_m: float | None
    owner_key: str
    owner_area_code: str | None
    deadline: datetime
    duplicate_of: int | None


def category(ref: ReferenceCache, code: str) -> CategoryInfo:
    """Return the leaf category ``code`` or refuse it."""
    found = ref.categories.get(code)
    if found is None:
        raise unknown_category(code)
    return found


def unknown_category(code: str) -> UnknownCategoryError:
    """Return the refusal of a category code that is not a leaf of the category table."""
    return UnknownCategoryError(f"unknown event category {code!r}: use a leaf code of the category table",
                                category=code)


@dataclass(frozen=True)
class AssignmentInput:
    """The assignment's working row: one report with its category looked up and its place and time fixed
    (a report that only names a component has taken the component's place; a bulk row without a time, the
    batch's). Reports themselves are ``spatial.cases.schemas.CaseCreate``; this is what the assignment
    statements and the batch indexes read."""

    category: CategoryInfo
    lon: float
    lat: float
    at: datetime
    component_code: str | None = None
    source: str = "inspector"

    @property
    def wants_nearest_component(self) -> bool:
        """A component category that names no component binds the nearest one of a matching class."""
        return self.component_code is None and self.category.flow == "component"


def report_params(report: AssignmentInput, radius_m: float = DEFAULT_RADIUS_M) -> dict[str, object]:
    """Return the per-report parameters of the assignment statements (see sql/assign_core.sql)."""
    cat = report.category
    return {
        "lon": report.lon, "lat": report.lat, "category": cat.code, "flow": cat.flow, "handler": cat.handler,
        "enforcer": cat.enforcer, "component_code": report.component_code,
        "classes": ",".join(cat.component_classes) if cat.component_classes else None,
        "radius_deg": degrees_for(radius_m, report.lat), "radius_m": radius_m,
        "dup_deg": degrees_for(DUPLICATE_RADIUS_M, report.lat), "at": report.at, "trust": trust_of(report.source),
        "dup_from": report.at - DUPLICATE_WINDOW, "dup_to": report.at,  # the months the nearby probe reads
    }


def batch_params(reports: list[AssignmentInput], radius_m: float = DEFAULT_RADIUS_M) -> dict[str, Any]:
    """Return the array parameters of sql/assign.sql for a batch of reports."""
    rows = [report_params(r, radius_m) for r in reports]
    plural = {"lon": "lons", "lat": "lats", "category": "categories", "flow": "flows", "handler": "handlers",
              "enforcer": "enforcers", "component_code": "component_codes", "classes": "classes",
              "radius_deg": "radius_deg", "radius_m": "radius_m", "dup_deg": "dup_deg", "at": "ats",
              "trust": "trusts"}
    out: dict[str, Any] = {many: [row[one] for row in rows] for one, many in plural.items()}
    # the batch's span of report times (sql/assign_core.sql: the months of "case" its nearby probe reads)
    ats = [r.at for r in reports]
    out["dup_from"] = min(ats) - DUPLICATE_WINDOW if ats else None
    out["dup_to"] = max(ats) if ats else None
    return out


def assign_rows(conn: Connection, reports: list[AssignmentInput], radius_m: float = DEFAULT_RADIUS_M) -> list[dict]:
    """Run the set-based assignment statement for a batch; return one row mapping per report, in order."""
    if not reports:
        return []
    params = batch_params(reports, radius_m)
    return [dict(row) for row in conn.execute(statement("assign"), params).mappings()]


def assign(conn: Connection, ref: ReferenceCache, category_code: str, *, lon: float, lat: float, at: datetime,
           component_code: str | None = None, radius_m: float = DEFAULT_RADIUS_M,
           source: str = "inspector") -> Assignment:
    """Assign one report at (lon, lat) reported at ``at`` without storing it; refuse what cannot be."""
    cat = category(ref, category_code)
    row = assign_rows(conn, [AssignmentInput(cat, lon, lat, at, component_code, source)], radius_m)[0]
    return finish(conn, ref, row, category=cat)


def finish(conn: Connection, ref: ReferenceCache, row: dict, *, category: CategoryInfo) -> Assignment:
    """Turn one row of the assignment statements into an Assignment; raise why it cannot be taken."""
    refuse_unassigned(conn, row)
    code = row["grid_code"]
    levels = {n: area_of(ref, ancestor(code, n)) for n in LEVEL_WIDTHS}
    return Assignment(
        grid=levels[4], community=levels[3], town=levels[2], district=levels[1],
        special_grids=[area_of(ref, s) for s in row["special_grid_codes"] or []],
        component_code=row["component_code"], component_distance_m=round_distance(row["component_distance_m"]),
        owner_key=row["owner_key"], owner_area_code=row["owner_area_code"],
        deadline=ref.calendar.deadline(row["at"], category.time_limit, category.time_unit),
        duplicate_of=row["duplicate_of"],
    )


def refuse_unassigned(conn: Connection, row: Mapping[str, Any]) -> None:
    """Raise why a row of the assignment statements cannot be taken: its place is outside every grid, or the
    component it names is unknown, retired or in another district."""
    if row["grid_code"] is None:
        raise outside_coverage(conn, row["lon"], row["lat"])
    if row["requested_component"]:
        _check_named_component(row, row["requested_component"])


def round_distance(value: float | None) -> float | None:
    """A distance to a component as assignment reports it: metres to 0.1 m."""
    return None if value is None else round(float(value), 1)


def _check_named_component(row, code: str) -> None:
    if row["component_code"] is None:
        raise ComponentError(f"unknown component code {code!r}", component_code=code)
    if row["component_status"] in RETIRED:
        raise ComponentError(f"component {code} is {row['component_status']} and takes no new cases",
                             component_code=code)
    if row["component_district"] != district_of(row["grid_code"]):
        raise ComponentError(
            f"component {code} belongs to district {row['component_district']}, "
            f"but the report lies in district {district_of(row['grid_code'])}",
            component_code=code,
        )
