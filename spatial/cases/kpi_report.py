"""What the evaluation's pages read besides ``GET /api/v1/kpi`` (issue 21 item 3): a town's monthly report (its
grids and communities evaluated over one calendar month, the town's totals, the grids' shapes to colour by
grade) and the density of a period's cases for the dashboard's heat map.

Both read only what the caller may read, through the evaluation's own rules (``spatial/cases/kpi.py``): the
monthly report is ``evaluate`` by grid and by community with ``area`` = the town (so a caller outside the town
is refused before anything is counted), and the heat map counts the cases of the same period, scope and area
that ``evaluate`` counts (its ``CASES`` predicate and bound values).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from spatial.access.principal import Principal
from spatial.cases.kpi import CASES, OWNER, OWNER_OR_ASSIST, PERIOD, QUERY_CANCELED, KpiQuery, _params, evaluate
from spatial.cases.schemas import LOCAL
from spatial.codes import prefix_range
from spatial.errors import InvalidParameterError, NotFoundError, QueryBudgetError

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TOWN_CODE = re.compile(r"^[0-9]{9}$")
SHAPE_TOLERANCE = 0.00002  # degrees (~2 m): enough for a printed town map, a fraction of the full shapes' size
HEAT_CELL = 0.004  # degrees (~400 m): the heat map's cells; a city of 8,500 km² has at most ~55,000
HEAT_MAX_CELLS = 60_000

TOWN = "SELECT code, name FROM grid WHERE code = :code AND level = 2"
GRID_SHAPES = """
SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object(
         'type', 'Feature', 'id', g.code,
         'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(gg.geom, :tolerance), 6)::json,
         'properties', json_build_object('code', g.code, 'name', g.name)) ORDER BY g.code), '[]'::json))::text
FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL
WHERE g.level = 4 AND g.code BETWEEN :lo AND :hi"""
# The period's cases as evaluate() counts them, snapped to cells (a GiST-free aggregate over the period's rows;
# the period and scope predicates use the same indexes as the evaluation's per-case pass).
HEAT = """
SELECT round(ST_X(p)::numeric, 5)::float8 AS lon, round(ST_Y(p)::numeric, 5)::float8 AS lat, n
FROM (SELECT ST_Centroid(ST_Collect(c.location)) AS p, count(*)::int AS n
      FROM "case" c WHERE {cases}
      GROUP BY ST_SnapToGrid(c.location, :cell)) cells
ORDER BY n DESC LIMIT :limit"""


@dataclass(frozen=True)
class Month:
    """A calendar month in Suzhou time: its name (``YYYY-MM``) and its period ``[start, end)``, aware."""

    name: str
    start: datetime
    end: datetime


def parse_month(value: str) -> Month:
    """The month ``YYYY-MM`` (Suzhou time); InvalidParameterError naming ``month`` otherwise."""
    found = MONTH.match(value)
    if not found or not 2000 <= int(found[1]) <= 2100:
        raise InvalidParameterError("month must be YYYY-MM (a month of 2000–2100)", parameter="month")
    year, month = int(found[1]), int(found[2])
    start = datetime(year, month, 1, tzinfo=LOCAL)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=LOCAL)
    return Month(value, start, end)


def town_report(conn: Connection, town: str, month: Month, *, by: Principal) -> dict[str, Any]:
    """The monthly report of ``town`` (a 9-digit town code) as ``by`` may read it: the town's name, the month,
    the evaluation of its grids and of its communities (rows, ranks, grades, totals, the 721 split) and its
    base grids' current shapes (GeoJSON, simplified for print).

    Raises:
        InvalidParameterError: ``town`` is not a town code.
        ForbiddenError: the town lies outside ``by``'s scope (before anything is counted).
        NotFoundError: no such town.
    """
    if not TOWN_CODE.match(town):
        raise InvalidParameterError("town must be a 9-digit town code", parameter="town")
    grids = evaluate(conn, KpiQuery(group="grid", start=month.start, end=month.end, area=town), by=by)
    found = conn.execute(text(TOWN), {"code": town}).first()
    if found is None:
        raise NotFoundError(f"no town {town}")
    communities = evaluate(conn, KpiQuery(group="community", start=month.start, end=month.end, area=town), by=by)
    lo, hi = prefix_range(town)
    shapes = conn.execute(text(GRID_SHAPES), {"lo": lo, "hi": hi, "tolerance": SHAPE_TOLERANCE}).scalar_one()
    return {"town": {"code": found.code, "name": found.name}, "month": month.name, "from": month.start,
            "to": month.end, "scope": by.scope, "grids": grids, "communities": communities,
            "shapes": json.loads(shapes)}


def case_heat(conn: Connection, query: KpiQuery, *, by: Principal) -> dict[str, Any]:
    """The cases of ``query``'s period, scope and area (those ``evaluate`` counts) as a GeoJSON
    FeatureCollection of cells (``HEAT_CELL`` degrees), each a point at its cases' centroid with their count
    ``n``, the densest first. A unit counts the cases it leads, and by department also those it assists, as
    ``evaluate`` does. Refusals as ``evaluate``'s (period, group, area, scope)."""
    params = _params(query, by) | {"cell": HEAT_CELL, "limit": HEAT_MAX_CELLS}
    cases = CASES.format(owner=OWNER_OR_ASSIST if query.group == "department" else OWNER).replace("__PERIOD__", PERIOD)
    conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    try:
        rows = conn.execute(text(HEAT.format(cases=cases)), params).all()
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == QUERY_CANCELED:  # the statement timeout: a refusal, not a 500
            raise QueryBudgetError("the heat map ran over its time budget; ask for a shorter period or a "
                                   "smaller area") from exc
        raise
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                 "properties": {"n": r.n}} for r in rows]
    return {"type": "FeatureCollection", "features": features, "cell": HEAT_CELL,
            "cases": sum(r.n for r in rows)}
