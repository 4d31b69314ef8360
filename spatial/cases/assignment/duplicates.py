"""The duplicate rule for a whole batch at once, in process (the rule of ``sql/assign_core.sql``):

a report duplicates an open original case of the same category reported within the 24 hours before it and
trusted at least as much as the report (``rules.TRUST``: an unverified public report never absorbs an
inspector's) — the earliest one on the same component, else the nearest one within 50 m (planar nearest, as
PostGIS's ``<->``; ties: the smaller id). Originals are first the open cases already stored (``against_stored``,
the same for every row of the batch), then the earlier rows of the batch itself that are not duplicates
(``within_batch``, in row order: whether a row is an original depends on the rows before it).

Candidate pairs within 50 m come from one STRtree query for the whole batch; only rows that have a
candidate are then looked at one by one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely

from spatial.cases.assignment.index import SPHERE_M_PER_DEG, sphere_metres
from spatial.cases.assignment.rules import DUPLICATE_RADIUS_M, DUPLICATE_WINDOW, trust_of

WINDOW_US = DUPLICATE_WINDOW // timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(at: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding at the edge of the 24-hour window)."""
    return (at - _EPOCH) // timedelta(microseconds=1)


@dataclass
class Cases:
    """Reports or cases as parallel arrays."""

    ids: np.ndarray  # int64; for reports of a batch, the row position
    categories: np.ndarray  # str
    xy: np.ndarray  # (n, 2) lon, lat
    at: np.ndarray  # int64 microseconds since the epoch
    components: list[str | None]
    trust: np.ndarray  # int8, rules.trust_of: who may absorb whom

    @classmethod
    def of(cls, ids: Sequence[int], categories: Sequence[str], lons: Sequence[float] | np.ndarray,
           lats: Sequence[float] | np.ndarray, ats: Sequence[datetime], components: Sequence[str | None],
           trusts: Sequence[int]) -> Cases:
        """Build from plain sequences."""
        seen: dict[datetime, int] = {}  # rows of a batch mostly share one report time
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(categories, dtype=str),
                   np.column_stack([np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)]).reshape(-1, 2),
                   np.fromiter((seen[a] if a in seen else seen.setdefault(a, micros(a)) for a in ats),
                               dtype=np.int64, count=len(ats)), list(components),
                   np.asarray(trusts, dtype=np.int8).reshape(-1))

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence]) -> Cases:
        """Build from stored cases as rows of (id, category, lon, lat, at, component, source, state)."""
        if not rows:
            return cls.of([], [], [], [], [], [], [])
        ids, categories, lons, lats, ats, components, sources, states = zip(*rows, strict=True)
        return cls.of(ids, categories, lons, lats, ats, components,
                      [trust_of(source, state) for source, state in zip(sources, states, strict=True)])

    def __len__(self) -> int:
        return len(self.ids)


def _pairs(query: Cases, target: Cases) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (query row, target row) of the same category within 50 m on the sphere and inside the window
    (target reported at most 24 hours before, and not after, the query); with their planar distance."""
    if not len(query) or not len(target):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    max_lat = float(np.max(np.abs(query.xy[:, 1])))
    reach = DUPLICATE_RADIUS_M / (SPHERE_M_PER_DEG * max(math.cos(math.radians(max_lat)), 0.01)) * 1.01
    tree = shapely.STRtree(shapely.points(target.xy))
    qi, ti = tree.query(shapely.points(query.xy), predicate="dwithin", distance=reach)
    lag = query.at[qi] - target.at[ti]
    keep = ((query.categories[qi] == target.categories[ti]) & (lag >= 0) & (lag < WINDOW_US)
            & (target.trust[ti] >= query.trust[qi]))
    qi, ti = qi[keep], ti[keep]
    q, t = query.xy[qi], target.xy[ti]
    keep = sphere_metres(q[:, 0], q[:, 1], t[:, 0], t[:, 1]) <= DUPLICATE_RADIUS_M
    qi, ti = qi[keep], ti[keep]
    planar = np.hypot(query.xy[qi, 0] - target.xy[ti, 0], query.xy[qi, 1] - target.xy[ti, 1])
    order = np.lexsort((target.ids[ti], planar, qi))  # by query row, then nearest, then smaller id
    return qi[order], ti[order], planar[order]


def _by_component(cases: Cases) -> dict[tuple[str, str], list[int]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i, component in enumerate(cases.components):
        if component:
            groups.setdefault((str(cases.categories[i]), component), []).append(i)
    return groups


def against_stored(reports: Cases, stored: Cases) -> list[int | None]:
    """The stored open original each report duplicates (its id), or None."""
    found: list[int | None] = [None] * len(reports)
    groups = _by_component(stored)
    for j, component in enumerate(reports.components):
        if component:
            same = groups.get((str(reports.categories[j]), component), ())
            inside = [(int(stored.at[i]), int(stored.ids[i])) for i in same
                      if 0 <= reports.at[j] - stored.at[i] < WINDOW_US and stored.trust[i] >= reports.trust[j]]
            if inside:
                found[j] = min(inside)[1]
    qi, ti, _ = _pairs(reports, stored)
    rows, first = np.unique(qi, return_index=True)
    for j, k in zip(rows.tolist(), first.tolist(), strict=True):
        if found[j] is None:
            found[j] = int(stored.ids[ti[k]])
    return found


def within_batch(rows: Cases, already: list[int | None]) -> list[int | None]:
    """Link rows not yet linked (``already``: the stored original, or None) to an earlier original row of
    the batch; return, per row, the id (``rows.ids``) of its original, or None for an original."""
    found = list(already)
    qi, ti, _ = _pairs(rows, rows)
    earlier = ti < qi
    qi, ti = qi[earlier], ti[earlier]
    heads, first, count = np.unique(qi, return_index=True, return_counts=True)
    spans = {int(j): (int(a), int(a + n)) for j, a, n in zip(heads, first, count, strict=True)}
    groups = _by_component(rows)
    original = [f is None for f in found]
    for j in sorted(set(spans) | {i for members in groups.values() if len(members) > 1 for i in members}):
        if found[j] is not None:
            continue
        match = _same_component(rows, groups, original, j)
        if match is None and j in spans:
            start, stop = spans[j]
            match = next((int(i) for i in ti[start:stop] if original[i]), None)
        if match is not None:
            found[j] = int(rows.ids[match])
            original[j] = False
    return found


def _same_component(rows: Cases, groups: dict[tuple[str, str], list[int]], original: list[bool],
                    j: int) -> int | None:
    component = rows.components[j]
    if not component:
        return None
    members = [i for i in groups[(str(rows.categories[j]), component)]
               if i < j and original[i] and 0 <= rows.at[j] - rows.at[i] < WINDOW_US and rows.trust[i] >= rows.trust[j]]
    return min(members, key=lambda i: (int(rows.at[i]), int(rows.ids[i]))) if members else None
