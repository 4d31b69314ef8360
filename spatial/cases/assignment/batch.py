"""Assignment of a big batch with in-process indexes (spatial/cases/assignment/index.py), rule for rule as
``sql/assign_core.sql`` does it for one report: same grid choice, component choice, owner and duplicates.
"""

from __future__ import annotations

from concurrent.futures import Future
from datetime import datetime

import numpy as np

from spatial.cases.assignment.duplicates import Cases, against_stored
from spatial.cases.assignment.index import BatchIndex, Component, Usable
from spatial.cases.assignment.owner import owner_for
from spatial.cases.assignment.rules import DEFAULT_RADIUS_M, RETIRED, Assignment, AssignmentInput, trust_of
from spatial.codes import district_of, lineage
from spatial.errors import ComponentError, GridlinkError
from spatial.grids.locate import Area, area_of, outside_coverage
from spatial.reference.cache import ReferenceCache


def assign_batch(conn, ref: ReferenceCache, reports: list[AssignmentInput], *, radius_m: float = DEFAULT_RADIUS_M,
                 usable: Future[Usable] | None = None) -> list[Assignment | GridlinkError]:
    """Assign every report; each result is an Assignment or the domain error refusing it. ``usable``:
    the usable components being read by ``prefetch_usable``, if the caller started that."""
    index = BatchIndex(conn, reports, usable)
    xy = np.array([(r.lon, r.lat) for r in reports], dtype=float).reshape(-1, 2)
    bases, specials = index.grids(xy)
    nearest = _nearest(index, reports, xy, radius_m)
    bound: dict[int, tuple[Component | None, float | None]] = {}
    refused: dict[int, GridlinkError] = {}
    for i, (report, base) in enumerate(zip(reports, bases, strict=True)):
        try:
            if base is None:
                raise outside_coverage(conn, report.lon, report.lat)
            bound[i] = _component(index, report, base, nearest.get(i))
        except GridlinkError as exc:
            refused[i] = exc
    kept = list(bound)
    stored = Cases.from_rows(index.open_cases)
    batch = Cases.of(kept, [reports[i].category.code for i in kept], xy[kept, 0], xy[kept, 1],
                     [reports[i].at for i in kept], [c.code if c else None for c, _ in bound.values()],
                     [trust_of(reports[i].source) for i in kept])
    duplicates = dict(zip(kept, against_stored(batch, stored), strict=True))
    shape = _Shaper(ref)
    return [refused[i] if i in refused else shape(report, str(bases[i]), specials[i], *bound[i], duplicates[i])
            for i, report in enumerate(reports)]


class _Shaper:
    """Builds Assignments, remembering what repeats across a batch (the areas of a grid, deadlines)."""

    def __init__(self, ref: ReferenceCache) -> None:
        self.ref = ref
        self.levels: dict[str, list[Area]] = {}
        self.deadlines: dict[tuple[datetime, int, str], datetime] = {}

    def __call__(self, report: AssignmentInput, base: str, special: list[str], found: Component | None,
                 distance: float | None, duplicate: int | None) -> Assignment:
        ref, cat = self.ref, report.category
        levels = self.levels.get(base)
        if levels is None:
            levels = self.levels[base] = [area_of(ref, code) for code in lineage(base)]
        key = (report.at, cat.time_limit, cat.time_unit)
        deadline = self.deadlines.get(key)
        if deadline is None:
            deadline = self.deadlines[key] = ref.calendar.deadline(report.at, cat.time_limit, cat.time_unit)
        owner_key, owner_area = owner_for(cat.flow, cat.handler, cat.enforcer, grid_code=base,
                                          component_owner=found.owner_key if found is not None else None)
        district, town, community, grid = levels
        return Assignment(
            grid=grid, community=community, town=town, district=district,
            special_grids=[area_of(ref, s) for s in special], component_code=found.code if found else None,
            component_distance_m=distance, owner_key=owner_key, owner_area_code=owner_area, deadline=deadline,
            duplicate_of=duplicate,
        )


def _nearest(index: BatchIndex, reports: list[AssignmentInput], xy: np.ndarray,
             radius_m: float) -> dict[int, tuple[Component, float] | None]:
    """The nearest usable component of each report of a component category that names none, by class set."""
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for i, report in enumerate(reports):
        if report.wants_nearest_component:
            groups.setdefault(report.category.component_classes, []).append(i)
    out: dict[int, tuple[Component, float] | None] = {}
    for classes, rows in groups.items():
        found = index.nearest_components(classes, xy[rows, 0], xy[rows, 1], radius_m)
        out.update(zip(rows, found, strict=True))
    return out


def _component(index: BatchIndex, report: AssignmentInput, base: str,
               nearest: tuple[Component, float] | None) -> tuple[Component | None, float | None]:
    """The named component (refused when unknown, retired or in another district) or, for component
    categories, the nearest usable one of a matching class within the radius; with its distance."""
    if report.component_code is not None:
        code = report.component_code
        named = index.named.get(code)
        if named is None:
            raise ComponentError(f"unknown component code {code!r}", component_code=code)
        if named.status in RETIRED:
            raise ComponentError(f"component {code} is {named.status} and takes no new cases", component_code=code)
        if named.district_code != district_of(base):
            raise ComponentError(f"component {code} belongs to district {named.district_code}, but the report lies"
                                 f" in district {district_of(base)}", component_code=code)
        return named, round(named.metres_from(report.lon, report.lat), 1)
    if nearest is None:
        return None, None
    return nearest[0], round(nearest[1], 1)
