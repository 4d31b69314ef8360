"""Case intake: a report becomes a stored case (assign + store + first events, one statement).

A report becomes a case that knows its grid, owner, component and deadline in one call. A report that
duplicates an open case is stored, linked to it (``duplicate_of``) and closed at once as void with a
``link`` event: it is never opened again. With an idempotency key, a retried request returns the case the
first attempt made and never creates a second one.

Idempotency keys belong to the caller (issue 23, finding 5): the stored key is a digest of the caller's
namespace and the key it sent (``stored_key``), so two callers' keys never meet — another account's key
neither answers with nor refuses for the first account's case. An account's namespace is its id; anonymous
callers (the public Open311 channel) cannot be told apart, so theirs is their address together with the
report itself: the same anonymous report retried under the same key is answered with its first case, any
other report is a new one (never a 409 that would reveal someone else's request).

The reply is shaped from what the statement returned, without reading the case back
(``spatial.cases.public.case_public``, as every case reply is).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, cast

from psycopg2 import IntegrityError as DriverIntegrityError
from pydantic import TypeAdapter
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from spatial.access.audit import Actor
from spatial.access.audit import params as audit_params
from spatial.access.principal import Principal
from spatial.access.scope import check_read, check_report, own_source, report_area
from spatial.cases.assignment.rules import (
    AssignmentInput,
    category,
    refuse_unassigned,
    report_params,
    round_distance,
)
from spatial.cases.public import case_public
from spatial.cases.read import get_case
from spatial.cases.rows import case_row
from spatial.cases.schemas import CaseCreate, CasePublic, Source
from spatial.errors import IdempotencyConflictError, InvalidParameterError
from spatial.reference.cache import ReferenceCache
from spatial.store.db import CONNECT_TIMEOUT_S
from spatial.store.sql import positional, run_prepared

_REPORT = TypeAdapter(CaseCreate)


def _component_location(conn: Connection, code: str) -> tuple[float, float] | None:
    row = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM component, ST_PointOnSurface(geom) AS p"
                            " WHERE code = :c"), {"c": code}).first()
    return (float(row[0]), float(row[1])) if row else None


def _same_request(existing: dict[str, Any], report: CaseCreate) -> bool:
    same_place = report.lon is None or (abs(existing["lon"] - report.lon) < 1e-9
                                        and abs(existing["lat"] - report.lat) < 1e-9)
    return (existing["category_code"] == report.category and existing["source"] == report.source
            and existing["description"] == report.description and same_place
            and (report.component_code is None or existing["component_code"] == report.component_code))


def stored_key(key: str, report: CaseCreate, by: Principal | None, client: str | None) -> str:
    """The idempotency key as stored: a SHA-256 digest (64 hex digits) of the caller's namespace and its key."""
    if by is not None:
        namespace = f"account:{by.account_id}"
    else:
        namespace = f"public:{client or ''}:{_REPORT.dump_json(report).decode()}"
    return hashlib.sha256(f"{namespace}\n{key}".encode()).hexdigest()


def _replay(conn: Connection, key: str, report: CaseCreate, by: Principal | None) -> int | None:
    # case_key holds the key once over every month of "case" (migration 0031): one probe, not one per month
    row = conn.execute(text("SELECT id FROM case_key WHERE idempotency_key = :k"), {"k": key}).first()
    if row is None:
        return None
    existing = case_row(conn, row[0])
    if existing is None:  # its month was archived (the key stays taken): no replay to answer with
        raise IdempotencyConflictError("this Idempotency-Key belongs to an archived case", case_id=row[0])
    if by is not None:
        check_read(by, dict(existing))  # nor its own key, once the account's scope no longer covers the case
    if not _same_request(dict(existing), report):
        raise IdempotencyConflictError("this Idempotency-Key was already used for a different report",
                                       case_id=row[0])
    return int(row[0])


def create_case(conn: Connection, ref: ReferenceCache, report: CaseCreate, *, actor: str | None,
                idempotency_key: str | None = None, now: datetime | None = None,
                by: Principal | None = None, client: str | None = None) -> tuple[CasePublic, bool]:
    """Assign and store a report with its first events in one statement; return (case, created now).

    Args:
        conn: a connection in the caller's transaction.
        ref: the reference cache.
        report: the report.
        actor: who reports, as the case's first event names it (e.g. ``api:inspector``).
        idempotency_key: with a key, a retry by the same caller returns the first attempt's case (created
            now: False); keys are scoped to the caller (``stored_key``).
        now: the report time (default: now).
        by: the reporting account (None: the public Open311 channel); a place outside its area is refused
            (ForbiddenError) and nothing is stored (spatial/access/scope.py).
        client: the caller's address, for the audit row the statement writes with the case.
    """
    area = report_area(by)
    # The source follows the account (an inspector reports as an inspector: issue 23, finding 4); settled here,
    # on the report itself, before anything reads it.
    source = own_source(by, report.source)
    report.source = cast(Source, source)
    actor = actor or f"api:{source}"
    if idempotency_key is not None:
        idempotency_key = stored_key(idempotency_key, report, by, client)
        replayed = _replay(conn, idempotency_key, report, by)
        if replayed is not None:
            return get_case(conn, ref, replayed, with_history=False), False
    lon, lat = report.lon, report.lat
    if lon is None or lat is None:
        located = _component_location(conn, report.component_code) if report.component_code else None
        if located is None:
            raise InvalidParameterError("location is required unless a known component_code is given",
                                        parameter="location")
        lon, lat = located
    work = AssignmentInput(category(ref, report.category), lon, lat, now or datetime.now(UTC), report.component_code,
                           source)
    deadline = _deadline(ref, work)
    params = _intake_params(report, work, deadline, actor, idempotency_key, area, Actor.of(by, client))
    if idempotency_key is None:
        row = run_prepared(conn, "intake", params)[0]
    else:
        try:
            with conn.begin_nested():  # a savepoint only where a lost race must be recovered from
                row = run_prepared(conn, "intake", params)[0]
        except (IntegrityError, DriverIntegrityError):
            # run_prepared executes on the driver's cursor: its refusal arrives unwrapped (psycopg2's own class)
            # A concurrent retry with the same key won the race: answer with its case.
            replayed = _replay(conn, idempotency_key, report, by)
            if replayed is None:
                raise
            return get_case(conn, ref, replayed, with_history=False), False
    if row["grid_code"] is not None:
        check_report(by, row["grid_code"], row["special_grid_codes"])
    refuse_unassigned(conn, row)  # raises why nothing was stored, if nothing was
    return case_public(ref, _stored(row, report, work, deadline)), True


async def create_plain_case(pool: Any, ref: ReferenceCache, report: CaseCreate, *, actor: str | None, by: Principal,
                            client: str | None = None) -> CasePublic | None:
    """``create_case`` for the common report — with a location, without an idempotency key — on an asyncpg
    pool (the lean intake path of api/fast_intake.py: no thread, no ORM, one round trip). The same prepared
    statement stores the case (only inside ``by``'s area); the reply is the same. Returns None when the
    statement refused the report (nothing stored): ``create_case`` then runs it again and words the refusal
    (it may need more queries).
    """
    area = report_area(by)
    source = own_source(by, report.source)
    report.source = cast(Source, source)
    actor = actor or f"api:{source}"
    cat = category(ref, report.category)
    lon, lat = report.lon, report.lat
    if lon is None or lat is None:
        return None
    work = AssignmentInput(cat, lon, lat, datetime.now(UTC), report.component_code, source)
    deadline = _deadline(ref, work)
    sql, order = positional("intake")
    params = _intake_params(report, work, deadline, actor, None, area, Actor.of(by, client))
    async with pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
        try:
            found = await conn.fetchrow(sql, *[params[key] for key in order])
        except BaseException:
            # A connection cut mid-statement (database restart) can be left in a state asyncpg cannot reuse
            # ("another operation is in progress"): never hand it back to the pool.
            conn.terminate()
            raise
    if found is None or found["case_id"] is None:
        return None
    return case_public(ref, _stored(found, report, work, deadline))


def _deadline(ref: ReferenceCache, work: AssignmentInput) -> datetime:
    """The case's deadline: its category's time limit on the working calendar (SPEC "Assignment rules" 5)."""
    return ref.calendar.deadline(work.at, work.category.time_limit, work.category.time_unit)


def _intake_params(report: CaseCreate, work: AssignmentInput, deadline: datetime, actor: str,
                   idempotency_key: str | None, area: str | None, audit: Actor) -> dict[str, Any]:
    """The parameters of sql/intake.sql for one report; ``area``: the reporter's scope (None: anywhere)."""
    return {
        **report_params(work), "source": report.source, "description": report.description, "actor": actor,
        "deadline": deadline, "reporter_name": report.reporter_name, "reporter_phone": report.reporter_phone,
        "idempotency_key": idempotency_key, "scope_area": area, **audit_params(audit),
    }


def _stored(row: Any, report: CaseCreate, work: AssignmentInput, deadline: datetime) -> dict[str, Any]:
    """The case the intake statement stored, as ``sql/case_get.sql`` would read it back: the statement's row
    (assignment, id, number) with the report's own fields (the component's distance rounded as assignment
    reports it)."""
    return {
        "id": row["case_id"], "case_no": row["case_no"], "state": "voided" if row["duplicate_of"] else "reported",
        "category_code": report.category, "source": report.source, "description": report.description,
        "lon": work.lon, "lat": work.lat, "grid_code": row["grid_code"],
        "special_grid_codes": row["special_grid_codes"], "component_code": row["component_code"],
        "component_class": row["component_class"],
        "component_distance_m": round_distance(row["component_distance_m"]),
        "owner_key": row["owner_key"], "owner_area_code": row["owner_area_code"], "deadline": deadline,
        "duplicate_of": row["duplicate_of"], "reported_at": work.at, "closed_at": None,
    }
