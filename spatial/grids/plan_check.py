"""Whether a plan keeps the grids whole (issue 19, item 2): every changed grid inside its parent, and every
parent it touches still partitioned by its children — no gap, no overlap. Each problem says where (a
location, its area in m² and its polygon). Checked on preview and again, refusing, at commit.

Special grids (level NULL: an overlay, SPEC "Grids") partition nothing and may overlap: a plan's special grid
need only lie inside its district.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import shapely
from sqlalchemy import Connection, text

from spatial.geo.geometry import polygonal
from spatial.grids.plan_edits import planned_grids
from spatial.grids.repair import NOISE_M2, Finding, area_m2

TOLERANCE_M2 = NOISE_M2  # seams of floating-point geometry, not land


def _problem(kind: str, codes: list[str], geom: Any, action: str) -> Finding:
    at = geom.representative_point()
    return Finding(kind, codes, area_m2(geom), (at.x, at.y), action, geom)


def _touched(conn: Connection, plan_id: int) -> tuple[set[str], set[str]]:
    """The codes a plan edits (old and new), and the parents whose partition it may change."""
    rows = conn.execute(text("SELECT code, new_code, parent_code FROM grid_plan_edit WHERE plan_id = :p"
                             " AND level IS NOT NULL"), {"p": plan_id}).all()
    edited = {c for code, new, _ in rows for c in (code, new) if c}
    parents = {parent for _, _, parent in rows if parent} | {c for c in edited}
    return edited, parents


def check_plan(conn: Connection, plan_id: int) -> list[Finding]:
    """The problems the plan would make — those of its grids as planned, less what the live grids already
    have at the same place (a seam the data came with is not the plan's doing); empty when it keeps every
    partition."""
    edited, parents = _touched(conn, plan_id)
    planned = _problems(conn, plan_id, edited, parents) + _special_problems(conn, plan_id)
    if not planned:
        return []
    already = _problems(conn, 0, edited, parents)  # plan 0 has no edits: the live grids
    out = []
    for problem in planned:
        same = [p.geometry for p in already if p.kind == problem.kind and p.geometry is not None]
        if problem.geometry is None or not same:
            out.append(problem)
            continue
        rest = polygonal(problem.geometry.difference(shapely.union_all(same)))
        if area_m2(rest) > TOLERANCE_M2:
            out.append(_problem(problem.kind, problem.codes, rest, problem.action))
    return out


def _problems(conn: Connection, plan_id: int, edited: set[str], parents: set[str]) -> list[Finding]:
    problems: list[Finding] = []
    holders = planned_grids(conn, plan_id, codes=sorted(parents))
    for parent, holder in sorted(holders.items()):
        children = {c: g for c, g in planned_grids(conn, plan_id, level=(holder["level"] or 0) + 1,
                                                    near=holder["geom"]).items() if g["parent"] == parent}
        if not children:
            continue
        union = shapely.union_all([g["geom"] for g in children.values()])
        for gap in polygonal(holder["geom"].difference(union)).geoms:
            if area_m2(gap) > TOLERANCE_M2:
                problems.append(_problem("gap", [parent], gap, f"{area_m2(gap):,.0f} m² of {parent} in no grid"))
        for code, grid in sorted(children.items()):
            outside = polygonal(grid["geom"].difference(holder["geom"]))
            if area_m2(outside) > TOLERANCE_M2:
                problems.append(_problem("outside_parent", [code, parent], outside,
                                         f"{area_m2(outside):,.0f} m² of {code} outside {parent}"))
        for (a, ga), (b, gb) in combinations(sorted(children.items()), 2):
            if (a in edited or b in edited) and ga["geom"].intersects(gb["geom"]):
                overlap = polygonal(ga["geom"].intersection(gb["geom"]))
                if area_m2(overlap) > TOLERANCE_M2:
                    problems.append(_problem("overlap", [a, b], overlap,
                                             f"{a} and {b} overlap by {area_m2(overlap):,.0f} m²"))
    return problems


def _special_problems(conn: Connection, plan_id: int) -> list[Finding]:
    """The plan's special grids (created or reshaped) reaching outside their district's current shape."""
    rows = conn.execute(text(
        "SELECT e.code, e.parent_code, ST_AsBinary(ST_Difference(e.geom, gg.geom)) FROM grid_plan_edit e"
        " JOIN grid_geometry gg ON gg.grid_code = e.parent_code AND gg.valid_to IS NULL"
        " WHERE e.plan_id = :p AND e.level IS NULL AND e.geom IS NOT NULL ORDER BY e.code"), {"p": plan_id}).all()
    problems = []
    for code, district, blob in rows:
        outside = polygonal(shapely.from_wkb(bytes(blob)))
        if area_m2(outside) > TOLERANCE_M2:
            problems.append(_problem("outside_parent", [code, district], outside,
                                     f"{area_m2(outside):,.0f} m² of {code} outside {district}"))
    return problems
