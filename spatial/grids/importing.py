"""Importing a city's grids (issue 19, item 1): read the file, repair it, report its topology, then store it
as a plan — committed at once, or kept as a draft to look at — or refuse it with the report.

This is also how a new city starts: ``gridlink import grids districts.gpkg --level 1`` into an empty database,
then towns, communities and base grids level by level (each level's parents must be stored first). Special
grids (``--level special``) come after the districts: they overlay the partition, so they are checked as an
overlay (spatial/grids/repair.py ``check_specials``) and stored as a plan like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shapely import wkb as shapely_wkb
from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_grid, check_edit_special_grid
from spatial.grids import planning
from spatial.grids.imports import DEFAULT_MAPPING, Mapping, read_grids
from spatial.grids.plans import current, open_plan, put_edit
from spatial.grids.repair import SPECIAL, Checked, Level, check_grids


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the report, and the plan it stored (None for a dry run) and its state."""

    report: dict[str, Any]
    plan_id: int | None
    state: str

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON."""
        return {"plan": self.plan_id, "state": self.state, **self.report}


def _parents(conn: Connection, level: Level) -> dict[str, Any]:
    """The current shapes of the level above (special grids: the districts), by code."""
    if level == 1:
        return {}
    rows = conn.execute(text(
        "SELECT g.code, ST_AsBinary(gg.geom) FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code"
        " AND gg.valid_to IS NULL WHERE g.level = :l AND g.retired_at IS NULL"),
        {"l": 1 if level == SPECIAL else int(level) - 1}).all()
    return {code: shapely_wkb.loads(bytes(blob)) for code, blob in rows}


def _existing(conn: Connection, level: Level) -> dict[str, str | None]:
    if level == SPECIAL:  # an overlay: a file of special grids need not give them all
        return {}
    rows = conn.execute(text("SELECT code, parent_code FROM grid WHERE level = :l AND retired_at IS NULL"),
                        {"l": level}).all()
    return {code: parent for code, parent in rows}


def parse_level(value: str | int) -> Level:
    """A level as given (``1``…``4`` or ``special``); InvalidParameterError otherwise."""
    text_value = str(value).strip().lower()
    if text_value == SPECIAL:
        return SPECIAL
    if text_value in ("1", "2", "3", "4"):
        return int(text_value)
    raise errors.InvalidParameterError("level must be 1, 2, 3, 4 or special", parameter="level")


def check_file(conn: Connection, path: str | Path, level: Level, mapping: Mapping = DEFAULT_MAPPING, *,
               crs: str | None = None, layer: str | None = None, sliver_m2: float | None = None) -> Checked:
    """Read, repair and check a file of grids of ``level`` against the stored grids; store nothing."""
    level = parse_level(level)
    source = read_grids(path, mapping, crs=crs, layer=layer)
    if not source.rows:
        raise errors.InvalidParameterError("the file holds no features", parameter="file")
    return check_grids(source.rows, level, _parents(conn, level), _existing(conn, level), sliver_m2=sliver_m2)


def import_grids(conn: Connection, principal: Principal, actor: Actor, path: str | Path, level: Level,
                 mapping: Mapping = DEFAULT_MAPPING, *, crs: str | None = None, layer: str | None = None,
                 sliver_m2: float | None = None, store: str = "commit",
                 effective_at: datetime | None = None) -> ImportResult:
    """Check a file of grids and store it as a plan (``store``: ``commit`` at once, ``draft``, or ``none``
    for a dry run); GridImportRefusedError with the report when a problem remains, storing nothing."""
    level = parse_level(level)
    checked = check_file(conn, path, level, mapping, crs=crs, layer=layer, sliver_m2=sliver_m2)
    report = {"file": Path(path).name, **checked.report()}
    if not checked.ok:
        raise errors.GridImportRefusedError(
            f"{len(checked.problems)} problem(s) in {Path(path).name}: nothing was stored", report=report)
    for code in checked.grids:
        (check_edit_special_grid if level == SPECIAL else check_edit_grid)(principal, code)
    if store == "none":
        return ImportResult(report, None, "checked")
    plan = open_plan(conn, principal, f"import of {Path(path).name} (level {level})", source="import",
                     report=report)
    for code, (name, parent, shape) in sorted(checked.grids.items()):
        now = current(conn, code)
        put_edit(conn, principal, plan, op="create" if now is None else "reshape", code=code,
                 level=None if level == SPECIAL else int(level),
                 name=name, parent=parent, wkt=shape.wkt, based_on=None if now is None else now["version_id"])
    state = "draft"
    if store == "commit":
        state = planning.commit(conn, principal, actor, plan, effective_at=effective_at)["state"]
    record(conn, actor, "grid.import", target=f"plan {plan}",
           detail={"file": Path(path).name, "level": level, "grids": len(checked.grids),
                   "repairs": len(checked.repairs), "state": state})
    return ImportResult(report, plan, state)
