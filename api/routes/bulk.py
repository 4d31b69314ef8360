"""Bulk intake of a hotline batch: ``POST /api/v1/cases/bulk`` (GeoJSON FeatureCollection or CSV)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from api.deps import EngineDep, ReferenceDep, UnsupportedMediaTypeError
from spatial.bulk import intake, parse_csv, parse_geojson

router = APIRouter(prefix="/api/v1", tags=["cases"])


@router.post("/cases/bulk", summary="A batch of reports: every row assigned or refused, one transaction")
async def bulk(request: Request, engine: EngineDep, ref: ReferenceDep,
               all_or_nothing: bool = Query(default=False, description="refuse the whole batch if a row fails"),
               ) -> dict[str, Any]:
    """Assign and store a batch; the reply reports each row (created, duplicate or refused with a reason)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if media in ("application/json", "application/geo+json"):
        rows, refused = parse_geojson(body)
    elif media == "text/csv":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsupportedMediaTypeError("CSV must be UTF-8 encoded", media_type=media) from exc
        rows, refused = parse_csv(text)
    else:
        raise UnsupportedMediaTypeError(
            f"send a GeoJSON FeatureCollection (application/geo+json) or text/csv, not {media or 'nothing'!r}",
            media_type=media)
    return await _run(engine, ref, rows, refused, all_or_nothing)


async def _run(engine, ref, rows, refused, all_or_nothing: bool) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    def work() -> dict[str, Any]:
        with engine.begin() as conn:
            return intake(conn, ref, rows, refused, "api:bulk", all_or_nothing).as_dict()

    return await run_in_threadpool(work)
