"""Routes that take reports decide who is calling, and whether they may report, before the body is read.

``api.auth.AuthenticatedRoute`` authenticates the caller before FastAPI reads a route's body (401). A report
route also refuses an account that does not report (``spatial.access.scope.report_area``: 403) before the
body: who you are and what you may do come first (RFC 9110 §13.2.1: a request is judged on its content only
once it would otherwise succeed). The body parameter stays declared as usual, so the OpenAPI document and
FastAPI's 422 wording are unchanged; the route reads the account with ``PrincipalDep`` (from the cache).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import AuthenticatedRoute, current_principal, request_token
from spatial.access.principal import Principal
from spatial.access.scope import report_area


class ReportingRoute(AuthenticatedRoute):
    """An ``AuthenticatedRoute`` whose caller must also be an account that reports, decided before the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the authenticated handler so that the reporting role is checked first."""
        handler = super().get_route_handler()

        async def reporter_first(request: Request) -> Response:
            report_area(await _caller(request))  # ForbiddenError for a role that does not report
            return await handler(request)

        return reporter_first


async def _caller(request: Request) -> Principal:
    """The caller's account: from the principal cache, else resolved in a thread (401 without credentials)."""
    token = request_token(request)
    cached: Principal | None = request.app.state.principals.get(token) if token else None
    if cached is not None:
        return cached
    return await run_in_threadpool(current_principal, request)
