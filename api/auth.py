"""Who is calling: bearer tokens (``Authorization: Bearer …``) resolved to accounts (spatial/accounts.py).

Routes that need an account depend on ``PrincipalDep`` (401 problem+json without a valid token) and check
the role and scope they need with ``require_role``; scope checks on data live in ``spatial/`` with the
queries they guard.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from spatial.accounts import AuthenticationError, ForbiddenError, Principal, principal_for


def bearer_token(request: Request) -> str | None:
    """The bearer token of the request, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_principal(request: Request) -> Principal:
    """The caller's account; AuthenticationError (401) without a valid token."""
    token = bearer_token(request)
    if token is None:
        raise AuthenticationError("this needs a bearer token: POST /api/v1/auth/token or `gridlink token create`")
    with request.app.state.engine.connect() as conn:
        return principal_for(conn, token)


def require_role(principal: Principal, *roles: str) -> None:
    """ForbiddenError (403) unless the caller has one of ``roles``."""
    if principal.role not in roles:
        raise ForbiddenError(f"role {principal.role!r} may not do this (needs {' or '.join(roles)})")


PrincipalDep = Annotated[Principal, Depends(current_principal)]
