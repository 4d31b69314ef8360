"""Evaluation (考核评价): ``GET /api/v1/kpi`` — rates, scores, grades, the 721 split and rankings, JSON or CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import PrincipalDep
from api.deps import ReadConnectionDep
from spatial.cases.kpi import GROUPS, KpiQuery, evaluate, kpi_csv
from spatial.cases.schemas import LOCAL
from spatial.reference.calendar import utc_moment

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


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
