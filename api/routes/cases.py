"""Case intake and reading: ``/api/v1/cases``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.auth import PrincipalDep, client_address
from api.deps import ConnectionDep, EngineDep, IdempotencyKey, ReadConnectionDep, ReferenceDep, require_json
from api.routes.reporting import ReportingRoute
from spatial.cases.intake import create_case
from spatial.cases.read import SOURCES, CaseFilter, get_case, list_cases
from spatial.cases.schemas import CaseCreate, CasePublic, CasesPublic, case_json, cases_json
from spatial.errors import InvalidParameterError
from spatial.geo.bbox import parse_bbox

router = APIRouter(prefix="/api/v1", tags=["cases"])
# Intake decides who is calling before the body is read (api/routes/reporting.py); included below.
reports = APIRouter(route_class=ReportingRoute)


@reports.post("/cases", status_code=201, dependencies=[Depends(require_json)], response_model=CasePublic,
             summary="Report an incident: assigned to grid, owner, component and deadline at once",
             responses={200: {"model": CasePublic, "description": "a retry with the same Idempotency-Key: the "
                                                                 "case its first attempt created"}})
def create(body: CaseCreate, engine: EngineDep, ref: ReferenceDep, principal: PrincipalDep, request: Request,
           idempotency_key: IdempotencyKey = None) -> Response:
    """Create a case; with an ``Idempotency-Key`` a retry returns the first attempt's case (200).

    Needs an account that reports (admin, dispatcher, inspector, grid_chief, partner), decided before the
    body is read (401 / 403 whatever the body); a place outside its area is refused with 403 and nothing is
    stored. A plain report (JSON, bearer token, no key) is answered before it gets here, by
    api/fast_intake.py; this route answers the rest: keyed requests, session cookies, reports that only
    name a component, and refusals."""
    client = client_address(request)
    with engine.begin() as conn:
        reply, created = create_case(conn, ref, body, actor=None, idempotency_key=idempotency_key,
                                     by=principal, client=client)
    headers = {"Location": f"/api/v1/cases/{reply['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    # The serializer the lean path uses too (byte for byte alike); the response model documents it.
    return Response(case_json(reply), status_code=201 if created else 200, headers=headers,
                    media_type="application/json")


@router.get("/cases/{case_id}", summary="One case with its event history", response_model=CasePublic)
def read(case_id: int, conn: ConnectionDep, ref: ReferenceDep, principal: PrincipalDep) -> Response:
    """Return the case and its history (403 outside the caller's scope; reporter only for admin/dispatcher),
    with its revision as ``ETag`` (what a workflow action sends back in ``If-Match``)."""
    case = get_case(conn, ref, case_id, by=principal)
    return Response(case_json(case), media_type="application/json",
                    headers={"ETag": f'"{case["workflow"]["revision"]}"'})


@router.get("/cases", summary="Cases, newest first, with filters and keyset pagination",
            response_model=CasesPublic)
def index(
    conn: ReadConnectionDep, ref: ReferenceDep, principal: PrincipalDep,
    state: str | None = None, category: str | None = Query(default=None, pattern=r"^E[0-9]{0,14}$"),
    area: str | None = Query(default=None, description="grid code of any level, or a special grid code"),
    bbox: str | None = None, since: datetime | None = None, until: datetime | None = None,
    cursor: int | None = Query(default=None, ge=1, description="the `next` value of the previous page"),
    limit: int = Query(default=100, ge=1, le=500),
    source: str | None = Query(default=None, description="how the case came in: " + ", ".join(SOURCES)),
    grade: str | None = Query(default=None, description="the category's grade: A, B or C"),
    overdue: bool = Query(default=False, description="only open cases past their overall deadline"),
) -> Response:
    """Return a page of the cases in the caller's scope and the cursor of the next page."""
    if since and until and since >= until:
        raise InvalidParameterError("since must be before until", parameter="since")
    filters = CaseFilter(state=state, category=category, area=area, bbox=parse_bbox(bbox), since=since,
                         until=until, after_id=cursor, limit=limit, source=source, grade=grade,
                         overdue=overdue)
    return Response(cases_json(list_cases(conn, ref, filters, by=principal)), media_type="application/json")


router.include_router(reports)
