"""Who is calling: bearer tokens (``Authorization: Bearer …``) for API clients, and session cookies with CSRF
protection for the web pages; both resolve to accounts (spatial/access/accounts.py).

Sessions. ``POST /api/v1/auth/session`` (login form) stores a token of the account as the ``gridlink_session``
cookie — ``HttpOnly``, ``SameSite=Strict``, ``Secure`` unless the server runs on plain HTTP at 127.0.0.1,
``Path=/`` — and answers the session's CSRF token. A request authenticated by the cookie alone must, for any
method other than GET/HEAD/OPTIONS, send that CSRF token in the ``X-CSRF-Token`` header (403 otherwise): the
value is an HMAC of the session token under a key known only to the server, so another site can neither
read nor forge it. Bearer requests need no CSRF token (browsers never add that header by themselves).

Routes that need an account depend on ``PrincipalDep`` (401 problem+json without valid credentials) and check
the role they need with ``require_role``; scope checks on data live in ``spatial/`` with the queries they
guard (spatial/access/scope.py). Who is calling is decided before the body is read (RFC 9110 §13.2.1): FastAPI
decodes a JSON body before it runs any dependency, so a router whose routes take a pydantic body and
``PrincipalDep`` uses ``route_class=AuthenticatedRoute``, which authenticates first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from spatial.access.accounts import resolve_token
from spatial.access.principal import Principal
from spatial.errors import AuthenticationError, ForbiddenError

SESSION_COOKIE = "gridlink_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def bearer_token(request: Request) -> str | None:
    """The token of the request's ``Authorization`` header, if any (``header_token``)."""
    return header_token(request.headers.get("authorization", ""))


def header_token(header: str) -> str | None:
    """The token of an ``Authorization`` header value: ``Bearer <token>``, or HTTP Basic with the token as
    password (any user name, e.g. ``token``) — for clients that only know Basic, such as QGIS."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "basic" and token:
        try:
            token = base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
        return token or None
    return token if scheme.lower() == "bearer" and token else None


def csrf_token(secret: bytes, session: str) -> str:
    """The CSRF token of a session: an HMAC of its token under the server's secret."""
    return hmac.new(secret, session.encode(), hashlib.sha256).hexdigest()


def request_token(request: Request) -> str | None:
    """The token a request authenticates with: its bearer token, else its session cookie — the latter only
    with the session's CSRF token on unsafe methods (ForbiddenError otherwise)."""
    token = bearer_token(request)
    if token is not None:
        return token
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(request.app.state.secret, session).encode()):
            raise ForbiddenError("a request made with the session cookie needs its X-CSRF-Token header")
    return session


def current_principal(request: Request) -> Principal:
    """The caller's account; AuthenticationError (401) without valid credentials."""
    token = request_token(request)
    if token is None:
        raise AuthenticationError("this needs a bearer token (POST /api/v1/auth/token or `gridlink token create`)"
                                  " or a session (POST /api/v1/auth/session)")
    return resolve_token(request.app.state.engine, token, request.app.state.principals)


def client_address(request: Request) -> str | None:
    """The caller's address (for the audit log)."""
    return request.client.host if request.client else None


def optional_principal(request: Request) -> Principal | None:
    """The caller's account when credentials are given (checked: a bad token is still a 401), else None."""
    if bearer_token(request) is None and not request.cookies.get(SESSION_COOKIE):
        return None
    return current_principal(request)


def require_role(principal: Principal, *roles: str) -> None:
    """ForbiddenError (403) unless the caller has one of ``roles``."""
    if principal.role not in roles:
        raise ForbiddenError(f"role {principal.role!r} may not do this (needs {' or '.join(roles)})")


PrincipalDep = Annotated[Principal, Depends(current_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def needs_account(dependant: Dependant) -> bool:
    """Whether a route (or any of its dependencies) depends on ``current_principal`` (``PrincipalDep``)."""
    return any(d.call is current_principal or needs_account(d) for d in dependant.dependencies)


async def caller(request: Request) -> Principal:
    """``current_principal`` on the event loop: a token resolved lately is answered from the principal cache,
    only a look-up goes to a thread (401 without valid credentials)."""
    token = request_token(request)
    cached = request.app.state.principals.get(token) if token else None
    return cached if cached is not None else await run_in_threadpool(current_principal, request)


class AuthenticatedRoute(APIRoute):
    """A route that, when it needs an account, authenticates its caller before FastAPI reads the body: an
    anonymous caller's malformed body is then a 401, not a 422. Subclasses add what the caller must also be
    (``admit``). ``PrincipalDep`` resolves the same token again afterwards, from the principal cache."""

    def admit(self, principal: Principal) -> None:
        """Refuse (ForbiddenError) a caller who may not use this route at all, whatever the body; any
        account may, here."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that the caller is authenticated (and admitted) first."""
        handler = super().get_route_handler()
        if not needs_account(self.dependant):
            return handler

        async def answer(request: Request) -> Response:
            self.admit(await caller(request))
            return await handler(request)

        return answer
