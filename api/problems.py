"""Errors as each interface says them: one table (the attributes of ``spatial.errors``), three renderers.

Every domain error carries its status, problem slug, title, OGC exception code and GeoReport code
(spatial/errors.py); the renderers here only read them:

- ``domain_problem``: RFC 9457 problem+json, for ``/api/v1`` and the pages;
- ``ogc_exception``: the OGC API exception JSON of ``/ogc`` (the format pygeoapi answers its own errors in).
  One protocol translation: OGC API - Features Part 4 answers invalid content with 400, so a 422 is
  answered 400 ``InvalidParameterValue`` there (``ogc_status``);
- ``georeport_error``: GeoReport v2's error list of ``/open311`` (JSON or XML, ``code`` = the status);
- ``interface_error``: whichever of the three the path's interface speaks (for refusals made in middleware).

All three send ``WWW-Authenticate`` with a 401 and ``Retry-After`` when the error says when to retry. A 500
never echoes exception text.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.open311.format import render_error
from spatial.errors import (
    GridlinkError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://gridlink.dev/problems/"
WWW_AUTHENTICATE = 'Bearer realm="gridlink"'
log = logging.getLogger("gridlink.api")
# Starlette's own refusals (no route, wrong method, body limits) under the slug of the matching domain error.
HTTP_SLUGS = {cls.status: cls.slug for cls in (NotFoundError, MethodNotAllowedError, PayloadTooLargeError,
                                                UnsupportedMediaTypeError)}


def problem(status: int, slug: str, title: str, detail: str | None = None, instance: str | None = None,
            **extra: object) -> JSONResponse:
    """Return a problem+json response."""
    body: dict[str, object] = {"type": TYPE_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def error_headers(exc: GridlinkError) -> dict[str, str]:
    """The headers every rendering of ``exc`` carries: the challenge of a 401 (RFC 9110 §11.6.1) and
    ``Retry-After`` when the error says when to retry (a 429's ``extra["retry_after"]``)."""
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if "retry_after" in exc.extra:
        headers["Retry-After"] = str(exc.extra["retry_after"])
    return headers


def domain_problem(exc: GridlinkError, path: str) -> JSONResponse:
    """The problem+json answering a domain error raised while serving ``path``."""
    response = problem(exc.status, exc.slug, exc.title, exc.detail, path, **exc.extra)
    response.headers.update(error_headers(exc))
    return response


def ogc_status(exc: GridlinkError) -> tuple[int, str]:
    """The HTTP status and OGC exception code of ``exc`` on ``/ogc``: its own, except that invalid content
    (422 elsewhere) is 400 ``InvalidParameterValue``, as OGC API - Features Part 4 answers it."""
    if exc.status == 422:
        return 400, "InvalidParameterValue"
    return exc.status, exc.ogc_code


def ogc_exception(exc: GridlinkError) -> Response:
    """A domain error as an OGC API exception: ``{"type", "code", "description"}``."""
    status, code = ogc_status(exc)
    body = json.dumps({"type": code, "code": code, "description": exc.detail}, ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json", headers=error_headers(exc))


def ogc_errors[**P](route: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Wrap an ``/ogc`` route so that a domain error it raises is answered as an OGC exception."""

    @functools.wraps(route)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await route(*args, **kwargs)
        except GridlinkError as exc:
            return ogc_exception(exc)

    return answer


def georeport_error(exc: GridlinkError, fmt: str) -> Response:
    """A domain error as a GeoReport v2 error list in ``fmt`` (json or xml): ``[{"code", "description"}]``."""
    response = render_error(fmt, exc.georeport_code, exc.detail)
    response.headers.update(error_headers(exc))
    return response


def interface_error(exc: GridlinkError, path: str) -> Response:
    """A domain error in the format of the interface ``path`` belongs to, for refusals made before any route
    runs (middleware): an OGC exception under ``/ogc``, a GeoReport error under ``/open311`` (in the format
    of the path's extension), problem+json elsewhere."""
    if path == "/ogc" or path.startswith("/ogc/"):
        return ogc_exception(exc)
    if path.startswith("/open311/"):
        last = path.rsplit("/", 1)[-1]
        return georeport_error(exc, last.rsplit(".", 1)[-1] if "." in last else "json")
    return domain_problem(exc, path)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(GridlinkError)
    async def domain_error(request: Request, exc: GridlinkError) -> JSONResponse:
        return domain_problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return problem(422, "validation", "Request is not valid", f"{len(errors)} field(s) failed validation",
                       request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, HTTP_SLUGS.get(exc.status_code, "http-error"), str(exc.detail),
                       None, request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Registered for Exception, this handler runs in the outermost middleware: it also sees what escapes
        # the lean intake layer and the OGC mount.
        if database_unavailable(exc):
            return unavailable_response(request.url.path, exc)
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "internal", "Internal server error", "the error was logged", request.url.path)


RETRY_AFTER_SECONDS = 2


def unavailable_response(path: str, exc: BaseException) -> JSONResponse:
    """503 problem+json with Retry-After: the database is away or too slow (one log line, no traceback)."""
    log.warning("database unavailable on %s: %s", path, type(exc).__name__)
    response = problem(503, "unavailable", "Service temporarily unavailable",
                       "the database cannot be reached or did not answer in time; retry shortly "
                       "(with the same Idempotency-Key for a write)", path)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database is away or too slow, rather than a bug: a refused
    or dropped connection, a server shutting down or starting, an exhausted pool, a statement timeout, a
    transaction rolled back to break a deadlock or on a serialization failure."""
    import asyncpg
    import psycopg2
    from sqlalchemy import exc as sa

    kinds = (sa.OperationalError, sa.TimeoutError, sa.InterfaceError, psycopg2.OperationalError,
             psycopg2.InterfaceError, asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError,
             asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.QueryCanceledError,
             asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.InternalClientError,
             # a deadlock broken or a serialization failure: the transaction was rolled back, a retry may pass
             # (psycopg2's TransactionRollbackError is an OperationalError already)
             asyncpg.exceptions.TransactionRollbackError, ConnectionError, TimeoutError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds) or (isinstance(current, sa.DBAPIError) and current.connection_invalidated):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
