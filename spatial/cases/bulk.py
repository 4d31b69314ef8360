"""Bulk intake: a hotline batch (GeoJSON FeatureCollection or CSV) → every row assigned or refused.

Rows read from the file (``spatial.cases.bulk_files``: each one a validated report, or refused with its reason)
are checked against the category table and the clock, assigned together by the same set-based statement as
single reports (``sql/assign.sql``; in-process indexes for big batches), then stored with COPY, all in the
caller's one transaction. Rules for the batch:

- a row that cannot be assigned is refused with its reason (outside coverage names the nearest grid);
- the valid rows are stored, all of them or — when the transaction fails — none; with
  ``all_or_nothing`` one refused row refuses the whole batch and nothing is stored;
- duplicates are linked as for single reports, also to an earlier row of the same batch;
- a row whose place lies outside the reporting account's area is refused with that reason
  (spatial/access/scope.py); an account that does not report has the whole batch refused (403);
- a row's source and report time follow the account (``check_row_source``, ``check_report_time``): only
  accounts that import history (admin, dispatcher) date a row in the past, at most 30 days back, or name
  any source; an inspector's rows are ``inspector``, a partner's ``hotline`` or ``public``; a row that
  disagrees is refused on its own (a row naming no source takes the account's: ``row_source``, given to
  the parser by the caller); no row is dated in the future (beyond a 5-minute clock skew);
- a stored batch writes one audit row (``case.bulk``: how many, the first and last case id); a batch of
  which nothing is stored writes one too (``case.bulk.refused``: how many rows, how many outside the area),
  as does a batch refused whole before its rows are read (``record_refusal``: wrong role, too large);
- rows outside the reporting account's area are refused before any row is assigned: the area's current
  grids are read once into an STRtree and a row that touches none of them cannot be assigned inside the
  area (``_outside_area``), so a batch of rows elsewhere costs one vectorised query, not their assignment.
  Rows that touch the area (on its edge, say) are assigned and then checked, as above.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text

from spatial.access import audit
from spatial.access.audit import Actor
from spatial.access.principal import Principal
from spatial.access.scope import CLOCK_SKEW, check_report_time, check_row_source, covers, report_area
from spatial.cases.assignment.batch import assign_batch
from spatial.cases.assignment.duplicates import Cases, within_batch
from spatial.cases.assignment.index import Usable, prefetch_usable
from spatial.cases.assignment.rules import Assignment, AssignmentInput, assign_rows, finish, trust_of
from spatial.cases.bulk_files import RowResult, too_many
from spatial.cases.schemas import LOCAL, BulkRow
from spatial.codes import SPECIAL_CODE, prefix_range
from spatial.errors import GridlinkError
from spatial.reference.cache import ReferenceCache
from spatial.store.copy import copy_lines, copy_text, copy_value, raw_cursor
from spatial.store.integrity import check_foreign_keys, restore_row_triggers, skip_row_triggers

CHUNK = 20_000
# From this many rows on, assignment uses in-process indexes (spatial/cases/assignment/index.py) instead of SQL.
FAST_MIN_ROWS = 2_000
MAX_ROWS = 200_000
# A body this big almost surely holds FAST_MIN_ROWS rows or more (a GeoJSON feature is ~150 bytes, a CSV
# line ~60): worth reading the components while it is parsed.
BIG_BODY_BYTES = 120_000
CASE_COLUMNS = (
    "id", "case_no", "category_code", "state", "source", "description", "location", "grid_code", "community_code",
    "town_code", "district_code", "special_grid_codes", "grid_version_id", "component_code", "component_distance_m",
    "owner_key", "owner_area_code", "deadline", "duplicate_of", "reporter_name", "reporter_phone", "reported_at",
    # the evaluation's summary (migration 0020) as the batch's own events make it: the report event is not read
    # by it; a duplicate's link event (voided at the report's time) is — written here with the row, so that
    # the events' COPY needs no summary UPDATE per duplicate (see _store)
    "kpi_state_at", "kpi_voided_at", "kpi_through",
)
EVENT_COLUMNS = ("case_id", "at", "kind", "state_after", "actor", "note", "data")


def start_reading(engine: Engine, body_bytes: int, by: Principal | None = None) -> Future[Usable] | None:
    """For a big body, start reading the components that the nearest-component rule needs (in a thread,
    on a connection of its own) so that the read overlaps parsing; None for a small body, and for an
    account with an area (``by``): its rows outside the area are refused first, so the components are read
    (in the batch's transaction) only if enough rows remain for the in-process path."""
    if body_bytes < BIG_BODY_BYTES or (by is not None and report_area(by) is not None):
        return None
    return prefetch_usable(engine)


def record_refusal(engine: Engine, by: Principal, client: str | None, refusal: GridlinkError) -> None:
    """Audit a batch refused whole before its rows were stored (``case.bulk.refused``), in a transaction of
    its own (the batch's, if any, was rolled back)."""
    with engine.begin() as conn:
        audit.record(conn, Actor.of(by, client), "case.bulk.refused", target=refusal.slug,
                     detail={"status": refusal.status, "reason": refusal.detail})


@dataclass
class BulkReport:
    """The batch's outcome: counts and one result per row."""

    received: int = 0
    created: int = 0
    duplicates: int = 0
    refused: int = 0
    stored: bool = True
    results: list[RowResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the rows' own attribute dicts: no deep copy of 100,000 results)."""
        return {"received": self.received, "created": self.created, "duplicates": self.duplicates,
                "refused": self.refused, "stored": self.stored, "results": [vars(r) for r in self.results]}

    def to_json(self) -> bytes:
        """Return the report as UTF-8 JSON."""
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def _check(row: BulkRow, ref: ReferenceCache, now: datetime, by: Principal | None) -> str | None:
    """Return why a validated row cannot be taken (what the model cannot know, and what the reporting account
    may not set: spatial/access/scope.py), or None."""
    if row.category not in ref.categories:
        return f"unknown event category {row.category!r}"
    try:
        check_row_source(by, row.source)
        if row.reported_at is not None:
            if row.reported_at > now + CLOCK_SKEW:
                return "reported_at lies in the future"
            check_report_time(by, row.reported_at, now)
    except GridlinkError as exc:
        return exc.detail
    return None


def _assign_all(conn: Connection, ref: ReferenceCache, rows: list[BulkRow], now: datetime,
                results: list[RowResult], usable: Future[Usable] | None,
                ) -> list[tuple[BulkRow, Assignment, datetime]]:
    """Assign valid rows (in-process indexes for big batches, the SQL statement otherwise); append
    refusals to ``results``; return the assigned rows."""
    reports = [AssignmentInput(ref.categories[r.category], r.location.lon, r.location.lat, r.reported_at or now,
                               r.component_code, r.source) for r in rows]
    if len(rows) >= FAST_MIN_ROWS:
        outcomes = assign_batch(conn, ref, reports, usable=usable)
    else:
        outcomes = []
        for start in range(0, len(rows), CHUNK):
            chunk = reports[start:start + CHUNK]
            for report, found in zip(chunk, assign_rows(conn, chunk), strict=True):
                try:
                    outcomes.append(finish(conn, ref, found, category=report.category))
                except GridlinkError as exc:
                    outcomes.append(exc)
    assigned = []
    for row, report, outcome in zip(rows, reports, outcomes, strict=True):
        if isinstance(outcome, GridlinkError):
            results.append(RowResult(row.row, "refused", reason=outcome.detail))
        else:
            assigned.append((row, outcome, report.at))
    return assigned


def _outside_area(conn: Connection, area: str, rows: list[BulkRow],
                  results: list[RowResult]) -> tuple[list[BulkRow], int]:
    """The rows that touch one of the area's current grids (its base grids, or the special grid itself);
    the others are refused without being assigned. Return the rows kept and how many were refused."""
    if not rows:
        return rows, 0
    if SPECIAL_CODE.match(area):
        where, params = "grid_code = :a", {"a": area}
    else:
        low, high = prefix_range(area)
        where, params = "kind = 'base' AND grid_code BETWEEN :low AND :high", {"low": low, "high": high}
    shapes = [bytes(g) for (g,) in conn.execute(text(
        f"SELECT ST_AsBinary(geom) FROM grid_geometry WHERE valid_to IS NULL AND {where}"), params)]
    points = shapely.points(np.array([[r.location.lon, r.location.lat] for r in rows]))
    touching = np.zeros(len(rows), dtype=bool)
    if shapes:
        touching[shapely.STRtree(shapely.from_wkb(shapes)).query(points, predicate="intersects")[0]] = True
    reason = f"this location lies outside your area {area}"
    results.extend(RowResult(row.row, "refused", reason=reason) for row, ok in zip(rows, touching, strict=True)
                   if not ok)
    return [row for row, ok in zip(rows, touching, strict=True) if ok], int((~touching).sum())


def _in_area(area: str | None, assigned: list[tuple[BulkRow, Assignment, datetime]],
             results: list[RowResult]) -> list[tuple[BulkRow, Assignment, datetime]]:
    """The assigned rows inside the reporter's area; the others are refused with the reason."""
    if area is None:
        return assigned
    kept = []
    for item in assigned:
        found = item[1]
        if covers(area, found.grid.code, [s.code for s in found.special_grids]):
            kept.append(item)
        else:
            results.append(RowResult(item[0].row, "refused",
                                     reason=f"this location (grid {found.grid.code}) lies outside your area {area}"))
    return kept


def intake(conn: Connection, ref: ReferenceCache, rows: list[BulkRow], *, parse_refused: list[RowResult],
           actor: str, all_or_nothing: bool = False, now: datetime | None = None,
           usable: Future[Usable] | None = None, by: Principal | None = None,
           client: str | None = None) -> BulkReport:
    """Assign and store a batch; return the report (see the module docstring for the rules). ``usable``:
    components prefetched by ``start_reading`` while the body was parsed; ``by``: the reporting account
    (None: the system itself, e.g. ``gridlink import cases``); ``client``: its address, for the audit."""
    area = report_area(by)
    now = now or datetime.now(UTC)
    if len(rows) + len(parse_refused) > MAX_ROWS:
        raise too_many(MAX_ROWS)
    results = list(parse_refused)
    valid = []
    for row in rows:
        reason = _check(row, ref, now, by)
        if reason:
            results.append(RowResult(row.row, "refused", reason=reason))
        else:
            valid.append(row)
    outside = 0
    if area is not None:
        valid, outside = _outside_area(conn, area, valid, results)
    assigned = _in_area(area, _assign_all(conn, ref, valid, now, results, usable), results)
    report = BulkReport(received=len(rows) + len(parse_refused))
    actor_of = Actor.of(by, client, channel=actor)
    if all_or_nothing and results:
        report.stored = False
    elif assigned:
        stored = _store(conn, ref, assigned, actor)
        results.extend(stored)
        audit.record(conn, actor_of, "case.bulk", target=f"{len(stored)} cases",
                     detail={"first_id": stored[0].case_id, "last_id": stored[-1].case_id, "received": report.received})
    if not assigned or not report.stored:
        audit.record(conn, actor_of, "case.bulk.refused", target=f"{report.received} rows",
                     detail={"received": report.received, "refused": len(results), "outside_area": outside,
                             "all_or_nothing": all_or_nothing})
    report.results = sorted(results, key=lambda r: r.row)
    report.created = sum(r.status == "created" for r in report.results)
    report.duplicates = sum(r.status == "duplicate" for r in report.results)
    report.refused = sum(r.status == "refused" for r in report.results)
    return report


def _store(conn: Connection, ref: ReferenceCache, assigned: list[tuple[BulkRow, Assignment, datetime]],
           actor: str) -> list[RowResult]:
    """Give ids, link in-batch duplicates, COPY cases and their first events; return the row results."""
    ids = [int(i) for (i,) in conn.execute(text(
        "SELECT nextval(pg_get_serial_sequence('\"case\"', 'id')) FROM generate_series(1, :n)"
    ), {"n": len(assigned)})]
    versions = {code: version for code, version in conn.execute(text(
        "SELECT grid_code, version_id FROM grid_geometry WHERE valid_to IS NULL AND kind = 'base'"))}
    rows = Cases.of(ids, [row.category for row, _, _ in assigned], [row.location.lon for row, _, _ in assigned],
                    [row.location.lat for row, _, _ in assigned], [at for _, _, at in assigned],
                    [found.component_code for _, found, _ in assigned],
                    [trust_of(row.source) for row, _, _ in assigned])
    links = within_batch(rows, [found.duplicate_of for _, found, _ in assigned])
    actor_text, events, results = copy_text(actor), [], []
    labels: dict[datetime, tuple[str, str]] = {}  # reported_at → (case_no day, ISO text): rows share times

    def lines() -> Iterator[str]:
        # Formatted while COPY streams them, so that this loop overlaps PostgreSQL's loading; each case's
        # first events and its row result are gathered on the way.
        for case_id, (row, found, at), duplicate in zip(ids, assigned, links, strict=True):
            label = labels.get(at)
            if label is None:
                label = labels[at] = (at.astimezone(LOCAL).strftime("%Y%m%d"), at.isoformat())
            case_no, stamp = label[0] + f"{case_id:08d}", label[1]
            events.append(f"{case_id}\t{stamp}\treport\treported\t{actor_text}\t\\N\t"
                          f'{{"grid": "{found.grid.code}", "owner": {_json_text(found.owner_key)}, "batch": true}}\n')
            if duplicate:
                events.append(f"{case_id}\t{stamp}\tlink\tvoided\tsystem\t重复上报，已关联原案件 {duplicate}\t"
                              f'{{"duplicate_of": {duplicate}}}\n')
            results.append(RowResult(row.row, "duplicate" if duplicate else "created", case_id, case_no,
                                     found.grid.code, found.owner_key, duplicate))
            yield _case_line(case_id, case_no, row, found, stamp, duplicate, versions)

    raw = raw_cursor(conn)
    fast = skip_row_triggers(conn)
    copy_lines(raw, "case", CASE_COLUMNS, lines())  # with their summary: the rollup's insert trigger counts it
    # The summary trigger (case_event_kpi) would update each duplicate's case again, and the rollup with it, one
    # statement per link event: 10,000 of them in a batch of 100,000 took minutes on a busy database (its
    # hot rollup rows). The rows above already hold what it would write (tests: the rebuilds change nothing).
    conn.execute(text("SET LOCAL gridlink.case_kpi = 'deferred'"))
    copy_lines(raw, "case_event", EVENT_COLUMNS, events)
    conn.execute(text("SET LOCAL gridlink.case_kpi = 'on'"))
    if fast:
        new_rows = {"case": "c.id >= :first", "case_event": "c.case_id >= :first"}
        check_foreign_keys(conn, ("case", "case_event"), scope=new_rows, params={"first": min(ids)})
        restore_row_triggers(conn)
    return results


@functools.lru_cache(maxsize=4096)
def _iso(moment: datetime) -> str:
    """ISO text of a time (deadlines repeat across a batch: rows share report times and categories)."""
    return moment.isoformat()


@functools.lru_cache(maxsize=1024)
def _json_text(value: str) -> str:
    """A string as a JSON value inside a COPY text field."""
    return copy_text(json.dumps(value))


def _case_line(case_id: int, case_no: str, row: BulkRow, found: Assignment, stamp: str, duplicate: int | None,
               versions: dict[str, int]) -> str:
    """One COPY line of ``case`` (columns as CASE_COLUMNS). Codes checked as digits or taken from the
    reference tables are written as they are; free text and absent values go through ``copy_value``."""
    specials = ",".join(s.code for s in found.special_grids)
    summary = stamp if duplicate else "\\N"  # kpi_state_at, kpi_voided_at, kpi_through: the link event's time
    return (
        f"{case_id}\t{case_no}\t{row.category}\t{'voided' if duplicate else 'reported'}\t{row.source}\t"
        f"{copy_value(row.description)}\tSRID=4326;POINT({row.location.lon!r} {row.location.lat!r})\t"
        f"{found.grid.code}\t{found.community.code}\t{found.town.code}\t{found.district.code}\t{{{specials}}}\t"
        f"{versions[found.grid.code]}\t{copy_value(found.component_code)}\t"
        f"{copy_value(found.component_distance_m)}\t"
        f"{copy_value(found.owner_key)}\t{copy_value(found.owner_area_code)}\t{_iso(found.deadline)}\t"
        f"{copy_value(duplicate)}\t{copy_value(row.reporter_name)}\t{copy_value(row.reporter_phone)}\t"
        f"{stamp}\t{summary}\t{summary}\t{summary}\n"
    )
