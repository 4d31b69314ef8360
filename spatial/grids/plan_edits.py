"""The planner's gestures on a draft plan (issue 19, item 2), each written as planned grids (spatial/grids/plans.py).

Every gesture exchanges area between grids of one level only by pieces cut from their own shapes, so it
cannot open a gap or an overlap; a drawn shape is snapped to the neighbours' boundaries first
(``SNAP_DEG``, ~1 m). What a gesture cannot keep — a grid leaving its parent, a parent no longer covered —
is found by ``spatial.grids.plan_check`` and refuses the commit, saying where.

- **move**: a line drawn across grids of one level; each grid it cuts keeps its largest piece and hands
  every other piece that touches a sibling (same parent) to the sibling sharing the longest border with it
  (the swept area changes hands, nothing else; a piece touching no sibling stays);
- **split**: a line cuts a grid; the largest piece keeps the code, the rest becomes a new grid ``new_code``;
- **merge**: a grid's area goes to a neighbour (``into``, or the one with the longest shared border), and the
  grid is retired;
- **create**: a drawn polygon (clipped to its parent) becomes a new grid, carved out of its siblings;
- **reshape**: a grid's shape redrawn alone (snapped); neighbours untouched, so an overlap or a gap it makes
  refuses the commit, saying where;
- **retire**: as merge into the neighbour with the longest shared border;
- **recode** and **rename**: a new code (the old one is retired: codes are never reused) or a new name;
- **team**: the members of a base or special grid's "4+N" team, replaced by the plan's list at commit (the
  four core roles — chief, inspector, police, supervisor — at least once each, then any volunteers and
  mediators).
"""

from __future__ import annotations

from typing import Any, cast

import shapely
from shapely import wkt as shapely_wkt
from shapely.geometry import LineString, MultiPolygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as split_by
from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.principal import Principal
from spatial.codes import LEVEL_WIDTHS
from spatial.geo.geometry import checked_shape, polygonal
from spatial.grids.plans import draft, put_edit, put_team
from spatial.text import text_problem

SNAP_DEG = 0.00001  # ~1 m: a drawn vertex this close to a neighbour's boundary lands on it
MIN_PIECE_DEG2 = 1e-12  # pieces below this are noise of the cut, not land
MAX_VERTICES = 10_000
TEAM_ROLES = ("chief", "inspector", "police", "supervisor", "volunteer", "mediator")
TEAM_CORE = TEAM_ROLES[:4]  # the "4" of a "4+N" team: every team has them
MAX_TEAM = 50


def planned_grids(conn: Connection, plan_id: int, *, level: int | None = None,
                  near: BaseGeometry | None = None, codes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The grids as the plan would leave them (the plan's edits over the current grids), of ``level`` near
    a shape or with the given ``codes``: code → {level, name, parent, version, geom (shapely), edited}."""
    # Two parts, not one FULL JOIN of the plan's edits with every current grid: the grids the plan leaves
    # alone filtered on their own columns (the spatial index serves ``near``: a province has 150,000), and the
    # plan's edits (a handful) over the grids they edit.
    rows = conn.execute(text(
        "SELECT g.code, g.level, g.name, g.parent_code AS parent, gg.version_id AS version,"
        " ST_AsText(gg.geom) AS wkt, false AS edited, CAST(NULL AS text) AS op"
        " FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL"
        " WHERE g.retired_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM grid_plan_edit e WHERE e.plan_id = :p AND e.code = g.code)"
        " AND (CAST(:level AS int) IS NULL OR g.level = :level)"
        " AND (CAST(:near AS text) IS NULL OR ST_Intersects(gg.geom, ST_GeomFromText(:near, 4326)))"
        " AND (CAST(:codes AS text[]) IS NULL OR g.code = ANY(:codes))"
        " UNION ALL"
        " SELECT COALESCE(ed.new_code, ed.code, cur.code), COALESCE(ed.level, cur.level),"
        " COALESCE(ed.name, cur.name), COALESCE(ed.parent_code, cur.parent_code), cur.version_id,"
        " ST_AsText(COALESCE(ed.geom, cur.geom)), ed.op IS NOT NULL, ed.op"
        " FROM grid_plan_edit ed LEFT JOIN (SELECT g.code, g.level, g.name, g.parent_code, gg.version_id, gg.geom"
        " FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code AND gg.valid_to IS NULL"
        " WHERE g.retired_at IS NULL) cur ON cur.code = ed.code"
        " WHERE ed.plan_id = :p AND (ed.op IS NULL OR ed.op <> 'retire')"
        " AND (CAST(:level AS int) IS NULL OR COALESCE(ed.level, cur.level) = :level)"
        " AND (CAST(:near AS text) IS NULL OR ST_Intersects(COALESCE(ed.geom, cur.geom), ST_GeomFromText(:near, 4326)))"
        " AND (CAST(:codes AS text[]) IS NULL OR COALESCE(ed.new_code, ed.code, cur.code) = ANY(:codes)"
        "      OR ed.code = ANY(:codes))"),
        {"p": plan_id, "level": level, "near": near.wkt if near is not None else None, "codes": codes}).mappings()
    return {r["code"]: {"level": r["level"], "name": r["name"], "parent": r["parent"], "version": r["version"],
                        "geom": shapely_wkt.loads(r["wkt"]), "edited": r["edited"], "op": r["op"]} for r in rows}


def _store(conn: Connection, principal: Principal, plan_id: int, code: str, grid: dict[str, Any],
           geom: BaseGeometry, *, op: str | None = None, note: str) -> None:
    shape = polygonal(geom if geom.is_valid else shapely.make_valid(geom))
    if shape.is_empty:
        raise errors.PlanRefusedError(f"grid {code} would have no area left: merge or retire it instead", grid=code)
    put_edit(conn, principal, plan_id, op=op or ("create" if grid.get("op") == "create" else "reshape"),
             code=code, level=grid["level"], name=grid["name"], parent=grid["parent"], wkt=shape.wkt,
             based_on=grid["version"], note=note)


def _line(value: Any) -> LineString:
    """A drawn line, both ends drawn on by ``2 × SNAP_DEG`` so that an end drawn onto a boundary (within
    ~1 m) crosses it; an end reaching into the next grid without crossing it cuts nothing there."""
    line = cast(LineString, checked_shape(value, ("LineString",), what="a boundary line", max_vertices=MAX_VERTICES))
    coords = list(line.coords)
    if line.length == 0:
        raise errors.InvalidGeometryError("the line has no length")

    def beyond(end: tuple[float, ...], before: tuple[float, ...]) -> tuple[float, float]:
        dx, dy = end[0] - before[0], end[1] - before[1]
        norm = (dx * dx + dy * dy) ** 0.5 or 1.0
        return end[0] + 2 * SNAP_DEG * dx / norm, end[1] + 2 * SNAP_DEG * dy / norm

    return LineString([beyond(coords[0], coords[1]), *coords, beyond(coords[-1], coords[-2])])


def shared_border(a: BaseGeometry, b: BaseGeometry) -> float:
    """The length (degrees) of ``a``'s boundary within ``SNAP_DEG`` of ``b``: neighbours whose shared edge
    differs in the last bits of its coordinates still share it."""
    if not a.intersects(b.buffer(SNAP_DEG)):
        return 0.0
    return float(a.boundary.intersection(b.buffer(SNAP_DEG)).length)


def _pieces(geom: BaseGeometry, line: LineString) -> list[BaseGeometry]:
    parts = [p for p in split_by(polygonal(geom), line).geoms if p.area > MIN_PIECE_DEG2]
    return sorted(parts, key=lambda p: -p.area)


def move_boundary(conn: Connection, principal: Principal, plan_id: int, line_value: Any, level: int) -> list[str]:
    """Move the shared boundaries a drawn line crosses (grids of ``level``); return the codes changed."""
    draft(conn, principal, plan_id)
    line = _line(line_value)
    cut = planned_grids(conn, plan_id, level=level, near=line)
    if not cut:
        raise errors.InvalidParameterError(f"the line crosses no grid of level {level}", parameter="line")
    grids = planned_grids(conn, plan_id, level=level,
                          near=shapely.union_all([g["geom"] for g in cut.values()]).buffer(SNAP_DEG))
    shapes = {code: g["geom"] for code, g in grids.items()}
    moved: list[tuple[BaseGeometry, str, str]] = []
    for code in sorted(cut):
        pieces = _pieces(shapes[code], line)
        for piece in pieces[1:]:
            border = {other: shared_border(piece, shapes[other]) for other in grids
                      if other != code and grids[other]["parent"] == grids[code]["parent"]}
            heir = max(sorted(border), key=lambda c: border[c]) if border else None
            if heir is None or border[heir] == 0:
                continue
            moved.append((piece, code, heir))
    if not moved:
        raise errors.InvalidParameterError("the line cuts off no area next to another grid of level "
                                           f"{level}: draw it from one shared boundary across to the same one",
                                           parameter="line")
    for piece, loser, heir in moved:
        shapes[loser] = shapes[loser].difference(piece)
        shapes[heir] = shapes[heir].union(piece)
    changed = sorted({c for _, a, b in moved for c in (a, b)})
    for code in changed:
        _store(conn, principal, plan_id, code, grids[code], shapes[code], note="boundary moved")
    return changed


def split(conn: Connection, principal: Principal, plan_id: int, code: str, new_code: str, line_value: Any,
          name: str | None = None) -> None:
    """Cut grid ``code`` with a line: its largest piece keeps the code, the rest becomes ``new_code``."""
    draft(conn, principal, plan_id)
    grid = planned_grids(conn, plan_id, codes=[code]).get(code)
    if grid is None:
        raise errors.NotFoundError(f"no grid {code} in the plan or the live grids")
    _check_new_code(conn, plan_id, new_code, grid)
    pieces = _pieces(grid["geom"], _line(line_value))
    if len(pieces) < 2:
        raise errors.InvalidParameterError(f"the line does not cut grid {code} in two", parameter="line")
    _store(conn, principal, plan_id, code, grid, pieces[0], note=f"split: {new_code} cut off")
    new = {**grid, "name": name or f"{grid['name']} ({new_code[-3:]})", "version": None, "op": "create"}
    _store(conn, principal, plan_id, new_code, new, shapely.union_all(pieces[1:]), op="create",
           note=f"split off {code}")


def _check_new_code(conn: Connection, plan_id: int, new_code: str, grid: dict[str, Any]) -> None:
    width = LEVEL_WIDTHS.get(grid["level"] or 0)
    if width is None or len(new_code) != width or not new_code.isdigit() or not new_code.startswith(grid["parent"]):
        raise errors.InvalidParameterError(f"{new_code} is not a level {grid['level']} code extending "
                                           f"{grid['parent']}", parameter="new_code")
    if conn.execute(text("SELECT 1 FROM grid WHERE code = :c UNION ALL SELECT 1 FROM grid_plan_edit"
                         " WHERE plan_id = :p AND (code = :c OR new_code = :c)"),
                    {"c": new_code, "p": plan_id}).first():
        raise errors.ConflictError(f"grid {new_code} exists or is planned (codes are never reused)")


def merge(conn: Connection, principal: Principal, plan_id: int, code: str, into: str | None = None) -> str:
    """Give grid ``code``'s area to ``into`` (default: the sibling sharing its longest border) and retire it;
    return the heir."""
    draft(conn, principal, plan_id)
    grid = planned_grids(conn, plan_id, codes=[code]).get(code)
    if grid is None:
        raise errors.NotFoundError(f"no grid {code} in the plan or the live grids")
    siblings = {c: g for c, g in planned_grids(conn, plan_id, level=grid["level"], near=grid["geom"]).items()
                if c != code and g["parent"] == grid["parent"]}
    border = {c: shared_border(g["geom"], grid["geom"]) for c, g in siblings.items()}
    heir = into or (max(sorted(border), key=lambda c: border[c]) if border else None)
    if heir is None or heir not in siblings or border.get(heir, 0) == 0:
        raise errors.PlanRefusedError(f"grid {code} shares no border with {into or 'a sibling'}", grid=code)
    _store(conn, principal, plan_id, heir, siblings[heir], siblings[heir]["geom"].union(grid["geom"]),
           note=f"{code} merged in")
    put_edit(conn, principal, plan_id, op="retire", code=code, level=grid["level"], name=grid["name"],
             parent=grid["parent"], wkt=None, based_on=grid["version"], note=f"merged into {heir}")
    return heir


def create(conn: Connection, principal: Principal, plan_id: int, code: str, name: str, level: int,
           polygon_value: Any) -> list[str]:
    """Draw a new grid (clipped to its parent, snapped, carved out of its siblings); return the siblings
    that gave area."""
    draft(conn, principal, plan_id)
    parent = code[:LEVEL_WIDTHS[level - 1]] if level > 1 else None
    shape = checked_shape(polygon_value, ("Polygon", "MultiPolygon"), what="a grid", max_vertices=MAX_VERTICES)
    grids = planned_grids(conn, plan_id, level=level, near=shape)
    if parent is not None:
        holder = planned_grids(conn, plan_id, codes=[parent]).get(parent)
        if holder is None:
            raise errors.InvalidParameterError(f"no grid {parent} to hold {code}", parameter="code")
        shape = shape.intersection(holder["geom"])
    _check_new_code(conn, plan_id, code, {"level": level, "parent": parent or ""})
    shape = shapely.snap(shape, shapely.union_all([g["geom"].boundary for g in grids.values()] or [shape]), SNAP_DEG)
    givers = []
    for other, grid in sorted(grids.items()):
        if grid["geom"].intersection(shape).area > MIN_PIECE_DEG2:
            _store(conn, principal, plan_id, other, grid, grid["geom"].difference(shape), note=f"gave area to {code}")
            givers.append(other)
    _store(conn, principal, plan_id, code, {"level": level, "name": name, "parent": parent, "version": None,
                                            "op": "create"}, MultiPolygon(polygonal(shape).geoms), op="create",
           note="drawn")
    return givers


def reshape(conn: Connection, principal: Principal, plan_id: int, code: str, polygon_value: Any) -> None:
    """Draw grid ``code``'s new shape as given (snapped to its neighbours' boundaries), leaving the neighbours
    as they are: what it takes from them is an overlap, what it gives up a gap — both refuse the commit
    (spatial.grids.plan_check) until the neighbours are edited too. ``move`` changes both sides at once."""
    draft(conn, principal, plan_id)
    grid = planned_grids(conn, plan_id, codes=[code]).get(code)
    if grid is None:
        raise errors.NotFoundError(f"no grid {code} in the plan or the live grids")
    shape = checked_shape(polygon_value, ("Polygon", "MultiPolygon"), what="a grid", max_vertices=MAX_VERTICES)
    near = planned_grids(conn, plan_id, level=grid["level"], near=shape.buffer(SNAP_DEG))
    edges = [g["geom"].boundary for c, g in near.items() if c != code]
    _store(conn, principal, plan_id, code, grid, shapely.snap(shape, shapely.union_all(edges), SNAP_DEG)
           if edges else shape, note="redrawn")


def retire(conn: Connection, principal: Principal, plan_id: int, code: str) -> str:
    """Retire a grid; its area goes to the sibling sharing its longest border (a merge)."""
    return merge(conn, principal, plan_id, code)


def recode(conn: Connection, principal: Principal, plan_id: int, code: str, new_code: str,
           name: str | None = None) -> None:
    """Give grid ``code`` a new code (and name): the old code is retired, never reused."""
    draft(conn, principal, plan_id)
    grid = planned_grids(conn, plan_id, codes=[code]).get(code)
    if grid is None:
        raise errors.NotFoundError(f"no grid {code} in the plan or the live grids")
    _check_new_code(conn, plan_id, new_code, grid)
    put_edit(conn, principal, plan_id, op="recode", code=code, new_code=new_code, level=grid["level"],
             name=name or grid["name"], parent=grid["parent"], wkt=grid["geom"].wkt, based_on=grid["version"],
             note=f"recoded to {new_code}")


def rename(conn: Connection, principal: Principal, plan_id: int, code: str, name: str) -> None:
    """Give grid ``code`` a new name."""
    draft(conn, principal, plan_id)
    grid = planned_grids(conn, plan_id, codes=[code]).get(code)
    if grid is None:
        raise errors.NotFoundError(f"no grid {code} in the plan or the live grids")
    put_edit(conn, principal, plan_id, op=grid["op"] if grid["op"] in ("create", "recode") else "reshape",
             code=code, level=grid["level"], name=name, parent=grid["parent"],
             wkt=grid["geom"].wkt, based_on=grid["version"], note="renamed")


def team(conn: Connection, principal: Principal, plan_id: int, code: str, members: list[dict[str, Any]]) -> None:
    """Plan grid ``code``'s team as ``members`` (``role``, ``name``, optional ``phone``): a base or special
    grid that is live or created by the plan (not retired by it); every core role at least once."""
    draft(conn, principal, plan_id)
    grid = planned_grids(conn, plan_id, codes=[code]).get(code)
    if grid is None:
        raise errors.NotFoundError(f"no grid {code} in the plan or the live grids (a retired grid has no team)")
    if grid["level"] not in (4, None):
        raise errors.InvalidParameterError(f"grid {code} is of level {grid['level']}: only base and special"
                                           " grids have teams", parameter="code")
    if not isinstance(members, list) or len(members) > MAX_TEAM:
        raise errors.InvalidParameterError(f"members must be a list of at most {MAX_TEAM}", parameter="members")
    clean = []
    for i, m in enumerate(members):
        if not isinstance(m, dict):
            raise errors.InvalidParameterError(f"member {i} is not an object", parameter="members")
        role, name, phone = m.get("role"), m.get("name"), m.get("phone")
        if role not in TEAM_ROLES:
            raise errors.InvalidParameterError(f"member {i}: role must be one of {', '.join(TEAM_ROLES)}",
                                               parameter="members")
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or text_problem(name):
            raise errors.InvalidParameterError(f"member {i}: a name of 1–200 characters of text is needed",
                                               parameter="members")
        if phone is not None and (not isinstance(phone, str) or len(phone) > 20 or text_problem(phone)):
            raise errors.InvalidParameterError(f"member {i}: a phone of at most 20 characters", parameter="members")
        clean.append({"role": role, "name": name.strip(), "phone": phone})
    lacking = [r for r in TEAM_CORE if r not in {m["role"] for m in clean}]
    if lacking:
        raise errors.InvalidParameterError(f"a team needs a {', a '.join(lacking)} (4+N: {', '.join(TEAM_CORE)})",
                                           parameter="members")
    put_team(conn, principal, plan_id, code, clean)


NEEDS: dict[str, tuple[str, ...]] = {
    "move": ("line", "level"), "split": ("code", "new_code", "line"), "merge": ("code",),
    "create": ("code", "name", "level", "polygon"), "reshape": ("code", "polygon"), "retire": ("code",),
    "recode": ("code", "new_code"), "rename": ("code", "name"), "team": ("code", "members")}


def gesture(conn: Connection, principal: Principal, plan_id: int, op: str, fields: dict[str, Any]) -> None:
    """Apply the gesture ``op`` with its ``fields`` (``NEEDS`` says which are required) to a draft."""
    missing = [name for name in NEEDS[op] if fields.get(name) is None]
    if missing:
        raise errors.InvalidParameterError(f"{op} needs {', '.join(missing)}", parameter=missing[0])
    f = fields
    calls: dict[str, Any] = {
        "move": lambda: move_boundary(conn, principal, plan_id, f["line"], f["level"]),
        "split": lambda: split(conn, principal, plan_id, f["code"], f["new_code"], f["line"], f.get("name")),
        "merge": lambda: merge(conn, principal, plan_id, f["code"], f.get("into")),
        "create": lambda: create(conn, principal, plan_id, f["code"], f["name"], f["level"], f["polygon"]),
        "reshape": lambda: reshape(conn, principal, plan_id, f["code"], f["polygon"]),
        "retire": lambda: retire(conn, principal, plan_id, f["code"]),
        "recode": lambda: recode(conn, principal, plan_id, f["code"], f["new_code"], f.get("name")),
        "rename": lambda: rename(conn, principal, plan_id, f["code"], f["name"]),
        "team": lambda: team(conn, principal, plan_id, f["code"], f["members"]),
    }
    calls[op]()
