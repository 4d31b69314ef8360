"""Importing grids over HTTP (issue 19, item 6): ``POST /api/v1/grids/imports`` takes one file of grids as the
request body — GeoJSON, GeoPackage, FlatGeobuf or a zipped Shapefile, told apart by ``Content-Type`` — and
answers the same repair and topology report as ``gridlink import grids``, having stored the grids as a plan
(committed, a draft, or scheduled for ``effective_at``) or refused them all (422 ``grid-import-refused``, the
report with each problem's polygon; nothing stored).

Admins and planners only, decided before the body is read (401 / 403); a planner imports only grids inside
its scope. The body is streamed against ``GRIDLINK_API_MAX_GRID_FILE_BYTES`` (16 MiB; 413 beyond), and the
reader takes at most 50,000 features. Grid files are small, so the work is synchronous, off the event loop.
Audit: ``grid.import`` for a stored file, ``grid.import_refused`` for a refused one.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from api.auth import PrincipalDep, client_address
from api.deps import EngineDep, read_capped
from api.routes.plans import PlannerRoute
from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.errors import GridImportRefusedError, UnsupportedMediaTypeError
from spatial.grids.history import as_utc
from spatial.grids.importing import import_grids
from spatial.grids.imports import Mapping

router = APIRouter(prefix="/api/v1/grids", tags=["plans"], route_class=PlannerRoute)
SUFFIXES = {"application/geo+json": ".geojson", "application/json": ".geojson",
            "application/geopackage+sqlite3": ".gpkg", "application/flatgeobuf": ".fgb",
            "application/zip": ".zip"}
Field = Annotated[str, Query(min_length=1, max_length=63, pattern=r"^[\w\- ]+$")]
Name = Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[\w\-. ]+$")]


def _import(engine: Engine, principal: Principal, actor: Actor, body: bytes, name: str, level: str,
            mapping: Mapping, options: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gridlink-import-") as folder:
        path = Path(folder) / name
        path.write_bytes(body)
        try:
            with engine.begin() as conn:
                return import_grids(conn, principal, actor, path, level, mapping, **options).as_dict()
        except GridImportRefusedError as refused:
            report = refused.extra["report"]
            with engine.begin() as conn:  # the refusal is audited; the file stored nothing
                record(conn, actor, "grid.import_refused", target=name[:80],
                       detail={"level": level, "problems": len(report["problems"])})  # type: ignore[index]
            raise


@router.post("/imports", summary="Import a file of grids: repaired, checked, stored as a plan or refused",
             status_code=201)
async def import_file(request: Request, engine: EngineDep, principal: PrincipalDep,
                      level: str = Query(pattern="^([1-4]|special)$", description="1 districts, 2 towns,"
                                         " 3 communities, 4 base grids, special: special grids (an overlay)"),
                      code_field: Field = "code", name_field: Field = "name", parent_field: Field | None = None,
                      crs: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9:]+$")] = None,
                      layer: Field | None = None, sliver_m2: float | None = Query(default=None, gt=0, le=1e9),
                      store: Literal["commit", "draft", "none"] = "commit", effective_at: datetime | None = None,
                      filename: Name = "upload") -> JSONResponse:
    """The report and the plan the file became (201), or the report alone for ``store=none`` (200)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in SUFFIXES:  # refused before the body is read
        raise UnsupportedMediaTypeError(f"send a grid file as one of {', '.join(SUFFIXES)}, not {media or 'nothing'!r}",
                                        media_type=media)
    body = await read_capped(request, request.app.state.api_settings.max_grid_file_bytes, "a grid file",
                             "GRIDLINK_API_MAX_GRID_FILE_BYTES")
    name = Path(filename).stem[:90] + SUFFIXES[media]
    options = {"crs": crs, "layer": layer, "sliver_m2": sliver_m2, "store": store,
               "effective_at": as_utc(effective_at) if effective_at else None}
    actor = Actor.of(principal, client_address(request))
    result = await run_in_threadpool(_import, engine, principal, actor, body, name, level,
                                     Mapping(code_field, name_field, parent_field), options)
    return JSONResponse(result, status_code=200 if store == "none" else 201)
