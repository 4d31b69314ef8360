"""Assignment of a big batch with in-process indexes (spatial/batch_index.py), rule for rule as
``sql/assign_core.sql`` does it for one report: same grid choice, component choice, owner and duplicates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from spatial.assignment import (
    DEFAULT_RADIUS_M,
    Assignment,
    Report,
    area_of,
    outside_coverage,
    owner_name,
)
from spatial.batch_index import BatchIndex, sphere_metres
from spatial.errors import ComponentError, GridlinkError
from spatial.reference_cache import CategoryInfo, ReferenceCache

WINDOW = timedelta(hours=24)


def owner_for(cat: CategoryInfo, grid_code: str, component_owner: str | None) -> tuple[str, str | None]:
    """Return (owner key, owner area) by the category's flow — the CASE of assign_core.sql."""
    if cat.flow == "component":
        return (component_owner, None) if component_owner else ("TOWN", grid_code[:9])
    if cat.flow == "grid_first":
        return "GRID_CHIEF", grid_code
    if cat.flow == "enforcement":
        return cat.enforcer or "ENFORCE", grid_code[:9]
    if cat.handler in ("TOWN", "COMPONENT_OWNER"):
        return "TOWN", grid_code[:9]
    return cat.handler, None


class Duplicates:
    """Open originals (from the database, then from the batch) for the duplicate rule, bucketed by category
    and ~100 m cells so that each look-up reads only the neighbouring cells."""

    CELL = 0.001  # degrees; 50 m is well inside one cell in every direction at Suzhou's latitude

    def __init__(self, originals) -> None:
        self.cells: dict[tuple[str, int, int], list[tuple[int, float, float, str | None, datetime]]] = {}
        self.components: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
        for case_id, category, lon, lat, component, at in originals:
            self.add(case_id, category, lon, lat, component, at)

    def add(self, case_id: int, category: str, lon: float, lat: float, component: str | None,
            at: datetime) -> None:
        """Remember an open original."""
        key = (category, int(lon // self.CELL), int(lat // self.CELL))
        self.cells.setdefault(key, []).append((case_id, lon, lat, component, at))
        if component:
            self.components.setdefault((category, component), []).append((at, case_id))

    def find(self, category: str, lon: float, lat: float, component: str | None, at: datetime) -> int | None:
        """Return the original on the same component (earliest), else the nearest within 50 m, in 24 h."""
        if component:
            same = [(when, i) for when, i in self.components.get((category, component), ())
                    if timedelta(0) <= at - when < WINDOW]
            if same:
                return min(same)[1]
        cx, cy = int(lon // self.CELL), int(lat // self.CELL)
        live = [o for dx in (-1, 0, 1) for dy in (-1, 0, 1) for o in self.cells.get((category, cx + dx, cy + dy), ())
                if timedelta(0) <= at - o[4] < WINDOW]
        if not live:
            return None
        xs = np.array([o[1] for o in live])
        ys = np.array([o[2] for o in live])
        metres = sphere_metres(lon, lat, xs, ys)
        close = np.flatnonzero(metres <= 50)
        if len(close) == 0:
            return None
        planar = np.hypot(xs - lon, ys - lat)
        best = min(close.tolist(), key=lambda i: (planar[i], live[i][0]))
        return live[best][0]


def assign_batch(conn, ref: ReferenceCache, reports: list[Report],
                 radius_m: float = DEFAULT_RADIUS_M) -> list[Assignment | GridlinkError]:
    """Assign every report; each result is an Assignment or the domain error refusing it."""
    index = BatchIndex(conn, reports)
    xy = np.array([(r.lon, r.lat) for r in reports], dtype=float)
    bases, specials = index.grids(xy)
    duplicates = Duplicates(index.open_originals())
    out: list[Assignment | GridlinkError] = []
    for report, base, special in zip(reports, bases, specials, strict=True):
        try:
            out.append(_one(conn, ref, index, duplicates, report, base, special, radius_m))
        except GridlinkError as exc:
            out.append(exc)
    return out


def _component(index: BatchIndex, report: Report, base: str, radius_m: float) -> tuple[int | None, float | None]:
    c = index.components
    if report.component_code is not None:
        found = c.lookup.get(report.component_code)
        code = report.component_code
        if found is None:
            raise ComponentError(f"unknown component code {code!r}", component_code=code)
        if c.status[found] in ("abandoned", "removed"):
            raise ComponentError(f"component {code} is {c.status[found]} and takes no new cases", component_code=code)
        if c.districts[found] != base[:6]:
            raise ComponentError(f"component {code} belongs to district {c.districts[found]}, but the report lies"
                                 f" in district {base[:6]}", component_code=code)
    elif report.category.flow == "component":
        found = index.nearest_component(report.category.component_classes, report.lon, report.lat, radius_m)
    else:
        return None, None
    if found is None:
        return None, None
    return found, round(float(sphere_metres(report.lon, report.lat, c.xy[found, 0], c.xy[found, 1])), 1)


def _one(conn, ref: ReferenceCache, index: BatchIndex, duplicates: Duplicates, report: Report, base: str | None,
         special: list[str], radius_m: float) -> Assignment:
    if base is None:
        raise outside_coverage(conn, report.lon, report.lat)
    found, distance = _component(index, report, base, radius_m)
    code = str(index.components.codes[found]) if found is not None else None
    owner_key, owner_area = owner_for(report.category, base, str(index.components.owners[found])
                                      if found is not None else None)
    duplicate = duplicates.find(report.category.code, report.lon, report.lat, code, report.at)
    levels = {n: area_of(ref, base[:w]) for n, w in ((1, 6), (2, 9), (3, 12), (4, 15))}
    return Assignment(
        grid=levels[4], community=levels[3], town=levels[2], district=levels[1],
        special_grids=[area_of(ref, s) for s in special], component_code=code,
        component_class=str(index.components.classes[found]) if found is not None else None,
        component_distance_m=distance, owner_key=owner_key, owner_area_code=owner_area,
        owner_name=owner_name(ref, owner_key, base),
        deadline=ref.calendar.deadline(report.at, report.category.time_limit, report.category.time_unit),
        duplicate_of=duplicate,
    )

