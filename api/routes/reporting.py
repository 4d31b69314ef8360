"""Routes that take reports decide who is calling, and whether they may report, before the body is read.

FastAPI reads and parses a route's JSON body before it solves the route's dependencies, so an anonymous
request with a malformed body would be answered 422 instead of 401. Who you are and what you may do come
first (RFC 9110 §13.2.1: a request is judged on its content only once it would otherwise succeed), so
``ReportingRoute`` authenticates the caller (``api.auth.current_principal``: 401) and checks that the account
reports (``spatial.access.scope.report_area``: 403) before FastAPI's own handling starts. The body parameter
stays declared as usual: the OpenAPI document and FastAPI's 422 wording are unchanged. The route reads the
account with ``ReporterDep``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.auth import current_principal
from spatial.access.principal import Principal
from spatial.access.scope import report_area


class ReportingRoute(APIRoute):
    """A route taking reports: its caller is authenticated and must be an account that reports, before the
    request's body is read (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that the caller is decided first."""
        handler = super().get_route_handler()

        async def caller_first(request: Request) -> Response:
            # current_principal may read the accounts table: off the event loop, as FastAPI runs a def dependency.
            principal = await run_in_threadpool(current_principal, request)
            report_area(principal)  # ForbiddenError for a role that does not report
            request.state.reporter = principal
            return await handler(request)

        return caller_first


async def reporting_principal(request: Request) -> Principal:
    """The reporting account that ``ReportingRoute`` decided for this request."""
    return request.state.reporter


ReporterDep = Annotated[Principal, Depends(reporting_principal)]
