"""Bulk intake of a hotline batch: ``POST /api/v1/cases/bulk`` (GeoJSON FeatureCollection or CSV).

Admission, cheapest first (issue 23, finding 8): who calls and whether the account reports at all is decided
before a byte of the body is read (``ReportingRoute``: 401, 403); then the media type (415); then the body is
streamed against ``GRIDLINK_API_MAX_BULK_BYTES`` — a declared ``Content-Length`` over it is refused before
reading, a body without one as soon as it passes the limit — and its rows against
``GRIDLINK_API_MAX_BULK_ROWS``, before they are validated (413 problem+json). Every batch an account sends
leaves an audit row: refused whole here (``case.bulk.refused``, by ``BulkRoute``), or stored or refused row
by row by ``spatial.cases.bulk.intake``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import PrincipalDep, caller, client_address
from api.deps import EngineDep, ReferenceDep, read_capped
from api.routes.reporting import ReportingRoute
from spatial.access.principal import Principal
from spatial.access.scope import row_source
from spatial.cases.assignment.index import Usable
from spatial.cases.bulk import BulkReport, intake, record_refusal, start_reading
from spatial.cases.bulk_files import RowResult, parse_csv, parse_geojson
from spatial.cases.schemas import BulkRow
from spatial.errors import AuthenticationError, GridlinkError, UnsupportedMediaTypeError
from spatial.reference.cache import ReferenceCache


class BulkRoute(ReportingRoute):
    """A ``ReportingRoute`` that audits a batch refused whole (wrong role, media type, too large, not a
    collection) when an account sent it; anonymous callers (401) leave no row: there is no one to name."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler (which decides the caller first) so that its refusals are audited."""
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except GridlinkError as refusal:
                if not isinstance(refusal, AuthenticationError):
                    await _audit(request, refusal)
                raise

        return answer


async def _audit(request: Request, refusal: GridlinkError) -> None:
    """Audit a refused batch of the caller's account (none to name: no row, e.g. a session without CSRF)."""
    try:
        principal = await caller(request)
    except GridlinkError:
        return
    await run_in_threadpool(record_refusal, request.app.state.engine, principal, client_address(request), refusal)


router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=BulkRoute)


JSON_MEDIA = ("application/json", "application/geo+json")


def _parse(media: str, body: bytes, source: str, max_rows: int) -> tuple[list[BulkRow], list[RowResult]]:
    """Parse a body whose media type ``bulk`` has accepted; ``source``: that of rows naming none."""
    if media in JSON_MEDIA:
        return parse_geojson(body, source, max_rows)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaTypeError("CSV must be UTF-8 encoded", media_type=media) from exc
    return parse_csv(text, source, max_rows)


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
    limits = request.app.state.api_settings
    body = await read_capped(request, limits.max_bulk_bytes, "a batch", "GRIDLINK_API_MAX_BULK_BYTES")

    def work() -> bytes:
        # Parsing, assignment and the reply's JSON all run off the event loop: a big batch takes seconds.
        usable = start_reading(engine, len(body), principal)
        rows, refused = _parse(media, body, row_source(principal), limits.max_bulk_rows)
        return _store(engine, ref, rows, refused, all_or_nothing, usable, principal,
                      client_address(request))

    return Response(await run_in_threadpool(work), media_type="application/json")


def _store(engine, ref: ReferenceCache, rows: list[BulkRow], refused: list[RowResult], all_or_nothing: bool,
           usable: Future[Usable] | None, principal: Principal, client: str | None) -> bytes:
    with engine.begin() as conn:
        report = intake(conn, ref, rows, parse_refused=refused, actor="api:bulk", all_or_nothing=all_or_nothing,
                        usable=usable, by=principal, client=client)
    return report.to_json()
