"""Cases read by id with partition pruning (issue 22): ``"case"`` is partitioned by the month of ``reported_at``
and an id alone names no month, so a read by id would plan and probe every month attached (19 on the full
demo's year). ``case_key`` — the plain side table of every case's global keys — holds each id's
``reported_at``: one primary-key probe there gives the months, and the read of ``"case"`` names them as
constants, which the planner prunes to (the plan holds only those months' partitions).

A case whose ``reported_at`` changed between the two reads (moved to another month), or whose month was
archived (its key stays, its row left), is read again without the bound: never a missing row for a moved case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, RowMapping, TextClause, text

from spatial.store.sql import statement

_MONTHS = text("SELECT id, reported_at FROM case_key WHERE id = ANY(CAST(:ids AS bigint[]))")


def case_months(conn: Connection, ids: Iterable[int]) -> dict[int, datetime]:
    """``reported_at`` of each id that names a case (from ``case_key``; unknown ids are left out)."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        return {}
    return {row[0]: row[1] for row in conn.execute(_MONTHS, {"ids": wanted})}


_TRAILS = text("SELECT min(trail_from), max(trail_to), bool_or(trail_from IS NULL OR trail_to IS NULL)"
              " FROM case_key WHERE id = ANY(CAST(:ids AS bigint[]))")
# A trail read's bound on ``at`` (``case_event``'s partition key), as constants the planner prunes with.
TRAIL = "at BETWEEN CAST(:trail_from AS timestamptz) AND CAST(:trail_to AS timestamptz)"


def trail_window(conn: Connection, ids: Iterable[int]) -> dict[str, Any]:
    """The parameters of :data:`TRAIL` for a read of the events of the cases ``ids``: the earliest
    ``trail_from`` and the latest ``trail_to`` of their keys (migration 0034: every event of a case lies
    between them), or every time when one is not known. A case without a key has no events."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    first, last, unknown = (conn.execute(_TRAILS, {"ids": wanted}).one() if wanted else (None, None, False))
    if unknown:
        return {"trail_from": "-infinity", "trail_to": "infinity"}
    if first is None:  # no such case: an empty window (nothing to read, no month planned)
        return {"trail_from": "infinity", "trail_to": "-infinity"}
    return {"trail_from": first, "trail_to": last}


def last_events(conn: Connection, ids: Iterable[int]) -> dict[int, datetime]:
    """The time of the last event of each case of ``ids`` that has one, read in the months of their trails."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    return dict(conn.execute(text(
        f"SELECT case_id, max(at) FROM case_event WHERE case_id = ANY(CAST(:ids AS bigint[])) AND {TRAIL}"
        " GROUP BY case_id"), {"ids": wanted, **trail_window(conn, wanted)}).tuples().all())


def case_rows(conn: Connection, ids: Iterable[int]) -> list[RowMapping]:
    """The ``sql/case_get.sql`` rows of the cases ``ids`` (in no particular order; unknown ids are left out),
    read from their own months only."""
    months = case_months(conn, ids)
    if not months:
        return []
    rows = list(conn.execute(statement("case_get"), {"ids": list(months), "months": sorted(set(months.values()))})
                .mappings())
    if len(rows) < len(months):  # moved to another month meanwhile, or archived: every month, for those only
        missing = set(months) - {row["id"] for row in rows}
        rows += conn.execute(statement("case_get"), {"ids": sorted(missing), "months": None}).mappings()
    return rows


def case_row(conn: Connection, case_id: int) -> RowMapping | None:
    """The ``sql/case_get.sql`` row of one case, or None."""
    rows = case_rows(conn, [case_id])
    return rows[0] if rows else None


def lock_case(conn: Connection, case_id: int) -> bool:
    """Hold the row of case ``case_id`` for the transaction (``FOR UPDATE``), read in its own month; whether
    there is one."""
    return one_case(conn, 'SELECT 1 FROM "case" WHERE id = :id __MONTH__ FOR UPDATE', case_id) is not None


def one_case(conn: Connection, sql: str, case_id: int, params: dict[str, Any] | None = None) -> RowMapping | None:
    """The first row of ``sql``, a read of case ``case_id`` (bound as ``:id``) whose ``__MONTH__`` marks where
    ``AND <alias>reported_at = :at`` goes (``__MONTH__`` or ``__MONTH:c__`` for the alias ``c``): run in the
    case's own month. When that finds nothing, the month is read again from ``case_key``: a case moved meanwhile
    is read in its new month; an unchanged month means there is no row to find (the row is locked and skipped,
    ``SKIP LOCKED``, or its month was archived) — not a reason to read every month. After a few moves in a row,
    every month is read."""
    values = {**(params or {}), "id": case_id}
    month = case_months(conn, [case_id]).get(case_id)
    for _ in range(_MOVES):
        if month is None:  # no such case (its key is written with it): nothing in any month
            return None
        row = conn.execute(_bounded(sql, True), {**values, "at": month}).mappings().first()
        if row is not None:
            return row
        now = case_months(conn, [case_id]).get(case_id)
        if now == month:
            return None
        month = now
    return conn.execute(_bounded(sql, False), values).mappings().first()


_MOVES = 3  # reads of a case moving to another month, each time, before one_case reads every month


@lru_cache(maxsize=64)
def _bounded(sql: str, bound: bool) -> TextClause:
    def mark(match: re.Match[str]) -> str:
        return f"AND {match.group(1) + '.' if match.group(1) else ''}reported_at = :at" if bound else ""
    return text(re.sub(r"__MONTH(?::(\w+))?__", mark, sql))
