"""RFC 9457 problem details: one table maps domain errors to status and type; a 500 never leaks text."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spatial.errors import (
    AuthenticationError,
    ComponentError,
    ForbiddenError,
    GridlinkError,
    IdempotencyConflictError,
    InvalidGeometryError,
    InvalidParameterError,
    NotFoundError,
    OutsideCoverageError,
    UnknownCategoryError,
    UnsupportedMediaTypeError,
)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://gridlink.dev/problems/"
log = logging.getLogger("gridlink.api")

# domain error -> (HTTP status, problem type slug, title)
PROBLEM_TABLE: dict[type[GridlinkError], tuple[int, str, str]] = {
    InvalidParameterError: (400, "invalid-parameter", "Invalid parameter"),
    NotFoundError: (404, "not-found", "Not found"),
    OutsideCoverageError: (422, "outside-coverage", "Location outside every grid"),
    UnknownCategoryError: (422, "unknown-category", "Unknown event category"),
    ComponentError: (422, "component", "Component cannot take this case"),
    InvalidGeometryError: (422, "invalid-geometry", "Invalid geometry"),
    IdempotencyConflictError: (409, "idempotency-conflict", "Idempotency-Key reused"),
    UnsupportedMediaTypeError: (415, "unsupported-media-type", "Unsupported media type"),
    AuthenticationError: (401, "unauthorized", "Authentication required"),
    ForbiddenError: (403, "forbidden", "Not allowed here"),
}


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


def domain_problem(exc: GridlinkError, path: str) -> JSONResponse:
    """The problem+json answering a domain error raised while serving ``path``."""
    for cls in type(exc).__mro__:
        if cls in PROBLEM_TABLE:
            status, slug, title = PROBLEM_TABLE[cls]
            response = problem(status, slug, title, exc.detail, path, **exc.extra)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="gridlink"'
            return response
    return problem(400, "bad-request", "Bad request", exc.detail, path)


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
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type"}
        return problem(exc.status_code, slug.get(exc.status_code, "http-error"), str(exc.detail),
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
    or dropped connection, a server shutting down or starting, an exhausted pool, a statement timeout."""
    import asyncpg
    import psycopg2
    from sqlalchemy import exc as sa

    kinds = (sa.OperationalError, sa.TimeoutError, sa.InterfaceError, psycopg2.OperationalError,
             psycopg2.InterfaceError, asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError,
             asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.QueryCanceledError,
             asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.InternalClientError, ConnectionError,
             TimeoutError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds) or (isinstance(current, sa.DBAPIError) and current.connection_invalidated):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
