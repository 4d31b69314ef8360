"""The evaluation's rollup (migration 0022): how a period is cut into whole local days and months that the
rollup answers, and the cases kpi.py still judges one by one.

``kpi_rollup`` holds per bucket of local report dates (a day, or a month), base grid, unit and part (lead or
assisting) the *settled* judgment of its cases: as they stand once every event and deadline of the case lies
in the past. For a period ``[start, end)``:

- the **window** is the whole local days inside it (Asia/Shanghai, the working calendar's zone): from the
  first local midnight at or after ``start`` to the last one at or before ``end``. Its whole months come from
  the month rows, its other days from the day rows;
- the **edges**, the cases reported in ``[start, window)`` and ``[window, end)`` (parts of a day), are judged
  as of ``end`` from the cases (kpi.py's per-case statement);
- the window's cases **not settled at end** — an event the evaluation reads (``kpi_through``), the deadline,
  or an assisting unit's dispatch, feedback or deadline at or after ``end`` (``ix_case_kpi_settles``,
  ``ix_case_unit_kpi_settles``) — are taken out of the rollup's sums at their settled judgment and counted
  as they stood at ``end`` instead.

So any period is exact to the instant, and a year costs the month rows (~10^5) plus a few thousand cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, text

from spatial.cases.schemas import LOCAL

ROLLUP_KEYS = {"grid": "r.grid_code", "community": "left(r.grid_code, 12)", "town": "left(r.grid_code, 9)",
               "district": "left(r.grid_code, 6)", "department": "r.unit_key"}
LEAD_PART = "r.lead AND (CAST(:owner AS text) IS NULL OR r.unit_key = :owner)"
ANY_PART = "(CAST(:owner AS text) IS NULL OR r.unit_key = :owner)"
ENFORCEMENT = "(SELECT key FROM department WHERE kind = 'enforcement')"
# The rollup's sums over the window; the split is read off the unit (closed counts only the lead's rows).
ROLLED = """
SELECT {key} AS key, sum(reported) AS reported, sum(registered) AS registered, sum(voided) AS voided,
       sum(suspended) AS suspended, sum(due) AS due, sum(closed) AS closed, sum(closed_on_time) AS closed_on_time,
       sum(handled) AS handled, sum(handled_on_time) AS handled_on_time, sum(reworked) AS reworked,
       coalesce(sum(closed) FILTER (WHERE r.unit_key = 'GRID_CHIEF'), 0) AS solved_grid,
       coalesce(sum(closed) FILTER (WHERE r.unit_key <> 'GRID_CHIEF' AND r.unit_key NOT IN {enforcement}), 0)
         AS solved_department,
       coalesce(sum(closed) FILTER (WHERE r.unit_key IN {enforcement}), 0) AS solved_enforcement,
       sum(assisting) AS assisting, sum(assist_due) AS assist_due, sum(assist_handled) AS assist_handled,
       sum(assist_handled_on_time) AS assist_handled_on_time
FROM kpi_rollup r
WHERE ((r.span = 'm' AND r.day >= :m0 AND r.day < :m1)
       OR (r.span = 'd' AND ((r.day >= :d0 AND r.day < :m0) OR (r.day >= :m1 AND r.day < :d1))))
  AND (CAST(:lo AS text) IS NULL OR r.grid_code BETWEEN :lo AND :hi)
  AND (CAST(:area_lo AS text) IS NULL OR r.grid_code BETWEEN :area_lo AND :area_hi)
  AND {part}
GROUP BY 1"""
# The cases judged one by one (``inside``: of the window): the edges, and the window's cases not settled at :end.
# The scope's and the asked area's grid ranges (``kpi._params``), read early: the cases judged one by one are
# those of the area touched, not of the whole map (the statement filters them again, with every other rule).
AREA = ("(CAST(:lo AS text) IS NULL OR c.grid_code BETWEEN :lo AND :hi)"
        " AND (CAST(:area_lo AS text) IS NULL OR c.grid_code BETWEEN :area_lo AND :area_hi)")
ONE_BY_ONE = """
SELECT id, false AS inside FROM "case" c WHERE reported_at >= :start AND reported_at < :ws AND __AREA__
UNION ALL
SELECT id, false FROM "case" c WHERE reported_at >= :we AND reported_at < :end AND __AREA__
UNION ALL
SELECT id, true FROM "case" c
WHERE greatest(kpi_through, deadline) >= :end AND reported_at >= :ws AND reported_at < :we AND __AREA__
UNION ALL
SELECT c.id, true FROM case_unit u JOIN "case" c ON c.id = u.case_id AND c.reported_at = u.reported_at
WHERE greatest(u.deadline, u.handled_at, u.dispatched_at) >= :end AND c.reported_at >= :ws AND c.reported_at < :we
  AND u.reported_at >= :ws AND u.reported_at < :we
  AND __AREA__""".replace("__AREA__", AREA)


@dataclass(frozen=True)
class Window:
    """The whole local days of a period: days ``[d0, d1)``, of which the whole months ``[m0, m1)`` (``m0 = m1 =
    d1`` when none); ``ws``, ``we`` the same days as instants."""

    d0: date
    d1: date
    m0: date
    m1: date

    @property
    def ws(self) -> datetime:
        return datetime.combine(self.d0, time(), LOCAL)

    @property
    def we(self) -> datetime:
        return datetime.combine(self.d1, time(), LOCAL)

    def params(self) -> dict[str, Any]:
        """The bound values of ``ROLLED`` and ``CASES``."""
        return {"d0": self.d0, "d1": self.d1, "m0": self.m0, "m1": self.m1, "ws": self.ws, "we": self.we}


def window(start: datetime, end: datetime) -> Window | None:
    """The whole local days of ``[start, end)`` (None when it holds none)."""
    first, last = start.astimezone(LOCAL), end.astimezone(LOCAL)
    d0 = first.date() if first.time() == time() else first.date() + timedelta(days=1)
    d1 = last.date()
    if d0 >= d1:
        return None
    m0 = d0 if d0.day == 1 else (d0.replace(day=1) + timedelta(days=32)).replace(day=1)
    m1 = d1.replace(day=1)
    if m0 >= m1:
        m0 = m1 = d1
    return Window(d0, d1, m0, m1)


def rolled(group: str, department: bool) -> str:
    """The rollup's sums for ``group`` over the window (lead rows only outside the department grouping)."""
    return ROLLED.format(key=ROLLUP_KEYS[group], enforcement=ENFORCEMENT, part=ANY_PART if department else LEAD_PART)


def one_by_one(conn: Connection, params: dict[str, Any]) -> tuple[list[int], list[int]]:
    """The cases judged one by one: all of them (edges and unsettled), and those inside the window (of the whole
    map unless ``params`` narrow the grid ranges, as ``kpi._params`` does)."""
    every: set[int] = set()
    inside: set[int] = set()
    ranges = {"lo": None, "hi": None, "area_lo": None, "area_hi": None}
    for case_id, in_window in conn.execute(text(ONE_BY_ONE), ranges | params):
        every.add(case_id)
        if in_window:
            inside.add(case_id)
    return sorted(every), sorted(inside)
