"""Evaluation (考核评价, SPEC "Events and cases", GB/T 30428.4 style): rates, scores, grades, the 721 split and
rankings by grid, community, town, district or department over any period, read from the event trail through
a per-case summary kept on write.

The definitions, once (README "Evaluation" repeats them for the people who read the numbers):

- The cases of a period ``[start, end)`` are those *reported* in it; each is judged as it stood at ``end``
  (events at or after ``end`` are ignored, so a past period's figures do not change when cases move on).
  A case's state at ``end`` is the ``state_after`` of its last state-changing event before ``end``, so every
  path of the workflow (approvals, reopen, rework) is read the same way.
- due to close (应结案数): registered (立案) before ``end``, not voided, not suspended (挂账) at ``end``, and
  either past its deadline at ``end`` or closed by then — a case not yet due and still open is nobody's fault.
- closed (结案数): due and closed at ``end``; on time (按期结案) when its close event is not after the deadline.
- handled (处置数): due and handled or closed at ``end``; on time (按期处置) when its last handling (the one
  that stands) is not after the deadline.
- reworked (返工数): due with at least one rework before ``end``.
- 结案率 = closed / due, 按期结案率 = closed on time / due, 处置率 = handled / due, 按期处置率 = handled on time /
  due, 返工率 = reworked / due (SPEC: all over "due to close"); a group with nothing due has no rates (null).
- score = 10 % case-count score + 30 % 结案率 + 30 % 按期处置率 + 30 % (1 − 返工率), on 0–100; the case-count
  score is 100 × due / the largest ``due`` among the groups of the same answer (the busiest unit scores 100;
  by department ``due + assist_due``, below).
  Grades: A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, E below. The same formula scores areas as well as departments.
- ranking: by score, then 结案率, then the key; equal scores share a rank (1, 2, 2, 4).
- the 721 split: the closed cases by where they were solved — ``grid`` (grid-first cases, owner GRID_CHIEF),
  ``enforcement`` (an owner of kind enforcement) and ``department`` (every other unit: town and district
  departments, utilities, asset owners, the town sub-centre); SPEC's target is 70 / 20 / ≤ 10 %.

- joint handling (协办): by department, each assisting unit's ``case_unit`` row of a period's case counts for
  that unit too (``assisting``: dispatched to it before ``end``): ``assist_due`` like its case (registered, not
  voided — its work withdrawn — nor suspended at ``end``) once past *its own* deadline or handled by ``end``;
  ``assist_handled`` when its own feedback (``assist_handle``) came before ``end``, on time when not after its
  deadline. Its acceptance is not a rate of SPEC's. These rows enter 处置率 and 按期处置率 (over
  ``due + assist_due``) and the case-count score (the unit's work: ``due + assist_due``); 结案率, 按期结案率,
  返工率 and the 721 split stay the lead's (the case closes when the lead's work passes the check; a rework sends
  the lead back), over ``due``. A unit that only assisted is scored on the count and on-time handling parts,
  their weights scaled to 100 %. Area groups count cases (the lead's work) only.

A group is the case's base grid, community, town, district or owner unit (``owner_key``; the deadline and
owner are the case's current ones), or by department also an assisting unit (``case_unit.unit_key``). Only
the cases the caller may read count (spatial/access/scope.py): an owner-scoped caller's, those its unit leads
(area groups) and, by department, also those it assists (its own row: lead and assisting parts); an
area-scoped caller cannot ask for a group coarser than its area (the row would name an area it does not
cover); ``area`` narrows the cases to an area inside the scope.

Where the facts come from: every judgment above needs, per case, the latest time of a few kinds of event before
``end`` and the number of reworks. The trail holds them (``TRAIL_FACTS``, the definition), but a year is 3.9
million events. The ``kpi_*`` columns of ``case`` (migration 0020, kept by the trigger ``case_event_kpi`` in
the transaction that appends each event) hold the same facts over the whole trail, up to ``kpi_through``,
the latest event they include. A case whose ``kpi_through`` is before ``end`` is judged from its row; a case
with an event at or after ``end`` (a past period's cases that moved on since) from its trail, so a past
period's figures stay what the trail says (``SUMMARY_FACTS``; parity: tests/integration/test_kpi_summary.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from spatial.access.principal import Principal
from spatial.access.scope import KEY_ROLES
from spatial.cases.kpi_rollup import ONE_BY_ONE, rolled, window
from spatial.codes import AREA_CODE, SPECIAL_CODE, prefix_range
from spatial.errors import ForbiddenError, InvalidParameterError, QueryBudgetError
from spatial.store.partitions import EVENT_MARGIN

GROUPS = ("grid", "community", "town", "district", "department")
# Identifiers come from this registry only, never from a request.
GROUP_COLUMNS = {"grid": "c.grid_code", "community": "c.community_code", "town": "c.town_code",
                 "district": "c.district_code", "department": "c.owner_key"}
GROUP_WIDTH = {"district": 6, "town": 9, "community": 12, "grid": 15}
MAX_PERIOD = timedelta(days=400)  # a year and a bit: the longest evaluation one request may cost
GRADES = ((90.0, "A"), (75.0, "B"), (60.0, "C"), (40.0, "D"))
WEIGHTS = {"count": 0.10, "closure_rate": 0.30, "on_time_handling_rate": 0.30, "rework": 0.30}
LEAD_COUNTS = ("reported", "registered", "voided", "suspended", "due", "closed", "closed_on_time", "handled",
               "handled_on_time", "reworked", "solved_grid", "solved_department", "solved_enforcement")
# A department's part as an assisting unit (协办) of joint cases: its case_unit rows (zero in area groups).
ASSIST_COUNTS = ("assisting", "assist_due", "assist_handled", "assist_handled_on_time")
COUNTS = (*LEAD_COUNTS, *ASSIST_COUNTS)
# Each rate: its numerator and denominator. Closure and rework belong to the lead (the case closes when the
# lead's work passes the check; a rework sends the lead back); handling counts every unit's own work.
RATES = {"closure_rate": (("closed",), ("due",)), "on_time_closure_rate": (("closed_on_time",), ("due",)),
         "handling_rate": (("handled", "assist_handled"), ("due", "assist_due")),
         "on_time_handling_rate": (("handled_on_time", "assist_handled_on_time"), ("due", "assist_due")),
         "rework_rate": (("reworked",), ("due",))}
QUERY_CANCELED = "57014"

# Who may count: the period's cases inside the caller's scope and the asked area (bound values: ``_params``).
PERIOD = "c.reported_at >= :start AND c.reported_at < :end"
CASES = """__PERIOD__
    AND (CAST(:lo AS text) IS NULL OR c.grid_code BETWEEN :lo AND :hi)
    AND (CAST(:special AS text) IS NULL OR CAST(:special AS text) = ANY(c.special_grid_codes))
    AND {owner}
    AND (CAST(:area_lo AS text) IS NULL OR c.grid_code BETWEEN :area_lo AND :area_hi)
    AND (CAST(:area_special AS text) IS NULL OR CAST(:area_special AS text) = ANY(c.special_grid_codes))"""
# The facts of a case as of :end, read from its trail (the definition): the events before :end, once, joined
# to the period's cases; ix_case_event_case_id_at serves a few cases, one pass serves a year. ``:events_from``
# (the period's start less EVENT_MARGIN: no event precedes its case's report by more) bounds the months read
# (monthly partitions, migration 0028: the planner prunes the others).
TRAIL_FACTS = """
  SELECT c.id, {key} AS key, c.deadline, c.owner_key, {lead} AS lead,
         max(e.at) FILTER (WHERE e.kind = 'register') AS registered_at,
         max(e.at) FILTER (WHERE e.state_after IS NOT NULL) AS last_at,
         max(e.at) FILTER (WHERE e.state_after = 'closed') AS closed_at,
         max(e.at) FILTER (WHERE e.state_after = 'handled') AS handled_state_at,
         max(e.at) FILTER (WHERE e.state_after = 'voided') AS voided_at,
         max(e.at) FILTER (WHERE e.state_after = 'suspended') AS suspended_at,
         max(e.at) FILTER (WHERE e.kind = 'handle') AS handled_at,
         count(*) FILTER (WHERE e.kind = 'rework') AS reworks
  FROM "case" c JOIN case_event e ON e.case_id = c.id AND e.at < :end AND e.at >= :events_from
  WHERE {cases}
  GROUP BY c.id, c.reported_at"""  # the primary key (migration 0031): the case's other columns follow from it
# The same facts from the case's summary columns (migration 0020) when every event they hold is before :end
# (``kpi_through``); the few cases with an event at or after :end read their trail as above. A case's report
# event is not in the summary: it is its first event, at ``reported_at``, and none of the judgments below
# depend on it (it sets ``last_at`` only while nothing else happened, when the case is merely reported).
SUMMARY_FACTS = """
  SELECT c.id, {key} AS key, c.deadline, c.owner_key, {lead} AS lead, c.kpi_registered_at AS registered_at,
         c.kpi_state_at AS last_at,
         c.kpi_closed_at AS closed_at, c.kpi_handled_state_at AS handled_state_at, c.kpi_voided_at AS voided_at,
         c.kpi_suspended_at AS suspended_at, c.kpi_handled_at AS handled_at, c.kpi_reworks AS reworks
  FROM "case" c
  WHERE {cases} AND (c.kpi_through IS NULL OR c.kpi_through < :end)
  UNION ALL""" + TRAIL_FACTS.replace("WHERE {cases}", "WHERE {cases} AND c.kpi_through >= :end")
# Per case its state at :end (``judged``: from its last state-changing event), whether it is due, then the
# group's sums. OFFSET 0 computes ``due`` once per case: inlined, the planner copied these expressions into
# each of the aggregates' filters, which cost a third of the statement over a year (bench/kpi.py).
JUDGED = """
WITH facts AS ({facts}
), judged AS (
  SELECT id, key, owner_key, lead, deadline, registered_at, closed_at, handled_at, reworks,
         registered_at IS NOT NULL AS registered,
         voided_at = last_at AS voided, suspended_at = last_at AS suspended,
         closed_at = last_at AS closed,
         (closed_at = last_at OR handled_state_at = last_at) AS handled
  FROM facts
), due AS (
  SELECT *, registered AND NOT coalesce(voided, false) AND NOT coalesce(suspended, false)
            AND (deadline < :end OR coalesce(closed, false)) AS due
  FROM judged
  OFFSET 0
)"""
LEAD = """
SELECT key,
       count(*) AS reported,
       count(*) FILTER (WHERE registered) AS registered,
       count(*) FILTER (WHERE voided) AS voided,
       count(*) FILTER (WHERE suspended) AS suspended,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE due AND closed) AS closed,
       count(*) FILTER (WHERE due AND closed AND closed_at <= deadline) AS closed_on_time,
       count(*) FILTER (WHERE due AND handled) AS handled,
       count(*) FILTER (WHERE due AND handled AND handled_at <= deadline) AS handled_on_time,
       count(*) FILTER (WHERE due AND reworks > 0) AS reworked,
       count(*) FILTER (WHERE due AND closed AND owner_key = 'GRID_CHIEF') AS solved_grid,
       count(*) FILTER (WHERE due AND closed AND owner_key <> 'GRID_CHIEF'
                        AND owner_key NOT IN (SELECT key FROM department WHERE kind = 'enforcement'))
         AS solved_department,
       count(*) FILTER (WHERE due AND closed AND owner_key IN (SELECT key FROM department WHERE kind = 'enforcement'))
         AS solved_enforcement,
       0 AS assisting, 0 AS assist_due, 0 AS assist_handled, 0 AS assist_handled_on_time
FROM due WHERE lead GROUP BY key"""
SQL = JUDGED + LEAD + "\nORDER BY key\n"
# The assisting units of the period's cases as they stood at :end: dispatched before it, handled (their own
# feedback) before it or not. From case_unit (kept in the action's transaction), or from the trail alone: the
# dispatch events' ``data.assist`` (key, deadline) and the ``assist_handle`` events naming the unit.
UNITS = """SELECT case_id, unit_key, deadline, CASE WHEN handled_at < :end THEN handled_at END AS handled_at
  FROM case_unit WHERE dispatched_at < :end AND reported_at >= :start AND reported_at < :end"""
TRAIL_UNITS = """SELECT e.case_id, a ->> 'key' AS unit_key, CAST(a ->> 'deadline' AS timestamptz) AS deadline,
         (SELECT min(h.at) FROM case_event h WHERE h.case_id = e.case_id AND h.kind = 'assist_handle'
            AND h.at < :end AND h.at >= :events_from AND h.data ->> 'unit' = a ->> 'key') AS handled_at
  FROM case_event e CROSS JOIN LATERAL jsonb_array_elements(e.data -> 'assist') a
  WHERE e.kind = 'dispatch' AND e.at < :end AND e.at >= :events_from AND jsonb_typeof(e.data -> 'assist') = 'array'"""
# Department groups add each unit's assisting part: one row per (case, assisting unit), due like its case
# (registered, not voided — its work withdrawn — nor suspended at :end) once past its own deadline or handled,
# handled on time against its own deadline; closure, rework and the split stay the lead's.
ASSISTED = """
SELECT u.unit_key AS key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       count(*) AS assisting,
       count(*) FILTER (WHERE u.due) AS assist_due,
       count(*) FILTER (WHERE u.due AND u.handled_at IS NOT NULL) AS assist_handled,
       count(*) FILTER (WHERE u.due AND u.handled_at <= u.deadline) AS assist_handled_on_time
FROM (SELECT u.unit_key, u.deadline, u.handled_at,
             d.registered AND NOT coalesce(d.voided, false) AND NOT coalesce(d.suspended, false)
             AND (u.deadline < :end OR u.handled_at IS NOT NULL) AS due
      FROM ({units}) u JOIN due d ON d.id = u.case_id
      WHERE CAST(:owner AS text) IS NULL OR u.unit_key = :owner) u
GROUP BY u.unit_key"""
DEPARTMENT_SQL = (JUDGED + "\nSELECT key, " + ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTS)
                  + "\nFROM (" + LEAD + "\nUNION ALL" + ASSISTED + "\n) units GROUP BY key ORDER BY key\n")
# Who leads: the case's owner; an owner-scoped caller counts the cases its unit leads and, by department, those
# it assists (``case.assist_keys``, GIN-indexed).
OWNER = "(CAST(:owner AS text) IS NULL OR c.owner_key = :owner)"
OWNER_OR_ASSIST = "(CAST(:owner AS text) IS NULL OR c.owner_key = :owner OR CAST(:owner AS text) = ANY(c.assist_keys))"
NAMES = {
    "area": "SELECT code AS key, name FROM grid WHERE code = ANY(:keys)",
    "department": "SELECT key, name_zh AS name FROM department WHERE key = ANY(:keys)",
}


@dataclass(frozen=True)
class KpiQuery:
    """One evaluation: the grouping, the period ``[start, end)`` (aware datetimes) and an optional area."""

    group: str
    start: datetime
    end: datetime
    area: str | None = None


def grade(score: float | None) -> str | None:
    """The grade A–E of a score on 0–100 (None without a score)."""
    if score is None:
        return None
    return next((letter for floor, letter in GRADES if score >= floor), "E")


def work(counts: dict[str, int]) -> int:
    """A group's work due: the cases it leads that are due, and its assisting parts that are due."""
    return counts["due"] + counts.get("assist_due", 0)


def score(counts: dict[str, int], busiest: int) -> float | None:
    """The score of one group (module docstring); None when nothing was due. ``busiest``: the largest ``work``
    among the groups of the same answer. A unit that only assisted (nothing of its own lead was due) has no
    closure or rework rate: its score is the count and on-time handling parts, their weights scaled to 100 %."""
    due, total = counts["due"], work(counts)
    if total == 0:
        return None
    count_score = 100.0 * total / busiest if busiest else 0.0
    on_time = 100.0 * (counts["handled_on_time"] + counts.get("assist_handled_on_time", 0)) / total
    if not due:
        return ((WEIGHTS["count"] * count_score + WEIGHTS["on_time_handling_rate"] * on_time)
                / (WEIGHTS["count"] + WEIGHTS["on_time_handling_rate"]))
    return (WEIGHTS["count"] * count_score + WEIGHTS["closure_rate"] * 100.0 * counts["closed"] / due
            + WEIGHTS["on_time_handling_rate"] * on_time
            + WEIGHTS["rework"] * 100.0 * (1 - counts["reworked"] / due))


def statement(group: str, *, trail: bool = False, period: str = PERIOD, at: str = ":end") -> str:
    """The evaluation's SQL for ``group`` (a key of ``GROUP_COLUMNS``), from the summary or the trail alone:
    the cases of ``period`` (a predicate on ``c``) judged as they stood at ``at`` (a bound parameter)."""
    department = group == "department"
    cases = CASES.format(owner=OWNER_OR_ASSIST if department else OWNER)
    facts = (TRAIL_FACTS if trail else SUMMARY_FACTS).format(key=GROUP_COLUMNS[group], cases=cases, lead=OWNER)
    if department:
        sql = DEPARTMENT_SQL.format(facts=facts, units=TRAIL_UNITS if trail else UNITS)
    else:
        sql = SQL.format(facts=facts)
    return sql.replace(":end", at).replace("__PERIOD__", period)


def rollup_statement(group: str) -> str:
    """The evaluation's SQL from the rollup (spatial/cases/kpi_rollup.py): its sums over the period's whole
    days, less the settled judgment of the window's cases not settled at :end, plus the judgment at :end of
    those and of the edges' cases — the same rows as ``statement`` (tests/integration/test_kpi_rollup.py)."""
    # Every case of one_by_one is a case of the period: saying so lets "case" prune its months (migration 0031).
    unsettled = statement(group, period=f"c.id IN (SELECT id FROM one_by_one WHERE inside) AND {PERIOD}",
                          at=":forever")
    at_end = statement(group, period=f"c.id IN (SELECT id FROM one_by_one) AND {PERIOD}")
    columns = ", ".join(COUNTS)
    return (f"WITH one_by_one AS MATERIALIZED ({ONE_BY_ONE})\n"
            f"SELECT key, {', '.join(f'sum({c})::bigint AS {c}' for c in COUNTS)} FROM ("
            + rolled(group, group == "department")
            + f"\nUNION ALL SELECT key, {', '.join(f'-{c}' for c in COUNTS)} FROM ({unsettled}) settled"
            + f"\nUNION ALL SELECT key, {columns} FROM ({at_end}) at_end"
            + "\n) parts GROUP BY key HAVING sum(reported) + sum(assisting) > 0 ORDER BY key")


def evaluate(conn: Connection, query: KpiQuery, *, by: Principal, trail: bool = False,
             rollup: bool = True) -> dict[str, Any]:
    """Evaluate the cases ``by`` may read (module docstring): rows per group, ranked, and the totals.

    Read from the rollup (``rollup_statement``) when the period holds a whole local day and neither the scope
    nor ``area`` is a special grid (the rollup has no special grids), else case by case from the summary.
    ``rollup=False``: case by case from the summary. ``trail``: read every case's facts from its event trail
    (the definition; over a year 5–7 × the work, BENCHMARKS.md "Evaluation"). All three give the same answer
    (tests/integration/test_kpi_summary.py, test_kpi_rollup.py).
    """
    params = _params(query, by)
    _settle(conn)
    sql = statement(query.group, trail=trail)
    days = window(query.start, query.end) if rollup and not trail else None
    if days is not None and params["special"] is None and params["area_special"] is None:
        params |= days.params() | {"forever": "infinity"}
        sql = rollup_statement(query.group)
    try:
        rows = [dict(r) for r in conn.execute(text(sql), params).mappings()]
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == QUERY_CANCELED:
            raise QueryBudgetError("the evaluation ran over its time budget; ask for a shorter period or a "
                                   "smaller area") from exc
        raise
    names = _names(conn, query.group, [r["key"] for r in rows])
    busiest = max((work(r) for r in rows), default=0)
    groups = [_group(r, names.get(r["key"]), busiest) for r in rows]
    _rank(groups)
    totals = {name: sum(r[name] for r in rows) for name in COUNTS}
    return {"group": query.group, "from": query.start, "to": query.end, "area": query.area,
            "scope": by.scope, "groups": groups, "totals": {**totals, **_rates(totals), "split": _split(totals)}}


def _settle(conn: Connection) -> None:
    """Planner settings for this one statement (SET LOCAL: they end with the transaction). Parallel workers
    each build the whole per-case hash here (3 × the work on 2 cores, measured in bench/kpi.py); memory
    enough to keep a year's per-case facts off disk."""
    conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    conn.execute(text("SET LOCAL work_mem = '128MB'"))


def _params(query: KpiQuery, by: Principal) -> dict[str, Any]:
    """The bound values of ``SQL``; refusals for a bad period, group or area, and for an area or group
    outside the caller's scope."""
    if query.group not in GROUPS:
        raise InvalidParameterError(f"group must be one of {', '.join(GROUPS)}", parameter="group")
    if query.start >= query.end:
        raise InvalidParameterError("from must be before to", parameter="from")
    if query.end - query.start > MAX_PERIOD:
        raise InvalidParameterError(f"a period may span at most {MAX_PERIOD.days} days", parameter="to")
    params: dict[str, Any] = {"start": query.start, "end": query.end, "lo": None, "hi": None, "special": None,
                              "owner": None, "area_lo": None, "area_hi": None, "area_special": None,
                              "events_from": query.start - EVENT_MARGIN}
    scope = by.scope
    if scope != "*" and by.role in KEY_ROLES:
        params["owner"] = scope
    elif SPECIAL_CODE.match(scope):
        params["special"] = scope
    elif scope != "*":
        params["lo"], params["hi"] = prefix_range(scope)
        width = GROUP_WIDTH.get(query.group)
        if width is not None and width < len(scope):
            raise ForbiddenError(f"your scope {scope} is part of one {query.group}: evaluate by a group inside it",
                                 scope=scope)
    if query.area is not None:
        params.update(_area(query.area, by))
    return params


def _area(area: str, by: Principal) -> dict[str, Any]:
    """The bound values of an ``area`` filter, which must lie inside an area scope."""
    if SPECIAL_CODE.match(area):
        inside = by.scope in ("*", area) or by.role in KEY_ROLES or area.startswith(by.scope)
        if not inside:
            raise ForbiddenError(f"area {area} lies outside your scope {by.scope}", area=area, scope=by.scope)
        return {"area_special": area}
    if not AREA_CODE.match(area):
        raise InvalidParameterError("area must be a grid code of 6, 9, 12 or 15 digits, or a special grid code",
                                    parameter="area")
    inside = by.scope == "*" or by.role in KEY_ROLES or (not SPECIAL_CODE.match(by.scope)
                                                         and area.startswith(by.scope))
    if not inside:
        raise ForbiddenError(f"area {area} lies outside your scope {by.scope}", area=area, scope=by.scope)
    lo, hi = prefix_range(area)
    return {"area_lo": lo, "area_hi": hi}


def _names(conn: Connection, group: str, keys: list[str]) -> dict[str, str]:
    if not keys:
        return {}
    sql = NAMES["department" if group == "department" else "area"]
    return {r.key: r.name for r in conn.execute(text(sql), {"keys": keys})}


def _rates(counts: dict[str, int]) -> dict[str, float | None]:
    """Each rate of ``RATES`` (None when its denominator is 0)."""
    rates: dict[str, float | None] = {}
    for name, (parts, over) in RATES.items():
        denominator = sum(counts[c] for c in over)
        rates[name] = round(sum(counts[c] for c in parts) / denominator, 4) if denominator else None
    return rates


def _split(counts: dict[str, int]) -> dict[str, Any]:
    """The 721 split of the closed cases (counts and shares)."""
    solved = {where: counts[f"solved_{where}"] for where in ("grid", "department", "enforcement")}
    total = sum(solved.values())
    return {where: {"cases": n, "share": round(n / total, 4) if total else None} for where, n in solved.items()}


def _group(row: dict[str, Any], name: str | None, busiest: int) -> dict[str, Any]:
    counts = {k: int(row[k]) for k in COUNTS}
    value = score(counts, busiest)
    return {"key": row["key"], "name": name or _unit_name(row["key"]), **counts, **_rates(counts),
            "split": _split(counts), "score": round(value, 2) if value is not None else None,
            "grade": grade(value), "rank": None}


def _unit_name(key: str) -> str:
    """Owners that are roles, not departments, named as the console names them."""
    return {"GRID_CHIEF": "网格长"}.get(key, key)


def _rank(groups: list[dict[str, Any]]) -> None:
    """Sort ``groups`` best first and give each its rank (equal scores share one); unscored groups last."""
    groups.sort(key=lambda g: (g["score"] is None, -(g["score"] or 0), -(g["closure_rate"] or 0), g["key"]))
    previous, rank = None, 0
    for position, g in enumerate(groups, start=1):
        if g["score"] is None:
            continue
        if g["score"] != previous:
            rank, previous = position, g["score"]
        g["rank"] = rank


CSV_COLUMNS = ("rank", "key", "name", "grade", "score", *COUNTS, *RATES)


def kpi_csv(report: dict[str, Any]) -> str:
    """The groups of an evaluation as CSV, one row per group, ranked (UTF-8, a header row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for g in report["groups"]:
        writer.writerow([_cell(g[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula (a planner names grids) is quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
