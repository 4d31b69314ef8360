"""Open311 GeoReport v2 views of the domain: services from the category table, service requests from cases.

GeoReport's words map onto ours: a *service* is a leaf event category (``service_code`` is its code), a
*service request* is a case (``service_request_id`` is its id, the ``token`` its case number), and a
request is ``open`` until the case is closed or voided. Reporters' names and phone numbers never leave
through these views: GeoReport lists are public.

Who sees what (SPEC "Accounts and access"; issue 23, finding 1). No interface shows a case to anyone who
could not read it through another:

- an account (``by``: a partner's ``api_key``, or any account's token) sees exactly the cases REST shows it —
  the same rule, ``spatial.access.scope`` (``case_clause`` for lists, ``check_read`` for one case: 403
  outside its scope, as REST answers);
- the public (``by`` None) sees only requests that came in through the public channel (source ``public``:
  anonymous Open311 requests), and of them only GeoReport's fields with the location rounded to
  ``PUBLIC_DECIMALS`` decimal degrees (0.001°: about 110 m north–south and 95 m east–west in Suzhou), the
  address down to the community (no grid), the grid chief named by community, and no other case's id;
  every other case is, to the public, a request that does not exist (404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text

from spatial.access.principal import Principal
from spatial.access.scope import case_clause, check_read
from spatial.cases.assignment.owner import GRID_CHIEF
from spatial.cases.public import case_public
from spatial.cases.read import MAX_CASE_ID
from spatial.cases.rows import case_months, case_row, case_rows, last_events
from spatial.cases.schemas import LOCAL, CasePublic
from spatial.errors import InvalidParameterError, NotFoundError
from spatial.reference.cache import ReferenceCache
from spatial.reference.calendar import utc_moment
from spatial.store.models import Case

MAX_REQUESTS = 1000
MAX_WINDOW = timedelta(days=90)  # GeoReport: a date range "may not span more than 90 days"
CLOSED_STATES = ("closed", "voided")
STATUSES = ("open", "closed")
CASE_NO_LENGTH = 20
COMPONENT_ATTRIBUTE: dict[str, Any] = {
    "variable": True, "code": "component_code", "datatype": "string", "required": False,
    "datatype_description": "16-digit component code", "order": 1, "description": "部件编码",
}
STATE_NOTES = {
    "reported": "已受理，待核实立案", "registered": "已立案，待派遣", "dispatched": "已派遣，处置中",
    "handled": "已处置，待核查结案", "closed": "已结案", "voided": "已作废", "suspended": "已挂账，长期跟踪处置",
}
_OFFSET_AFTER_SPACE = re.compile(r" (\d{2}:?\d{2})$")
PUBLIC_SOURCES = ("public",)  # the public channel: anonymous Open311 requests
PUBLIC_DECIMALS = 3  # the public sees locations rounded to 0.001° (about 100 m)


@dataclass(frozen=True)
class RequestFilter:
    """GeoReport filters of the request list; ``ids`` overrides every other filter, as the spec says."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    closed: bool | None = None  # None: both open and closed requests
    limit: int = MAX_REQUESTS


def local_iso(value: datetime | None) -> str | None:
    """Return ``value`` as ISO 8601 in the city's time (UTC+08:00), as GeoReport clients show it."""
    return value.astimezone(LOCAL).isoformat(timespec="seconds") if value else None


def _category_rows(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(text("SELECT code, parent_code, name_zh, name_en, closure, flow FROM event_category"))
    return {row.code: row for row in rows}


def _ancestors(rows: dict[str, Any], code: str) -> list[str]:
    """Return the names of ``code``'s ancestors, top level first."""
    names: list[str] = []
    parent = rows[code].parent_code
    while parent in rows:
        names.insert(0, rows[parent].name_zh)
        parent = rows[parent].parent_code
    return names


def list_services(conn: Connection, ref: ReferenceCache) -> list[dict[str, Any]]:
    """Return the GeoReport service list: one service per leaf category, ordered by code."""
    rows = _category_rows(conn)
    services = []
    for code in sorted(ref.categories):
        row = rows.get(code)
        if row is None:
            continue  # the table changed since the cache was loaded; the next reload shows it
        ancestors = _ancestors(rows, code)
        services.append({
            "service_code": code, "service_name": row.name_zh, "description": row.closure or row.name_en,
            "metadata": row.flow == "component", "type": "realtime", "keywords": ", ".join(ancestors),
            "group": ancestors[0] if ancestors else row.name_zh,
        })
    return services


def service_definition(ref: ReferenceCache, code: str) -> dict[str, Any]:
    """Return the GeoReport service definition of ``code``: component categories take a component code."""
    category = ref.categories.get(code)
    if category is None:
        raise NotFoundError(f"no service with service_code {code!r}", service_code=code)
    attributes = [dict(COMPONENT_ATTRIBUTE)] if category.flow == "component" else []
    return {"service_code": code, "attributes": attributes}


def service_notice(owner: str, deadline: datetime | str | None, duplicate_of: int | None, *,
                   public: bool = False) -> str:
    """Return the notice a citizen sees: who handles the request and by when (or the case it joined; the
    public is not told that case's id)."""
    if duplicate_of is not None:
        joined = "原案件" if public else f"案件 {duplicate_of} "
        return f"该问题已有人上报，已并入{joined}一并处置"
    if deadline is None:
        return f"已受理，由{owner}负责处置"
    when = datetime.fromisoformat(deadline) if isinstance(deadline, str) else deadline
    return f"已受理，由{owner}负责处置，处置时限 {when.astimezone(LOCAL):%Y-%m-%d %H:%M}（北京时间）"


def created_reply(case: CasePublic, *, public: bool = False) -> dict[str, Any]:
    """Shape a just-created (or replayed) case as one element of the GeoReport POST reply (``public``: for
    an anonymous caller, who is not told the id of the case its request joined)."""
    return {
        "service_request_id": str(case["id"]), "token": case["case_no"],
        "service_notice": service_notice(case["owner"]["name"], case["deadline"], case["duplicate_of"],
                                         public=public),
        "account_id": None,
    }


def _status_note(row: dict[str, Any], public: bool) -> str:
    if row["duplicate_of"] is not None:
        return "重复上报，已关联原案件" if public else f"重复上报，已关联原案件 {row['duplicate_of']}"
    return STATE_NOTES.get(row["state"], row["state"])


def request_public(ref: ReferenceCache, row: dict[str, Any], updated: datetime | None, *,
                   public: bool = False) -> dict[str, Any]:
    """Shape a ``case_get`` row as a GeoReport service request (never with the reporter's name or phone);
    ``public``: as the public sees it (coarse location, address down to the community, no other case's id)."""
    case = case_public(ref, row)  # without the reporter
    category = ref.categories.get(row["category_code"])
    places = [case["town"]["name"], case["community"]["name"]] + ([] if public else [case["grid"]["name"]])
    agency = case["owner"]["name"]
    if public and row["owner_key"] == GRID_CHIEF:
        agency = f"{case['community']['name']} 网格长"
    lat, lon = row["lat"], row["lon"]
    if public:
        lat, lon = round(lat, PUBLIC_DECIMALS), round(lon, PUBLIC_DECIMALS)
    return {
        "service_request_id": str(row["id"]), "status": "closed" if row["state"] in CLOSED_STATES else "open",
        "status_notes": _status_note(row, public),
        "service_name": category.name if category else row["category_code"],
        "service_code": row["category_code"], "description": row["description"], "agency_responsible": agency,
        "service_notice": service_notice(agency, row["deadline"], row["duplicate_of"], public=public),
        "requested_datetime": local_iso(row["reported_at"]),
        "updated_datetime": local_iso(updated or row["reported_at"]),
        "expected_datetime": local_iso(row["deadline"]), "address": " ".join(places),
        "address_id": None, "zipcode": None, "lat": lat, "long": lon, "media_url": None,
    }


def _visible(row: dict[str, Any], by: Principal | None) -> bool:
    """Whether ``by`` (None: the public) may read the case of a ``case_get`` row (ForbiddenError for an
    account outside its scope, as REST answers; False for the public and a case of another channel)."""
    if by is None:
        return row["source"] in PUBLIC_SOURCES
    check_read(by, row)
    return True


def _requests_by_id(conn: Connection, ref: ReferenceCache, ids: list[int], by: Principal | None,
                    ) -> list[dict[str, Any]]:
    """Return the requests of ``ids`` as ``by`` sees them, in that order (ids that do not exist are left
    out; so are, for the public, cases of other channels; ids come checked against ``by``'s scope)."""
    if not ids:
        return []
    rows = {row["id"]: dict(row) for row in case_rows(conn, ids)}
    rows = {i: row for i, row in rows.items() if _visible(row, by)}
    updated = last_events(conn, rows)
    return [request_public(ref, rows[i], updated.get(i), public=by is None) for i in ids if i in rows]


def _who_clause(by: Principal | None):
    """A SQL condition holding for the cases ``by`` may read (None: the public's requests)."""
    if by is None:
        return Case.source.in_(PUBLIC_SOURCES)
    return case_clause(by, grid_code=Case.grid_code, special_codes=Case.special_grid_codes, owner_key=Case.owner_key,
                       assist_keys=Case.assist_keys)


def list_requests(conn: Connection, ref: ReferenceCache, f: RequestFilter, *,
                  by: Principal | None) -> list[dict[str, Any]]:
    """Return the requests matching ``f`` that ``by`` may read (None: the public), newest first, at most
    ``f.limit``."""
    query = (select(Case.id).where(_who_clause(by)).order_by(Case.reported_at.desc(), Case.id.desc())
             .limit(f.limit))
    if f.ids:  # only the ids' own months of "case" (their reported_at from case_key: spatial/cases/rows.py)
        months = case_months(conn, f.ids)
        if not months:
            return []
        query = query.where(Case.id.in_(list(months)), Case.reported_at.in_(sorted(set(months.values()))))
    else:
        if f.service_codes:
            query = query.where(Case.category_code.in_(f.service_codes))
        if f.start:
            query = query.where(Case.reported_at >= f.start)
        if f.end:
            query = query.where(Case.reported_at <= f.end)
        if f.closed is not None:
            query = query.where(Case.state.in_(CLOSED_STATES) if f.closed else Case.state.not_in(CLOSED_STATES))
    return _requests_by_id(conn, ref, list(conn.execute(query).scalars()), by)


def case_id_of(value: str) -> int | None:
    """Return the case id a ``service_request_id`` names, or None when it cannot name one."""
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18 or not 0 < int(value) <= MAX_CASE_ID:
        return None
    return int(value)


def get_request(conn: Connection, ref: ReferenceCache, request_id: str, *,
                by: Principal | None) -> list[dict[str, Any]]:
    """Return the one-element GeoReport list of request ``request_id`` as ``by`` sees it (None: the public);
    NotFoundError when unknown (or, for the public, not a public request), ForbiddenError outside ``by``'s
    scope."""
    case_id = case_id_of(request_id)
    found = _requests_by_id(conn, ref, [case_id], by) if case_id else []
    if not found:
        raise NotFoundError(f"no service request with service_request_id {request_id!r}",
                            service_request_id=request_id)
    return found


def request_token(conn: Connection, token: str, *, by: Principal | None) -> list[dict[str, Any]]:
    """Return ``[{"service_request_id", "token"}]`` for a token (a case number) that ``by`` may read (None:
    the public); NotFoundError when unknown (or not the public's), ForbiddenError outside ``by``'s scope."""
    row = None
    if len(token) <= CASE_NO_LENGTH:  # a longer token cannot be a case number (and would not fit the column)
        # the number's case from case_key (one index over every month), then the case in its own month
        found = conn.execute(text("SELECT id FROM case_key WHERE case_no = :t"), {"t": token}).scalar()
        row = case_row(conn, found) if found is not None else None
    if row is not None and not _visible(dict(row), by):
        row = None
    if row is None:
        raise NotFoundError(f"no service request with token {token!r}", token=token)
    return [{"service_request_id": str(row["id"]), "token": row["case_no"]}]


def parse_datetime(value: str, parameter: str) -> datetime:
    """Parse a W3C / ISO 8601 date-time (returned in UTC); a time without offset is the city's local time."""
    # A '+' left unescaped in a query string arrives as a space: "2024-05-01T08:00:00 08:00".
    cleaned = _OFFSET_AFTER_SPACE.sub(r"+\1", value.strip())
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidParameterError(
            f"{parameter} must be an ISO 8601 date-time such as 2024-05-01T08:00:00+08:00, not {value!r}",
            parameter=parameter) from None
    return utc_moment(parsed, parameter, LOCAL)  # the calendar's edges are a 400 (a window is added to it)


def _optional_datetime(value: str | None, parameter: str) -> datetime | None:
    return parse_datetime(value, parameter) if value and value.strip() else None


def _window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """Return the requested_datetime range: at most 90 days, the last 90 days by default."""
    if start and end and start > end:
        raise InvalidParameterError("start_date must not be after end_date", parameter="start_date")
    if start and end and end - start > MAX_WINDOW:
        raise InvalidParameterError("start_date and end_date may not span more than 90 days",
                                    parameter="start_date")
    if start:
        return start, end or start + MAX_WINDOW
    end = end or now
    return end - MAX_WINDOW, end


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _ids(value: str | None) -> tuple[int, ...]:
    parts = _split(value)
    if len(parts) > MAX_REQUESTS:
        raise InvalidParameterError(f"at most {MAX_REQUESTS} service_request_id values at once",
                                    parameter="service_request_id")
    ids = [case_id_of(part) for part in parts]
    bad = [part for part, found in zip(parts, ids, strict=True) if found is None]
    if bad:
        raise InvalidParameterError(f"service_request_id must be comma-separated ids, not {bad[0]!r}",
                                    parameter="service_request_id")
    return tuple(i for i in ids if i is not None)


def _closed(value: str | None) -> bool | None:
    statuses = {part.lower() for part in _split(value)}
    unknown = statuses - set(STATUSES)
    if unknown:
        raise InvalidParameterError(f"status must be open or closed (comma-separated), not {sorted(unknown)[0]!r}",
                                    parameter="status")
    return None if len(statuses) != 1 else statuses == {"closed"}


def _limit(value: str | None) -> int:
    if value is None or not value.strip():
        return MAX_REQUESTS
    if not (value.strip().isascii() and value.strip().isdigit()) or len(value) > 9 \
            or not 1 <= int(value) <= MAX_REQUESTS:  # int() refuses 4,300 digits and '²' (a 500)
        raise InvalidParameterError(f"limit must be a whole number from 1 to {MAX_REQUESTS}", parameter="limit")
    return int(value)


def parse_filter(params: dict[str, str | None], now: datetime) -> RequestFilter:
    """Turn GeoReport query parameters (strings, as sent) into a RequestFilter; refuse bad values precisely."""
    ids = _ids(params.get("service_request_id"))
    start, end = (_optional_datetime(params.get(name), name) for name in ("start_date", "end_date"))
    limit = _limit(params.get("limit"))
    if ids:
        return RequestFilter(ids=ids, limit=limit)
    start, end = _window(start, end, now)
    return RequestFilter(service_codes=tuple(_split(params.get("service_code"))), start=start, end=end,
                         closed=_closed(params.get("status")), limit=limit)
