"""Bulk intake of a hotline batch: ``POST /api/v1/cases/bulk`` (GeoJSON FeatureCollection or CSV)."""

from __future__ import annotations

from concurrent.futures import Future

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import PrincipalDep, client_address
from api.deps import EngineDep, ReferenceDep
from api.routes.reporting import ReportingRoute
from spatial.access.principal import Principal
from spatial.access.scope import row_source
from spatial.cases.assignment.index import Usable
from spatial.cases.bulk import BulkReport, intake, start_reading
from spatial.cases.bulk_files import RowResult, parse_csv, parse_geojson
from spatial.cases.schemas import BulkRow
from spatial.errors import UnsupportedMediaTypeError
from spatial.reference.cache import ReferenceCache

# The caller is decided before the body is read (api/routes/reporting.py).
router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=ReportingRoute)


JSON_MEDIA = ("application/json", "application/geo+json")


def _parse(media: str, body: bytes, source: str) -> tuple[list[BulkRow], list[RowResult]]:
    """Parse a body whose media type ``bulk`` has accepted; ``source``: that of rows naming none."""
    if media in JSON_MEDIA:
        return parse_geojson(body, source)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaTypeError("CSV must be UTF-8 encoded", media_type=media) from exc
    return parse_csv(text, source)


@router.post("/cases/bulk", summary="A batch of reports: every row assigned or refused, one transaction",
             response_model=None, responses={200: {"model": BulkReport, "description": "the batch's report"}})
async def bulk(request: Request, engine: EngineDep, ref: ReferenceDep, principal: PrincipalDep,
               all_or_nothing: bool = Query(default=False, description="refuse the whole batch if a row fails"),
               ) -> Response:
    """Assign and store a batch; the reply reports each row (created, duplicate or refused with a reason)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (*JSON_MEDIA, "text/csv"):  # refused before the body is read
        raise UnsupportedMediaTypeError(
            f"send a GeoJSON FeatureCollection (application/geo+json) or text/csv, not {media or 'nothing'!r}",
            media_type=media)
    body = await request.body()

    def work() -> bytes:
        # Parsing, assignment and the reply's JSON all run off the event loop: a big batch takes seconds.
        usable = start_reading(engine, len(body))
        rows, refused = _parse(media, body, row_source(principal))
        return _store(engine, ref, rows, refused, all_or_nothing, usable, principal,
                      client_address(request))

    return Response(await run_in_threadpool(work), media_type="application/json")


def _store(engine, ref: ReferenceCache, rows: list[BulkRow], refused: list[RowResult], all_or_nothing: bool,
           usable: Future[Usable] | None, principal: Principal, client: str | None) -> bytes:
    with engine.begin() as conn:
        report = intake(conn, ref, rows, parse_refused=refused, actor="api:bulk", all_or_nothing=all_or_nothing,
                        usable=usable, by=principal, client=client)
    return report.to_json()
