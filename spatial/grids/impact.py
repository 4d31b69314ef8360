"""What a plan changes (issue 19, items 3 and 4): the components and open cases whose base grid (and so
community, town, district or place-bound owner) would change, and the workload of every grid it touches,
before and after (area, components and their population by class, open cases, cases per month) — read-only
for the preview; the same rows reassigned at commit.

Work is proportional to the changed area, not the city: only points in the *changed region* (per edited base
grid, the symmetric difference of its old and new shapes; its whole shape when it is created, retired or
recoded) are looked at, through the GiST indexes of components and cases. A point in the region goes to the
planned base grid covering it, the smallest code on a shared edge (the assignment rule). Closed and voided
cases keep the grid they were handled under.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from shapely import wkt as shapely_wkt
from sqlalchemy import Connection, text

from spatial.codes import SPECIAL_KINDS_SQL
from spatial.grids.plan_edits import planned_grids
from spatial.grids.plans import planned_teams, team_of
from spatial.grids.repair import area_m2
from spatial.store.partitions import OPEN_SPAN, open_span

# The planned base grids and the changed region of a plan, shared by the preview and the reassignment.
PLANNED = """
WITH ed AS (SELECT * FROM grid_plan_edit WHERE plan_id = :p AND level = 4),
old AS (SELECT gg.grid_code AS code, gg.geom FROM grid_geometry gg JOIN ed ON ed.code = gg.grid_code
        WHERE gg.valid_to IS NULL),
-- the changed region as its small polygon parts (not one union), so that each part's bounding box finds
-- the few components and cases under it through the GiST indexes
region AS MATERIALIZED (
    SELECT (ST_Dump(CASE WHEN ed.op = 'reshape' THEN ST_SymDifference(old.geom, ed.geom)
                         ELSE ST_Union(COALESCE(old.geom, ed.geom), COALESCE(ed.geom, old.geom)) END)).geom AS geom
    FROM ed LEFT JOIN old ON old.code = ed.code WHERE ed.op <> 'reshape' OR ed.geom IS NOT NULL
),
planned AS MATERIALIZED (
    SELECT COALESCE(ed.new_code, ed.code) AS code, COALESCE(ed.geom, old.geom) AS geom
    FROM ed LEFT JOIN old ON old.code = ed.code WHERE ed.op <> 'retire'
    UNION ALL
    -- from the region's parts to the grids under them (the GiST index), not every grid tested against the
    -- region: an EXISTS was planned as a scan of all base grids (150,000 in a province: ~90 ms per call)
    SELECT DISTINCT ON (gg.grid_code) gg.grid_code, gg.geom
    FROM region r JOIN grid_geometry gg ON gg.geom && r.geom
    WHERE gg.valid_to IS NULL AND gg.kind = 'base' AND gg.grid_code NOT IN (SELECT code FROM ed)
)
"""

COMPONENTS = PLANNED + """
, inside AS (
    SELECT DISTINCT c.code, c.class_code, c.grid_code, c.geom
    FROM region r JOIN component c ON c.geom && r.geom AND ST_Covers(r.geom, ST_PointOnSurface(c.geom))
), moved AS (
    SELECT c.code, c.class_code, c.grid_code AS before,
           (SELECT p.code FROM planned p WHERE p.geom && ST_PointOnSurface(c.geom)
            AND ST_Covers(p.geom, ST_PointOnSurface(c.geom)) ORDER BY p.code LIMIT 1) AS after,
           ST_AsGeoJSON(ST_PointOnSurface(c.geom), 7) AS point
    FROM inside c
)
SELECT * FROM moved WHERE after IS DISTINCT FROM before ORDER BY code
"""

# Open cases only, in the months that hold them (:open_from, :open_to: spatial/store/partitions.py open_span).
CASES = PLANNED + f"""
, inside AS (
    SELECT DISTINCT k.id, k.reported_at, k.case_no, k.state, k.owner_key, k.owner_area_code, k.grid_code,
           k.location
    FROM region r JOIN "case" k ON k.location && r.geom AND ST_Covers(r.geom, k.location)
    WHERE k.state NOT IN ('closed', 'voided') AND {OPEN_SPAN.format(k='k')}
), moved AS (
    SELECT k.id, k.reported_at, k.case_no, k.state, k.owner_key, k.owner_area_code, k.grid_code AS before,
           (SELECT p.code FROM planned p WHERE p.geom && k.location AND ST_Covers(p.geom, k.location)
            ORDER BY p.code LIMIT 1) AS after, ST_AsGeoJSON(k.location, 7) AS point
    FROM inside k
)
SELECT * FROM moved WHERE after IS DISTINCT FROM before ORDER BY id
"""


def moved_components(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """Components whose base grid the plan changes: code, class, before, after, point (GeoJSON text)."""
    return [dict(r) for r in conn.execute(text(COMPONENTS), {"p": plan_id}).mappings()]


def moved_cases(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """Open cases whose base grid the plan changes: id, reported_at, case_no, state, owner, before, after,
    point."""
    return [dict(r) for r in conn.execute(text(CASES), {"p": plan_id, **open_span(conn)}).mappings()]


def _changes(before: str | None, after: str | None) -> list[str]:
    if before is None or after is None:
        return ["grid"]
    return [name for name, width in (("grid", 15), ("community", 12), ("town", 9), ("district", 6))
            if before[:width] != after[:width]]


def _workload(conn: Connection, plan_id: int, comps: list[dict[str, Any]],
              cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    codes = sorted({r[k] for r in comps + cases for k in ("before", "after") if r[k]} | set(
        conn.execute(text("SELECT COALESCE(new_code, code) FROM grid_plan_edit WHERE plan_id = :p AND level = 4"
                          " UNION SELECT code FROM grid_plan_edit WHERE plan_id = :p AND level = 4"),
                     {"p": plan_id}).scalars()))
    year_ago = _year_ago(conn)
    rows = conn.execute(text(
        "SELECT g.code, (SELECT ST_AsText(geom) FROM grid_geometry WHERE grid_code = g.code AND valid_to IS NULL),"
        " (SELECT count(*) FROM component WHERE grid_code = g.code),"
        f" (SELECT count(*) FROM \"case\" k WHERE k.grid_code = g.code AND k.state NOT IN ('closed', 'voided')"
        f" AND {OPEN_SPAN.format(k='k')}),"
        " (SELECT count(*) FROM \"case\" WHERE grid_code = g.code AND reported_at > :year_ago)"
        " FROM unnest(CAST(:codes AS text[])) AS g(code)"),
        {"codes": codes, "year_ago": year_ago, **open_span(conn)}).all()
    planned = planned_grids(conn, plan_id, level=4, codes=codes)
    yearly_after = _yearly_after(conn, planned, year_ago)
    by_class = _by_class(conn, codes, comps)
    out = []
    for code, wkt, n_comp, n_open, n_year in rows:
        comp_delta = sum(r["after"] == code for r in comps) - sum(r["before"] == code for r in comps)
        case_delta = sum(r["after"] == code for r in cases) - sum(r["before"] == code for r in cases)
        out.append({
            "code": code,
            "area_m2": {"before": round(area_m2(shapely_wkt.loads(wkt)), 1) if wkt else 0.0,
                        "after": round(area_m2(planned[code]["geom"]), 1) if code in planned else 0.0},
            "components": {"before": n_comp, "after": n_comp + comp_delta},
            "open_cases": {"before": n_open, "after": n_open + case_delta},
            "cases_per_month": {"before": round(n_year / 12, 2), "after": round(yearly_after.get(code, 0) / 12, 2)},
            "components_by_class": by_class.get(code, {}),
        })
    return out


def _by_class(conn: Connection, codes: list[str], comps: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """Per grid, per component class: how many components it holds now and as the plan would leave it (the
    moved components added and taken away): code → class → {before, after}; classes with none either way
    left out. One grouped query over the grids' components (read-only)."""
    before: Counter[tuple[str, str]] = Counter({(g, c): n for g, c, n in conn.execute(text(
        "SELECT grid_code, class_code, count(*) FROM component WHERE grid_code = ANY(CAST(:codes AS text[]))"
        " GROUP BY grid_code, class_code"), {"codes": codes})})
    after = before.copy()
    for r in comps:
        if r["before"] is not None:
            after[(r["before"], r["class_code"])] -= 1
        if r["after"] is not None:
            after[(r["after"], r["class_code"])] += 1
    out: dict[str, dict[str, dict[str, int]]] = {}
    for grid, cls in sorted(set(before) | set(after)):
        if before[(grid, cls)] or after[(grid, cls)]:
            out.setdefault(grid, {})[cls] = {"before": before[(grid, cls)], "after": after[(grid, cls)]}
    return out


def _year_ago(conn: Connection) -> Any:
    """A year before the transaction's clock, as a constant: the counts of a year's cases plan only its months."""
    return conn.execute(text("SELECT now() - interval '1 year'")).scalar_one()


def _yearly_after(conn: Connection, planned: dict[str, dict[str, Any]], year_ago: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, grid in planned.items():
        out[code] = int(conn.execute(text(
            "SELECT count(*) FROM \"case\" k, ST_GeomFromText(:w, 4326) g WHERE k.location && g"
            " AND ST_Covers(g, k.location) AND k.reported_at > :year_ago"),
            {"w": grid["geom"].wkt, "year_ago": year_ago}).scalar_one())
    return out


def preview(conn: Connection, plan_id: int) -> dict[str, Any]:
    """The impact of a plan as numbers, lists and GeoJSON (read-only)."""
    comps, cases = moved_components(conn, plan_id), moved_cases(conn, plan_id)
    by_class = Counter(r["class_code"] for r in comps)
    features = [{"type": "Feature", "geometry": json.loads(r["point"]),
                 "properties": {"kind": "component", "code": r["code"], "before": r["before"], "after": r["after"]}}
                for r in comps]
    features += [{"type": "Feature", "geometry": json.loads(r["point"]),
                  "properties": {"kind": "case", "id": r["id"], "before": r["before"], "after": r["after"]}}
                 for r in cases]
    return {
        "plan": plan_id,
        "numbers": {"components": len(comps), "open_cases": len(cases),
                    "components_by_class": dict(sorted(by_class.items()))},
        "components": [{"code": r["code"], "class_code": r["class_code"], "before": r["before"],
                        "after": r["after"], "changes": _changes(r["before"], r["after"])} for r in comps],
        "open_cases": [{"id": r["id"], "case_no": r["case_no"], "before": r["before"], "after": r["after"],
                        "changes": _changes(r["before"], r["after"]) + (["owner"] if r["owner_area_code"] else [])}
                       for r in cases],
        "workload": _workload(conn, plan_id, comps, cases),
        "teams": [{"code": code, "before": team_of(conn, code), "after": members}
                  for code, members in planned_teams(conn, plan_id).items()],
        "geojson": {"type": "FeatureCollection", "features": features},
    }


def reassign(conn: Connection, comps: list[dict[str, Any]], cases: list[dict[str, Any]],
             version: int) -> dict[str, int]:
    """Rebind the components and open cases found by ``moved_components`` / ``moved_cases`` before the plan's
    shapes were written (the new grids must exist by now); return how many."""
    stay = [r for r in comps if r["after"] is not None]
    if stay:
        conn.execute(text("UPDATE component c SET grid_code = m.after FROM unnest(CAST(:codes AS text[]),"
                          " CAST(:after AS text[])) AS m(code, after) WHERE c.code = m.code"),
                     {"codes": [r["code"] for r in stay], "after": [r["after"] for r in stay]})
    moving = [r for r in cases if r["after"] is not None]
    if moving:
        conn.execute(text(
            "UPDATE \"case\" k SET grid_code = m.after, community_code = left(m.after, 12),"
            " town_code = left(m.after, 9), district_code = left(m.after, 6), grid_version_id = :v,"
            " owner_area_code = CASE length(k.owner_area_code) WHEN 15 THEN m.after"
            " WHEN 9 THEN left(m.after, 9) ELSE k.owner_area_code END"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:after AS text[])) AS m(id, after) WHERE k.id = m.id"
            " AND k.reported_at BETWEEN :first AND :last"),  # the months of the cases moved (constants: pruned)
            {"ids": [r["id"] for r in moving], "after": [r["after"] for r in moving], "v": version,
             "first": min(r["reported_at"] for r in moving), "last": max(r["reported_at"] for r in moving)})
    return {"components": len(stay), "open_cases": len(moving)}


# Open cases under a special grid the plan drew, redrew or retired (the region: old and new shapes' symmetric
# difference, or the whole shape) take the special grids covering them now, as intake assigns them
# (spatial/store/sql/assign_core.sql); run after the plan's shapes are written.
SPECIAL_CASES = f"""
WITH ed AS (SELECT code, COALESCE(new_code, code) AS now_code FROM grid_plan_edit WHERE plan_id = :p AND level IS NULL),
region AS MATERIALIZED (
    SELECT (ST_Dump(CASE WHEN o.geom IS NOT NULL AND n.geom IS NOT NULL THEN ST_SymDifference(o.geom, n.geom)
                         ELSE COALESCE(o.geom, n.geom) END)).geom AS geom
    FROM ed
    LEFT JOIN grid_geometry o ON o.grid_code = ed.code AND o.valid_to = :at
    LEFT JOIN grid_geometry n ON n.grid_code = ed.now_code AND n.valid_to IS NULL AND n.version_id = :v
), inside AS (
    SELECT DISTINCT ON (k.id) k.id, k.reported_at, k.location
    FROM region r JOIN "case" k ON k.location && r.geom AND ST_Covers(r.geom, k.location)
    WHERE k.state NOT IN ('closed', 'voided') AND {OPEN_SPAN.format(k='k')}
), now AS (
    SELECT i.id, i.reported_at, COALESCE((SELECT array_agg(gg.grid_code ORDER BY gg.grid_code) FROM grid_geometry gg
                                          WHERE gg.valid_to IS NULL AND gg.kind IN {SPECIAL_KINDS_SQL}
                                           AND gg.geom && i.location AND ST_Covers(gg.geom, i.location)),
                                         CAST('{{}}' AS varchar[])) AS codes
    FROM inside i
)
UPDATE "case" k SET special_grid_codes = now.codes FROM now
WHERE k.id = now.id AND k.reported_at = now.reported_at AND {OPEN_SPAN.format(k='k')}
  AND k.special_grid_codes IS DISTINCT FROM now.codes
RETURNING k.id
"""


def reassign_special(conn: Connection, plan_id: int, version: int, at: Any) -> int:
    """Give the open cases under the special grids the plan changed the special grids covering them now
    (closed cases keep what they were handled under); return how many changed."""
    return len(conn.execute(text(SPECIAL_CASES), {"p": plan_id, "v": version, "at": at, **open_span(conn)}).all())
