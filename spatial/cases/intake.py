"""Case intake use cases: create (assign + first events, one transaction), read, list.

A report becomes a case that knows its grid, owner, component and deadline in one call. A report that
duplicates an open case is stored, linked to it (``duplicate_of``) and closed at once as void with a
``link`` event: it is never opened again. With an idempotency key, a retried request returns the case the
first attempt made and never creates a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from spatial.access.audit import Actor
from spatial.access.audit import params as audit_params
from spatial.access.principal import Principal
from spatial.access.scope import check_read, check_report, report_area
from spatial.cases.assignment.rules import (
    Assignment,
    AssignmentInput,
    assignment_of,
    category,
    finish,
    report_params,
)
from spatial.cases.read import get_case
from spatial.cases.schemas import CaseCreate
from spatial.errors import IdempotencyConflictError, InvalidParameterError
from spatial.reference.cache import CategoryInfo, ReferenceCache
from spatial.store.db import CONNECT_TIMEOUT_S
from spatial.store.sql import positional, run_prepared, statement


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


def _replay(conn: Connection, key: str, report: CaseCreate, by: Principal | None) -> int | None:
    row = conn.execute(text("SELECT id FROM \"case\" WHERE idempotency_key = :k"), {"k": key}).first()
    if row is None:
        return None
    existing = conn.execute(statement("case_get"), {"ids": [row[0]]}).mappings().one()
    if by is not None:
        check_read(by, dict(existing))  # a key never reveals another area's case
    if not _same_request(dict(existing), report):
        raise IdempotencyConflictError("this Idempotency-Key was already used for a different report",
                                       case_id=row[0])
    return int(row[0])


def create_case(conn: Connection, ref: ReferenceCache, report: CaseCreate, actor: str,
                idempotency_key: str | None = None, now: datetime | None = None,
                by: Principal | None = None, client: str | None = None) -> tuple[dict[str, Any], bool]:
    """Assign and store a report with its first events in one statement; return (case, created now).

    ``by`` is the reporting account (None: the public Open311 channel); a place outside its area is
    refused (ForbiddenError) and nothing is stored (spatial/access/scope.py). ``client``: the caller's address, for
    the audit row the statement writes with the case."""
    area = report_area(by)
    if idempotency_key is not None:
        replayed = _replay(conn, idempotency_key, report, by)
        if replayed is not None:
            return get_case(conn, ref, replayed, with_history=False), False
    cat = category(ref, report.category)
    at = now or datetime.now(UTC)
    lon, lat = report.lon, report.lat
    if lon is None or lat is None:
        located = _component_location(conn, report.component_code) if report.component_code else None
        if located is None:
            raise InvalidParameterError("location is required unless a known component_code is given",
                                        parameter="location")
        lon, lat = located
    params = _intake_params(ref, cat, report, lon, lat, at, actor, idempotency_key, area, Actor.of(by, client))
    if idempotency_key is None:
        row = run_prepared(conn, "intake", params)[0]
    else:
        try:
            with conn.begin_nested():  # a savepoint only where a lost race must be recovered from
                row = run_prepared(conn, "intake", params)[0]
        except IntegrityError:
            # A concurrent retry with the same key won the race: answer with its case.
            replayed = _replay(conn, idempotency_key, report, by)
            if replayed is None:
                raise
            return get_case(conn, ref, replayed, with_history=False), False
    if row["grid_code"] is not None:
        check_report(by, row["grid_code"], row["special_grid_codes"])
    result = finish(conn, ref, cat, row)  # raises why nothing was stored, if nothing was
    return _created(row, result, report, lon, lat, at), True


async def create_plain_case(pool: Any, ref: ReferenceCache, report: CaseCreate, actor: str,
                            by: Principal, client: str | None = None) -> dict[str, Any] | None:
    """``create_case`` for the common report — with a location, without an idempotency key — on an asyncpg
    pool (the lean intake path of api/fast_intake.py: no thread, no ORM, one round trip). The same prepared
    statement stores the case (only inside ``by``'s area); the reply is the same. Returns None when the
    statement refused the report (nothing stored): ``create_case`` then runs it again and words the refusal
    (it may need more queries).
    """
    area = report_area(by)
    cat = category(ref, report.category)
    lon, lat = report.lon, report.lat
    if lon is None or lat is None:
        return None
    at = datetime.now(UTC)
    sql, order = positional("intake")
    params = _intake_params(ref, cat, report, lon, lat, at, actor, None, area, Actor.of(by, client))
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
    row = dict(found)
    return _created(row, assignment_of(ref, cat, row), report, lon, lat, at)


def _intake_params(ref: ReferenceCache, cat: CategoryInfo, report: CaseCreate, lon: float, lat: float,
                   at: datetime, actor: str, idempotency_key: str | None, area: str | None,
                   audit: Actor) -> dict[str, Any]:
    """The parameters of sql/intake.sql for one report; ``area``: the reporter's scope (None: anywhere)."""
    return {
        **report_params(AssignmentInput(cat, lon, lat, at, report.component_code)),
        "source": report.source, "description": report.description, "actor": actor,
        "deadline": ref.calendar.deadline(at, cat.time_limit, cat.time_unit),
        "reporter_name": report.reporter_name, "reporter_phone": report.reporter_phone,
        "idempotency_key": idempotency_key, "scope_area": area, **audit_params(audit),
    }


def _created(row: dict[str, Any], result: Assignment, report: CaseCreate, lon: float, lat: float,
             at: datetime) -> dict[str, Any]:
    """Shape a just-stored case as the public contract, from what the statement returned (no re-read)."""
    component = None
    if result.component_code:
        component = {"code": result.component_code, "class_code": result.component_class,
                     "distance_m": result.component_distance_m}
    return {
        "id": row["case_id"], "case_no": row["case_no"], "state": "voided" if result.duplicate_of else "reported",
        "category": report.category, "source": report.source, "description": report.description,
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "grid": result.grid.as_dict(), "community": result.community.as_dict(), "town": result.town.as_dict(),
        "district": result.district.as_dict(), "special_grids": [s.as_dict() for s in result.special_grids],
        "owner": {"key": result.owner_key, "name": result.owner_name, "area": result.owner_area_code},
        "component": component, "deadline": result.deadline.isoformat(), "duplicate_of": result.duplicate_of,
        "reported_at": at.isoformat(), "closed_at": None,
    }
