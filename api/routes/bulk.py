"""Bulk intake of a hotline batch: ``POST /api/v1/cases/bulk`` (GeoJSON FeatureCollection or CSV)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, ReferenceDep, UnsupportedMediaTypeError
from spatial.bulk import BulkRow, RowResult, intake, parse_csv, parse_geojson
from spatial.reference_cache import ReferenceCache

router = APIRouter(prefix="/api/v1", tags=["cases"])


class BulkRowResult(BaseModel):
    """What happened to one row (1-based: feature index or CSV data line)."""

    row: int
    status: str
    case_id: int | None = None
    case_no: str | None = None
    grid: str | None = None
    owner: str | None = None
    duplicate_of: int | None = None
    reason: str | None = None


class BulkReply(BaseModel):
    """The batch's outcome (documentation of the reply; the reply itself is serialised directly)."""

    received: int
    created: int
    duplicates: int
    refused: int
    stored: bool
    results: list[BulkRowResult]


def _parse(media: str, body: bytes) -> tuple[list[BulkRow], list[RowResult]]:
    if media in ("application/json", "application/geo+json"):
        return parse_geojson(body)
    if media == "text/csv":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsupportedMediaTypeError("CSV must be UTF-8 encoded", media_type=media) from exc
        return parse_csv(text)
    raise UnsupportedMediaTypeError(
        f"send a GeoJSON FeatureCollection (application/geo+json) or text/csv, not {media or 'nothing'!r}",
        media_type=media)


@router.post("/cases/bulk", summary="A batch of reports: every row assigned or refused, one transaction",
             response_model=None, responses={200: {"model": BulkReply, "description": "the batch's report"}})
async def bulk(request: Request, engine: EngineDep, ref: ReferenceDep,
               all_or_nothing: bool = Query(default=False, description="refuse the whole batch if a row fails"),
               ) -> Response:
    """Assign and store a batch; the reply reports each row (created, duplicate or refused with a reason)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/json", "application/geo+json", "text/csv"):
        _parse(media, b"")  # raises the 415 before the body is read
    body = await request.body()

    def work() -> bytes:
        # Parsing, assignment and the reply's JSON all run off the event loop: a big batch takes seconds.
        rows, refused = _parse(media, body)
        return _store(engine, ref, rows, refused, all_or_nothing)

    return Response(await run_in_threadpool(work), media_type="application/json")


def _store(engine, ref: ReferenceCache, rows: list[BulkRow], refused: list[RowResult], all_or_nothing: bool) -> bytes:
    with engine.begin() as conn:
        report = intake(conn, ref, rows, refused, "api:bulk", all_or_nothing)
    return report.to_json()
