"""The inbox over HTTP: ``GET /api/v1/inbox`` — what the caller must act on now (spatial/cases/inbox.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import PrincipalDep
from api.deps import ConnectionDep, ReferenceDep
from spatial.cases.inbox import MAX_PAGE, InboxQuery, inbox

router = APIRouter(prefix="/api/v1", tags=["workflow"])


@router.get("/inbox", summary="The cases the caller's role and scope must act on now, oldest due first")
def get_inbox(
    conn: ConnectionDep, ref: ReferenceDep, principal: PrincipalDep,
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    after: str | None = Query(default=None, max_length=40, description="the `next` of the previous page"),
    state: str | None = Query(default=None, max_length=12, description="only cases in this open state"),
) -> Response:
    """One page of the caller's inbox (each case with its due time, its duties and allowed actions), the
    cursor of the next page, and the whole inbox counted by state."""
    page = inbox(conn, ref, InboxQuery(limit=limit, after=after, state=state), by=principal)
    return Response(json.dumps(page, ensure_ascii=False, default=_iso), media_type="application/json")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
