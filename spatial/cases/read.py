"""The case list: filters pushed into SQL with bound values, keyset pagination (newest first)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from geoalchemy2 import functions as gf
from sqlalchemy import Connection, any_, literal, select

from spatial.access.principal import Principal
from spatial.access.scope import case_clause
from spatial.cases.intake import MAX_PAGE, CaseFilter, case_public
from spatial.codes import SPECIAL_CODE, prefix_range
from spatial.errors import InvalidParameterError
from spatial.geo.srid import WGS84
from spatial.reference.cache import ReferenceCache
from spatial.store.models import Case
from spatial.store.sql import statement

LOCAL = ZoneInfo("Asia/Shanghai")
AREA_COLUMNS = {15: Case.grid_code, 12: Case.community_code, 9: Case.town_code, 6: Case.district_code}


def _area_clause(area: str):
    if SPECIAL_CODE.match(area):
        return literal(area) == any_(Case.special_grid_codes)
    column = AREA_COLUMNS.get(len(area)) if area.isdigit() else None
    if column is None:
        raise InvalidParameterError("area must be a grid code of 6, 9, 12 or 15 digits, or a special grid code",
                                    parameter="area")
    if column is Case.grid_code:
        return column == area
    # Ancestor codes are prefixes of the 15-digit base grid code (SPEC "Grids"): the range lets the grid-code
    # index find the cases; the equality on the level's own column keeps the answer exact regardless.
    return (column == area) & Case.grid_code.between(*prefix_range(area))


def _utc(moment: datetime) -> datetime:
    """A filter time in UTC: a time without offset is Suzhou time; any offset Python accepts is normalised
    (PostgreSQL refuses offsets beyond ±15:59, which ISO 8601 allows — found by schemathesis)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)).astimezone(UTC)


def list_cases(conn: Connection, ref: ReferenceCache, f: CaseFilter, by: Principal) -> dict[str, Any]:
    """Return one page of the cases ``by`` may read, newest first, and the cursor of the next page (None at
    the end); reporters' personal data only for the roles that see it."""
    if not 1 <= f.limit <= MAX_PAGE:
        raise InvalidParameterError(f"limit must be between 1 and {MAX_PAGE}", parameter="limit")
    query = (select(Case.id).where(case_clause(by, Case.grid_code, Case.special_grid_codes, Case.owner_key))
             .order_by(Case.id.desc()).limit(f.limit + 1))
    if f.state:
        query = query.where(Case.state == f.state)
    if f.category:
        # A category of any level selects its whole subtree: leaf codes extend their parents' codes.
        query = query.where(Case.category_code.startswith(f.category, autoescape=True))
    if f.area:
        query = query.where(_area_clause(f.area))
    if f.bbox:
        query = query.where(Case.location.intersects(gf.ST_MakeEnvelope(*f.bbox, WGS84)))
    if f.since:
        query = query.where(Case.reported_at >= _utc(f.since))
    if f.until:
        query = query.where(Case.reported_at < _utc(f.until))
    if f.after_id:
        query = query.where(Case.id < f.after_id)
    ids = list(conn.execute(query).scalars())
    more = len(ids) > f.limit
    ids = ids[: f.limit]
    rows = conn.execute(statement("case_get"), {"ids": ids}).mappings().all() if ids else []
    personal = by.sees_personal_data()
    by_id = {row["id"]: case_public(ref, dict(row), personal) for row in rows}
    return {"cases": [by_id[i] for i in ids], "next": ids[-1] if more else None}
