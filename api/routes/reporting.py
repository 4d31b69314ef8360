"""Routes that take reports decide who is calling, and whether they may report, before the body is read.

``api.auth.AuthenticatedRoute`` authenticates the caller before FastAPI reads a route's body (401). A report
route also refuses an account that does not report (``spatial.access.scope.report_area``: 403) before the
body: who you are and what you may do come first (RFC 9110 §13.2.1: a request is judged on its content only
once it would otherwise succeed). The body parameter stays declared as usual, so the OpenAPI document and
FastAPI's 422 wording are unchanged; the route reads the account with ``PrincipalDep`` (from the cache).
"""

from __future__ import annotations

from api.auth import AuthenticatedRoute
from spatial.access.principal import Principal
from spatial.access.scope import report_area


class ReportingRoute(AuthenticatedRoute):
    """An ``AuthenticatedRoute`` whose caller must also be an account that reports, decided before the body."""

    def admit(self, principal: Principal) -> None:
        """ForbiddenError for a role that does not report (``report_area``)."""
        report_area(principal)
