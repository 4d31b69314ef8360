"""The map's questions (issue 20): ``GET /api/v1/here`` (what is at a point), ``POST /api/v1/cases/preview``
(what a report there would be assigned, nothing stored) and ``GET /api/v1/me/cases`` (the caller's own recent
reports). Every one needs an account (401); the preview is admitted like a report (roles that report, before the
body is read: 403) and refused outside the caller's area (403) as intake would."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from api.auth import AuthenticatedRoute, PrincipalDep
from api.deps import ConnectionDep, ReferenceDep, require_json
from api.routes.reporting import ReportingRoute
from spatial.cases.here import DEFAULT_RADIUS_M, MAX_MINE, MAX_RADIUS_M, my_cases, preview, what_is_here
from spatial.cases.schemas import CaseCreate
from spatial.errors import InvalidParameterError
from spatial.geo.coords import coordinate_problem

router = APIRouter(prefix="/api/v1", tags=["map"], route_class=AuthenticatedRoute)
reports = APIRouter(route_class=ReportingRoute)


def _json(value: Any) -> Response:
    return Response(json.dumps(value, ensure_ascii=False, default=_iso), media_type="application/json")


def _iso(value: Any) -> str:
    return value.isoformat()


@router.get("/here", summary="What is at a point: grids, their teams, special grids, nearby components")
def here(conn: ConnectionDep, ref: ReferenceDep, principal: PrincipalDep, lon: float = Query(allow_inf_nan=False),
         lat: float = Query(allow_inf_nan=False),
         radius: float = Query(default=DEFAULT_RADIUS_M, gt=0, le=MAX_RADIUS_M, allow_inf_nan=False,
                               description="metres around the point for components")) -> Response:
    """``/locate``'s answer plus ``teams`` (grid code → members; ``phone`` only when ``phones_shown``) and
    ``components`` within ``radius`` (nearest first, at most 20)."""
    problem = coordinate_problem(lon, lat)
    if problem:
        raise InvalidParameterError(problem, parameter="lon,lat")
    return _json(what_is_here(conn, ref, lon, lat, by=principal, radius_m=radius))


@reports.post("/cases/preview", dependencies=[Depends(require_json)],
              summary="The assignment a report would get (grid, owner, component, deadline, duplicate); nothing stored")
def assignment_preview(body: CaseCreate, conn: ConnectionDep, ref: ReferenceDep, principal: PrincipalDep) -> Response:
    """The body of ``POST /api/v1/cases`` (with a location) → what intake would decide now."""
    return _json(preview(conn, ref, body, by=principal))


@router.get("/me/cases", summary="The caller's own recent reports and their state")
def mine(conn: ConnectionDep, ref: ReferenceDep, principal: PrincipalDep,
         limit: int = Query(default=20, ge=1, le=MAX_MINE)) -> Response:
    """The cases the caller reported, newest first, that it may still read; each with ``updated_at`` and
    ``photos`` (how many)."""
    return _json({"cases": my_cases(conn, ref, by=principal, limit=limit)})


router.include_router(reports)
