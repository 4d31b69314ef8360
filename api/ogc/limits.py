"""What one request may cost on /ogc (SECURITY.md "Cost limits on /ogc"; issue 23, finding 6).

- ``OgcSettings`` (env prefix ``GRIDLINK_OGC_``): the limits below, read when the app starts.
- ``budgeted``: every read of a request runs in one transaction whose statements each stop after
  ``statement_timeout_ms`` (``SET LOCAL statement_timeout``; the pool's 30 s default holds elsewhere). A
  statement stopped there is a 503 OGC exception (``QueryBudgetError``) with ``Retry-After``, never a 500.
- ``Failures``: whatever still escapes a route of the OGC sub-application is answered as OGC exception JSON
  — 503 when the database is away or too slow, otherwise a logged 500 — instead of Starlette's text/plain
  ``Internal Server Error``.

The CQL2 bounds (vertices, predicates, predicates no index can serve) are spatial/features/cql2.py's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError
from starlette.responses import Response

from api.problems import RETRY_AFTER_SECONDS, database_unavailable, ogc_exception
from spatial.errors import QueryBudgetError, UnavailableError

log = logging.getLogger("gridlink.api")


class OgcSettings(BaseSettings):
    """The cost limits of /ogc."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINK_OGC_", extra="ignore")

    # Each statement serving an /ogc request stops after this long (the whole API's default is 30 s).
    statement_timeout_ms: int = 5_000


@contextmanager
def budgeted(engine: Engine, budget_ms: int) -> Iterator[Connection]:
    """A transaction on ``engine`` whose statements each stop after ``budget_ms``; a statement stopped there
    raises QueryBudgetError."""
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(budget_ms)})
            yield conn
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != QUERY_CANCELED:
            raise
        raise QueryBudgetError(
            f"the query ran over its time budget: each statement may take {budget_ms:,} ms on /ogc; narrow it "
            "(a smaller bbox or limit, a simpler filter) or retry later", retry_after=RETRY_AFTER_SECONDS) from exc


QUERY_CANCELED = "57014"  # SQLSTATE of a statement stopped by statement_timeout


class Failures:
    """ASGI middleware of the OGC sub-application: an error escaping its routes becomes OGC exception JSON
    (see the module docstring). Errors after the reply has started go on to the server."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            await failure_response(scope.get("path", ""), exc)(scope, receive, send)


def failure_response(path: str, exc: Exception) -> Response:
    """The OGC exception answering an unexpected error on ``path``: 503 (one log line) when the database is
    away or too slow, otherwise 500 (logged with its traceback; the reply never echoes it)."""
    if database_unavailable(exc):
        log.warning("database unavailable on %s: %s", path, type(exc).__name__)
        return ogc_exception(UnavailableError("the database cannot be reached or did not answer in time; retry "
                                              "shortly", retry_after=RETRY_AFTER_SECONDS))
    log.exception("unhandled error on %s", path)
    body = {"type": "NoApplicableCode", "code": "NoApplicableCode", "description": "internal error; it was logged"}
    return Response(json.dumps(body), status_code=500, media_type="application/json")
