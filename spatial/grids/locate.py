"""Where a point lies: the grids of every level covering it (``/locate``), and the refusal for a point outside
every base grid, naming the nearest grid (SPEC "Assignment rules", step 1).

On a shared edge the grid with the smallest code wins, and a point's ancestors are read off the chosen
deepest grid's code, so that a point on an edge cannot mix branches of the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection

from spatial.codes import LEVEL_NAMES, ancestor
from spatial.errors import OutsideCoverageError
from spatial.reference.cache import ReferenceCache
from spatial.store.sql import statement


class AreaPublic(TypedDict):
    """A grid as the public contract shows it (a case's areas, ``/locate``): code, name and level."""

    code: str
    name: str
    level: int | str  # 1–4, or a special grid's kind


@dataclass(frozen=True)
class Area:
    """A grid as the API shows it."""

    code: str
    name: str
    level: int | str

    def as_dict(self) -> AreaPublic:
        """Return the ``{"code", "name", "level"}`` object of the public contract."""
        return {"code": self.code, "name": self.name, "level": self.level}


def area_of(ref: ReferenceCache, code: str) -> Area:
    """Return the grid ``code`` with its name and level from the reference cache."""
    name, level = ref.areas.get(code, (code, "unknown"))
    return Area(code, name, level)


def outside_coverage(conn: Connection, lon: float, lat: float) -> OutsideCoverageError:
    """Return the refusal for a point outside every base grid, naming the nearest grid and its distance."""
    row = conn.execute(statement("nearest_grid"), {"lon": lon, "lat": lat}).mappings().first()
    if row is None:
        return OutsideCoverageError("no grids are loaded: nothing can be assigned")
    distance = round(float(row["distance_m"]), 1)
    nearest = {"code": row["code"], "name": row["name"], "level": row["level"], "distance_m": distance}
    if distance == 0:
        detail = (f"({lon}, {lat}) lies in {row['name']} ({row['code']}), which has no base grids: "
                  "cases can only be assigned where base grids exist")
    else:
        detail = (f"({lon}, {lat}) is outside every grid; the nearest is {row['name']} ({row['code']}), "
                  f"{distance:,.0f} m away")
    return OutsideCoverageError(detail, nearest_grid=nearest)


def locate(conn: Connection, lon: float, lat: float, at: datetime | None = None) -> dict[str, object]:
    """Return the grids of every level covering a point (the ``/locate`` contract) or refuse it; with ``at``,
    the grids that covered it at that instant (issue 19: shapes valid then, names as they are now)."""
    if at is None:
        rows = conn.execute(statement("locate"), {"lon": lon, "lat": lat}).mappings().all()
    else:
        rows = conn.execute(statement("locate_at"), {"lon": lon, "lat": lat, "at": at}).mappings().all()
    by_code = {row["code"]: Area(row["code"], row["name"], row["level"]) for row in rows if row["level"]}
    specials = [Area(row["code"], row["name"], row["kind"]) for row in rows if row["level"] is None]
    if not by_code:
        raise outside_coverage(conn, lon, lat)
    chosen: dict[int, Area] = {}
    for area in sorted(by_code.values(), key=lambda a: a.code):  # smallest code of each level first
        chosen.setdefault(int(area.level), area)
    deepest = chosen[max(chosen)]
    # Ancestors are read off the chosen deepest grid's code, so that a point on a shared edge cannot mix
    # branches of the tree.
    for level in (1, 2, 3):
        if level < int(deepest.level) and ancestor(deepest.code, level) in by_code:
            chosen[level] = by_code[ancestor(deepest.code, level)]
    result: dict[str, object] = {name: (chosen[n].as_dict() if n in chosen else None)
                                 for n, name in LEVEL_NAMES.items()}
    result["special_grids"] = [s.as_dict() for s in specials]
    return result
