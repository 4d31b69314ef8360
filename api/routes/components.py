"""The component registry: ``/api/v1/components`` (search, one component with its history, edits).

Reads need an account (as on /ogc). Writes follow the Part 4 order (README "Editing"): 401 → 403 (role, then
the stored component: admins, or its owner) → 404 → 428 without ``If-Match`` → 413 / 400 (body) → the edit,
412 when ``If-Match`` is stale; each stored edit has its ``component_history`` and audit rows.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from api.auth import AuthenticatedRoute, PrincipalDep, client_address
from api.deps import ConnectionDep
from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_collection, check_edit_component, registry_owner
from spatial.components import edits, registry
from spatial.components.export import export, format_of
from spatial.components.importer import ImportOptions
from spatial.components.jobs import Jobs
from spatial.errors import (
    ForbiddenError,
    InvalidParameterError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionRequiredError,
    TooManyRequestsError,
)
from spatial.geo.bbox import parse_bbox

router = APIRouter(prefix="/api/v1", tags=["components"], route_class=AuthenticatedRoute)
MAX_BODY = 2_000_000


@router.get("/components", summary="Search the component registry (keyset pages)")
def search(conn: ConnectionDep, principal: PrincipalDep, owner: str | None = Query(None, max_length=64),
           class_code: str | None = Query(None, alias="class", pattern=r"^[0-9]{4}$"),
           status: str | None = None, area: str | None = None, bbox: str | None = None,
           text: str | None = Query(None, max_length=200), changed_since: datetime | None = None,
           sort: str = "code", cursor: str | None = Query(None, max_length=400),
           limit: int = Query(100, ge=1, le=registry.MAX_LIMIT)) -> Response:
    """Components as GeoJSON, filtered by owner, class, status, area (grid code of any level), bbox, text in
    name or note and change time, sorted by ``code``, ``changed_at`` or ``name`` (``-`` first: descending);
    ``next`` is the cursor of the following page. An owner account lists only its own components (another
    owner named: 403)."""
    page = registry.search(conn, registry.ComponentFilter(
        owner=registry_owner(principal, owner), class_code=class_code, status=status, area=area,
        bbox=parse_bbox(bbox), text=text, changed_since=changed_since, sort=sort, cursor=cursor, limit=limit))
    return JSONResponse(page, media_type="application/geo+json")


EXPORTS = threading.BoundedSemaphore(1)  # one export at a time per process: each one reads a whole slice
MEDIA = {"gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json", "csv": "text/csv",
         "fgb": "application/octet-stream", "shp": "application/zip"}


@router.get("/components/export", summary="Export a slice of the registry as a file (streamed)")
def export_slice(principal: PrincipalDep, request: Request, format: str = Query("gpkg"),
                 owner: str | None = Query(None, max_length=64),
                 class_code: str | None = Query(None, alias="class", pattern=r"^[0-9]{4}$"),
                 status: str | None = None, area: str | None = None, bbox: str | None = None,
                 text: str | None = Query(None, max_length=200),
                 changed_since: datetime | None = None) -> Response:
    """GeoPackage, GeoJSON, CSV (WKT), FlatGeobuf, or Shapefile (a zip of one file per geometry kind) of the
    components matching the filters, in code order. Admins export anything, an owner its own components
    (``owner`` is then its key); one export runs at a time (429 with ``Retry-After`` while one does)."""
    owner = export_owner(principal, owner)
    fmt = format_of(Path(f"export.{format}"), format)
    slice_ = registry.ComponentFilter(owner=owner, class_code=class_code, status=status, area=area,
                                      bbox=parse_bbox(bbox), text=text, changed_since=changed_since)
    if not EXPORTS.acquire(blocking=False):
        raise TooManyRequestsError("an export is running: try again shortly", retry_after=10)
    folder = Path(tempfile.mkdtemp(prefix="gridlink-export-"))
    try:
        with request.app.state.engine.connect() as conn:
            done = export(conn, slice_, folder / f"components.{fmt}", fmt)
        with request.app.state.engine.begin() as conn:  # the export's connection streams (server-side cursors)
            record(conn, Actor.of(principal, client_address(request)), "component.export", target=owner,
                   detail={"format": fmt, "rows": done.rows, **{k: v for k, v in request.query_params.items()
                                                                  if k != "format"}})
        target = _bundle(folder, done.files, fmt)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        EXPORTS.release()
    return FileResponse(target, media_type=MEDIA[fmt], filename=target.name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


def export_owner(principal: Principal, owner: str | None) -> str | None:
    """The owner filter of an export: anything for admins, the caller's own key for owners; 403 otherwise."""
    if principal.role == "admin":
        return owner
    if principal.role == "owner" and owner in (None, principal.scope):
        return principal.scope
    raise ForbiddenError(f"{principal.login} ({principal.role}, {principal.scope}) may not export"
                         + (f" {owner}'s components" if owner else " the registry"))


def _bundle(folder: Path, files: list[Path], fmt: str, name: str = "components") -> Path:
    """The file to send: the export itself, or a zip of the Shapefiles and their sidecars."""
    if fmt != "shp":
        return files[0]
    target = folder / f"{name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for shp in files:
            for part in sorted(folder.glob(f"{shp.stem}.*")):
                bundle.write(part, part.name)
    return target


@router.get("/components/{code}", summary="One component (with its history for admins and its owner)")
def read(conn: ConnectionDep, principal: PrincipalDep, code: str) -> Response:
    """The component as a GeoJSON Feature with its revision as ``ETag``."""
    feature = registry.get(conn, principal, code)
    return JSONResponse(feature, media_type="application/geo+json",
                        headers={"ETag": f'"{feature["properties"]["revision"]}"'})


def _if_match(request: Request) -> int:
    value = request.headers.get("if-match", "").strip().removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise PreconditionRequiredError("send If-Match with the ETag of the component you read (GET)")
    return int(value)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLargeError(f"a body may not exceed {MAX_BODY:,} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidParameterError("the body is not JSON", parameter="body") from exc


async def _edit(request: Request, principal: Principal, code: str, action: str) -> Response:
    """Who (role, then the stored component) → If-Match → body → the edit, its history and audit row."""
    engine = request.app.state.engine

    def authorise() -> None:
        check_edit_collection(principal, "components")
        with engine.connect() as conn:
            edits.check_editor(conn, principal, code)

    await run_in_threadpool(authorise)
    expected = _if_match(request)
    body = await _body(request)

    def apply() -> int:
        with engine.begin() as conn:
            if action == "patch":
                revision = registry.patch(conn, principal, code, body, expected_revision=expected)
            else:
                if not isinstance(body, dict):
                    raise InvalidParameterError("the body is {\"status\": …, \"reason\": …}", parameter="body")
                status = "removed" if action == "retire" else body.get("status")
                revision = registry.set_status(conn, principal, code, status, body.get("reason"),
                                               expected_revision=expected)
            record(conn, Actor.of(principal, client_address(request)), f"component.{action}", target=code,
                   detail={"if_match": expected, "revision": revision})
            return revision

    revision = await run_in_threadpool(apply)
    return Response(status_code=204, headers={"ETag": f'"{revision}"'})


@router.patch("/components/{code}", status_code=204, summary="Edit a component (JSON merge patch, If-Match)")
async def patch(request: Request, principal: PrincipalDep, code: str) -> Response:
    """``{"properties": {…}, "geometry": …}``: what it does not name stays; the Part 4 rules apply."""
    return await _edit(request, principal, code, "patch")


@router.post("/components/{code}/status", status_code=204, summary="Change a component's status, with a reason")
async def change_status(request: Request, principal: PrincipalDep, code: str) -> Response:
    """``{"status": "damaged", "reason": "…"}`` with ``If-Match``."""
    return await _edit(request, principal, code, "status")


@router.post("/components/{code}/retire", status_code=204, summary="Retire a component (status removed)")
async def retire(request: Request, principal: PrincipalDep, code: str) -> Response:
    """``{"reason": "…"}`` with ``If-Match``; the component and its history stay."""
    return await _edit(request, principal, code, "retire")


# -- survey upload: the import of `gridlink import components`, run in the background with progress

MAX_SURVEY_BYTES = 2 * 1024**3  # a 2 GiB survey is streamed to disk, never held in memory
SURVEY_SUFFIXES = (".gpkg", ".geojson", ".json", ".fgb", ".csv", ".zip")
_JOBS_LOCK = threading.Lock()


def _jobs(request: Request) -> Jobs:
    with _JOBS_LOCK:
        if not hasattr(request.app.state, "component_jobs"):
            request.app.state.component_jobs = Jobs(request.app.state.engine)
        return request.app.state.component_jobs


@router.post("/components/imports", status_code=202, summary="Upload a survey; it is imported in the background")
async def upload_survey(request: Request, principal: PrincipalDep, owner: str = Query(max_length=64),
                        filename: str = Query(max_length=200, pattern=r"^[^/\\\x00-\x1f]+$"),
                        dry_run: bool = False, all_or_nothing: bool = False, retire_missing: bool = False,
                        crs: str | None = Query(None, max_length=40), encoding: str | None = Query(None, max_length=20),
                        layer: str | None = Query(None, max_length=100),
                        mapping: str | None = Query(None, max_length=4000)) -> Response:
    """The body is the survey file as it is (a Shapefile zipped with its sidecars); ``filename``'s suffix names
    its format; ``mapping`` (as ``gridlink import components --mapping``) is a JSON object of column → field
    (null: leave the column out), else the columns are matched by their usual names (the report shows how).
    Admins import for any owner, an owner for itself — decided before the body is read. The reply (202) is the
    job; ``Location`` is where its progress and report are."""
    check_edit_collection(principal, "components")
    check_edit_component(principal, owner)
    columns = _mapping(mapping)
    suffix = Path(filename).suffix.lower()
    if suffix not in SURVEY_SUFFIXES:
        raise InvalidParameterError(f"filename must end in one of {', '.join(SURVEY_SUFFIXES)} (a Shapefile zipped)",
                                    parameter="filename")
    folder = Path(tempfile.mkdtemp(prefix="gridlink-survey-"))
    path = folder / f"survey{suffix}"
    try:
        await _receive(request, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    options = ImportOptions(owner=owner, mapping=columns, crs=crs, encoding=encoding, layer=layer, dry_run=dry_run,
                            all_or_nothing=all_or_nothing, retire_missing=retire_missing,
                            rejects=folder / f"rejects{'.shp' if suffix == '.zip' else suffix}")
    jobs, actor = _jobs(request), Actor.of(principal, client_address(request))
    job = await run_in_threadpool(jobs.start, principal, actor, path, options)
    return JSONResponse(job.as_dict(), status_code=202, headers={"Location": f"/api/v1/components/imports/{job.id}"})


def _mapping(value: str | None) -> dict[str, str | None] | None:
    """The ``mapping`` query parameter: a JSON object of column name → field name or null (400 otherwise)."""
    if value is None:
        return None
    try:
        mapping = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise InvalidParameterError("mapping is not JSON", parameter="mapping") from exc
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and len(k) <= 100 and isinstance(v, str | None)
                                                 for k, v in mapping.items()):
        raise InvalidParameterError("mapping is a JSON object of column → field name or null", parameter="mapping")
    return mapping


async def _receive(request: Request, path: Path) -> None:
    """Stream the body to ``path``, refusing it (413) past ``MAX_SURVEY_BYTES``."""
    size = 0
    with path.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_SURVEY_BYTES:
                raise PayloadTooLargeError(f"a survey may not exceed {MAX_SURVEY_BYTES:,} bytes")
            out.write(chunk)
    if size == 0:
        raise InvalidParameterError("the body is empty: send the survey file", parameter="body")


@router.get("/components/imports/{job_id}", summary="The progress and report of a survey upload")
def import_status(request: Request, principal: PrincipalDep, job_id: str) -> Response:
    """``state`` running, done or failed; ``rows_read`` of ``rows_total``; the ``report`` once done (as the
    CLI prints it) or the ``problem`` that refused the file."""
    return JSONResponse(_jobs(request).get(principal, job_id).as_dict())


@router.get("/components/imports/{job_id}/rejects", summary="The refused rows of a survey upload")
def import_rejects(request: Request, principal: PrincipalDep, job_id: str) -> Response:
    """The refused rows in the survey's format with ``row`` and ``reason`` (a Shapefile zipped)."""
    job = _jobs(request).get(principal, job_id)
    if job.state == "running":
        raise NotFoundError(f"import {job_id} has no rejects file yet")
    rejects = job.rejects_file()
    if rejects is None:
        raise NotFoundError(f"import {job_id} has no rejects file"
                            + ("" if job.local() else f" on this server (it is on {job.host})"))
    target = _bundle(Path(job.folder), [rejects], "shp" if rejects.suffix == ".shp" else "other", "rejects")
    return FileResponse(target, filename=f"rejects{target.suffix}")
