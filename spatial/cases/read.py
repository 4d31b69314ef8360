"""Reading cases: one case with its history, and the case list (filters pushed into SQL with bound values,
keyset pagination, newest first), always within the reader's scope (spatial/access/scope.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from geoalchemy2 import functions as gf
from sqlalchemy import Connection, any_, func, literal, select, text

from spatial.access.principal import Principal
from spatial.access.scope import acts_for_unit, case_clause, check_read
from spatial.cases import joint
from spatial.cases.public import case_public
from spatial.cases.rows import TRAIL, case_row, case_rows, trail_window
from spatial.cases.schemas import LOCAL, CaseEvent, CasePublic, CasesPublic, TimeLeftPublic, WorkflowPublic
from spatial.cases.workflow import OPEN_STATES, Event, allowed, replay
from spatial.codes import SPECIAL_CODE, prefix_range
from spatial.errors import InvalidParameterError, NotFoundError
from spatial.geo.srid import WGS84
from spatial.reference.cache import ReferenceCache
from spatial.reference.calendar import utc_moment
from spatial.store.models import Case
from spatial.store.models.cases import OPEN, SOURCES
from spatial.store.models.reference import GRADES
from spatial.store.partitions import open_between, open_span

MAX_PAGE = 500
MAX_CASE_ID = 2**63 - 1  # case ids are bigint
AREA_COLUMNS = {15: Case.grid_code, 12: Case.community_code, 9: Case.town_code, 6: Case.district_code}


@dataclass
class CaseFilter:
    """Filters of the case list; ``area`` is a grid code of any level or a special grid code."""

    state: str | None = None
    category: str | None = None
    area: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None
    limit: int = 100
    source: str | None = None  # one of SOURCES
    grade: str | None = None  # A, B or C: the leaf categories of that grade
    overdue: bool = False  # open cases past their overall deadline (at the time of the query)


def get_case(conn: Connection, ref: ReferenceCache, case_id: int, *, with_history: bool = True,
             with_reporter: bool = False, by: Principal | None = None) -> CasePublic:
    """Return one case as the public contract, with its event history; NotFoundError when absent.

    With ``by`` (the reading account), a case outside its scope is refused (ForbiddenError) and reporters'
    personal data is shown only to the roles that see it; None is the system's own reads."""
    row = None
    if 0 < case_id <= MAX_CASE_ID:  # a bigger number is no case id (and no bigint: PostgreSQL would refuse it)
        row = case_row(conn, case_id)
    if row is None:
        raise NotFoundError(f"no case with id {case_id}", case_id=case_id)
    if by is not None:
        check_read(by, dict(row))
        with_reporter = by.sees_personal_data()
    history: list[CaseEvent] | None = None
    if with_history:
        events = conn.execute(text(
            f"SELECT id, at, kind, state_after, actor, role, note, data FROM case_event WHERE case_id = :id"
            f" AND {TRAIL} ORDER BY at, id"), {"id": case_id, **trail_window(conn, [case_id])}).mappings()
        history = [{"at": e["at"], "kind": e["kind"], "state": e["state_after"], "actor": e["actor"],
                    "note": e["note"], "data": e["data"], "id": e["id"], "role": e["role"]} for e in events]
    case = case_public(ref, dict(row), with_reporter=with_reporter, history=history)
    if by is not None and history is not None:
        case["workflow"] = _workflow(dict(row), history, by)
        if row["state"] in OPEN_STATES:
            case["workflow"]["time_left"] = time_left(ref, dict(row), datetime.now(UTC))
        if row["assist_keys"]:
            case["workflow"]["assist"] = joint.units(conn, case_id, row["reported_at"])
    return case


def _workflow(row: dict, history: list[CaseEvent], by: Principal) -> WorkflowPublic:
    """Where the case stands in the workflow, and what ``by`` may do with it now."""
    trail = replay(Event(e["kind"], e["state"], e["actor"], e.get("role"), e["data"], e.get("id")) for e in history)
    unit = acts_for_unit(by, row["owner_key"], row["owner_area_code"], row["special_grid_codes"])
    assisting = joint.assisting(by, trail, row["special_grid_codes"])
    return {"revision": row["revision"], "step_deadline": row["step_deadline"],
            "pending_action": row["pending_action"], "allowed_actions": allowed(trail, by.role, unit, assisting)}


def time_left(ref: ReferenceCache, row: dict, now: datetime) -> TimeLeftPublic:
    """What is left of the case's overall and step deadlines at ``now``, in whole seconds, counted on its
    category's clock: working time on the working calendar, or clock time for ``clock_hours`` limits."""
    category = ref.categories.get(row["category_code"])
    working = category is None or category.time_unit != "clock_hours"

    def left(deadline: datetime | None) -> int | None:
        if deadline is None:
            return None
        seconds = (ref.calendar.working_seconds_between(now, deadline) if working
                   else (deadline - now).total_seconds())
        return int(seconds)

    return {"counted": "working" if working else "clock", "deadline_s": left(row["deadline"]),
            "step_deadline_s": left(row["step_deadline"])}


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


def _utc(moment: datetime, parameter: str) -> datetime:
    """A filter time in UTC: a time without offset is Suzhou time; any offset Python accepts is normalised
    (PostgreSQL refuses offsets beyond ±15:59, which ISO 8601 allows — found by schemathesis); a time at the
    calendar's edges (year 1 with a positive offset) is a 400, not an overflow."""
    return utc_moment(moment, parameter, LOCAL)


def _kind_clauses(ref: ReferenceCache, f: CaseFilter) -> list:
    """The clauses of the source, grade and overdue filters."""
    clauses: list = []
    if f.source:
        if f.source not in SOURCES:
            raise InvalidParameterError(f"source must be one of {', '.join(SOURCES)}", parameter="source")
        clauses.append(Case.source == f.source)
    if f.grade:
        if f.grade not in GRADES:
            raise InvalidParameterError(f"grade must be one of {', '.join(GRADES)}", parameter="grade")
        clauses.append(Case.category_code.in_(
            sorted(code for code, info in ref.categories.items() if info.grade == f.grade)))
    if f.overdue:
        clauses.extend((text(OPEN), Case.deadline < func.now()))
    return clauses


def _filter_clauses(ref: ReferenceCache, f: CaseFilter) -> list:
    """The WHERE clauses of the case list's filters (bound values; InvalidParameterError for a bad one)."""
    clauses: list = []
    if f.state:
        clauses.append(Case.state == f.state)
    if f.category:
        # A category of any level selects its whole subtree: leaf codes extend their parents' codes.
        clauses.append(Case.category_code.startswith(f.category, autoescape=True))
    if f.area:
        clauses.append(_area_clause(f.area))
    if f.bbox:
        clauses.append(Case.location.intersects(gf.ST_MakeEnvelope(*f.bbox, WGS84)))
    if f.since:
        clauses.append(Case.reported_at >= _utc(f.since, "since"))
    if f.until:
        clauses.append(Case.reported_at < _utc(f.until, "until"))
    clauses.extend(_kind_clauses(ref, f))
    if f.after_id:
        clauses.append(Case.id < f.after_id)
    return clauses


def list_cases(conn: Connection, ref: ReferenceCache, f: CaseFilter, *, by: Principal) -> CasesPublic:
    """Return one page of the cases ``by`` may read, newest first, and the cursor of the next page (None at
    the end); reporters' personal data only for the roles that see it."""
    if not 1 <= f.limit <= MAX_PAGE:
        raise InvalidParameterError(f"limit must be between 1 and {MAX_PAGE}", parameter="limit")
    query = (select(Case.id).where(case_clause(by, grid_code=Case.grid_code, special_codes=Case.special_grid_codes,
                                        owner_key=Case.owner_key, assist_keys=Case.assist_keys))
             .order_by(Case.id.desc()).limit(f.limit + 1))
    query = query.where(*_filter_clauses(ref, f))
    if f.overdue or f.state in OPEN_STATES:  # open cases only: in the months that hold them
        query = query.where(open_between(Case.reported_at, open_span(conn)))
    ids = list(conn.execute(query).scalars())
    more = len(ids) > f.limit
    ids = ids[: f.limit]
    rows = case_rows(conn, ids)
    personal = by.sees_personal_data()
    by_id = {row["id"]: case_public(ref, dict(row), with_reporter=personal) for row in rows}
    return {"cases": [by_id[i] for i in ids], "next": ids[-1] if more else None}
