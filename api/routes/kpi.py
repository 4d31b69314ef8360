"""Evaluation (考核评价): ``GET /api/v1/kpi`` — rates, scores, grades, the 721 split and rankings, JSON or CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import PrincipalDep
from api.deps import ReadConnectionDep
from spatial.cases.kpi import GROUPS, KpiQuery, evaluate, kpi_csv
from spatial.cases.kpi_report import case_heat, parse_month, town_report
from spatial.cases.schemas import LOCAL
from spatial.reference.calendar import utc_moment
from web.report import render_town_report, report_csp

router = APIRouter(prefix="/api/v1", tags=["evaluation"])
DEFAULT_PERIOD = timedelta(days=30)


def wants_csv(request: Request, f: str | None) -> bool:
    """``?f=`` decides; otherwise an Accept header that names text/csv before (or without) JSON."""
    if f is not None:
        return f == "csv"
    accept = request.headers.get("accept", "").lower()
    if "text/csv" not in accept:
        return False
    return "application/json" not in accept or accept.index("text/csv") < accept.index("application/json")


@router.get("/kpi", summary="Evaluation by grid, community, town, district or department over a period")
def kpi(
    request: Request, conn: ReadConnectionDep, principal: PrincipalDep,
    group: str = Query(description=f"one of {', '.join(GROUPS)}", max_length=16),
    start: Annotated[datetime | None, Query(alias="from", description="period start (a date or time; no offset: "
                                           "Suzhou time); default 30 days before `to`")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="period end, exclusive; default now")] = None,
    area: str | None = Query(default=None, max_length=16, description="grid code of any level or special grid"),
    f: Literal["json", "csv"] | None = Query(default=None, description="format; else the Accept header"),
) -> Response:
    """Evaluate the cases the caller may read that were reported in ``[from, to)`` (spatial/cases/kpi.py)."""
    to = utc_moment(end, "to", LOCAL) if end else datetime.now(UTC)
    since = utc_moment(start, "from", LOCAL) if start else to - DEFAULT_PERIOD
    report = evaluate(conn, KpiQuery(group=group, start=since, end=to, area=area), by=principal)
    if wants_csv(request, f):
        name = f"kpi-{group}-{since:%Y%m%d}-{to:%Y%m%d}.csv"
        return Response(kpi_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return Response(json.dumps(report, ensure_ascii=False, default=_iso), media_type="application/json")


@router.get("/kpi/heat", summary="Where the cases of a period were reported: counts per cell, GeoJSON")
def kpi_heat(
    conn: ReadConnectionDep, principal: PrincipalDep,
    group: str = Query(default="town", max_length=16, description="the level the dashboard shows (scope rule)"),
    start: Annotated[datetime | None, Query(alias="from", description="period start, as for /kpi")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="period end, exclusive, as for /kpi")] = None,
    area: str | None = Query(default=None, max_length=16, description="grid code of any level or special grid"),
) -> Response:
    """The cases ``GET /kpi`` counts for the same period, scope and area, as points per cell with their count
    ``n`` (the dashboard's heat map; spatial/cases/kpi_report.py)."""
    to = utc_moment(end, "to", LOCAL) if end else datetime.now(UTC)
    since = utc_moment(start, "from", LOCAL) if start else to - DEFAULT_PERIOD
    heat = case_heat(conn, KpiQuery(group=group, start=since, end=to, area=area), by=principal)
    return Response(json.dumps(heat), media_type="application/geo+json")


@router.get("/kpi/report", summary="A town's printable monthly report: map of grids by grade and KPI tables (HTML)",
            response_class=HTMLResponse)
def kpi_report(
    conn: ReadConnectionDep, principal: PrincipalDep,
    town: str = Query(description="the town's 9-digit code", max_length=9),
    month: str = Query(description="the month, YYYY-MM (Suzhou time)", max_length=7),
) -> HTMLResponse:
    """The monthly report of ``town`` as the caller may read it (a town outside the scope: 403), rendered with
    folium on the pinned Leaflet (web/report.py); print it for the PDF (A4 layout)."""
    page = render_town_report(town_report(conn, town, parse_month(month), by=principal))
    return HTMLResponse(page, headers={"Content-Security-Policy": report_csp(page)})


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
