"""Logging in: bearer tokens for API clients (``/api/v1/auth/token``) and cookie sessions for the web pages
(``/api/v1/auth/session``, CSRF-protected: api/auth.py). Every token issued or revoked is audited, and so is
every failed login.

A password login (issue 23, finding 7) is first admitted by the back-off of its login name and its client
address (api/rate_limit.py: ``LoginThrottle``; 429 with Retry-After), and by the hashing gate (``LoginGate``;
429 with Retry-After when every slot and the queue are taken); a refusal is answered after a short idle wait
(``login_refusal_delay_s``), so that a flood of refused logins cannot keep the process busy. Then the account
and its hash are read on a pooled connection that is given back at once, the hash is verified on the gate's
own threads with no connection held, and only then is a connection taken again to issue the token and write
the audit row.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import SESSION_COOKIE, PrincipalDep, bearer_token, client_address, csrf_token, request_token
from api.deps import EngineDep
from spatial.access.accounts import LOGIN, create_token, find_login, revoke_token, verify_password
from spatial.access.audit import Actor, record
from spatial.access.limits import SharedLoginThrottle
from spatial.access.principal import Principal
from spatial.access.scope import case_filter
from spatial.errors import AuthenticationError, TooManyRequestsError
from spatial.grids.areas import area_bounds

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
Login = Annotated[str, Form(max_length=64)]
Password = Annotated[str, Form(max_length=1024)]


async def _login(request: Request, engine, username: str, password: str, label: str,
                 action: str) -> tuple[Principal, str, int | None]:
    state, client = request.app.state, client_address(request) or "unknown"
    throttle = state.login_throttle
    # the shared throttle (GRIDLINK_API_LIMITS=database) asks PostgreSQL: not on the event loop
    counted = run_in_threadpool if isinstance(throttle, SharedLoginThrottle) else _now
    wait = await counted(throttle.attempt, username, client)
    if wait or state.login_gate.full():
        await asyncio.sleep(state.api_settings.login_refusal_delay_s)  # a flood of refusals runs slowly
    if wait:
        raise TooManyRequestsError(f"too many failed logins; retry in {math.ceil(wait)} s",
                                   retry_after=math.ceil(wait))
    if state.login_gate.full():
        raise TooManyRequestsError("too many logins are being checked right now; retry in 1 s", retry_after=1)
    stored = await run_in_threadpool(_stored_login, engine, username)  # the connection is back in the pool
    try:
        principal = await state.login_gate.run(verify_password, stored, password)
    except AuthenticationError:
        locked = await counted(throttle.locked, username, client)
        await run_in_threadpool(_audit_failure, engine, username, client, label, locked)
        raise
    await counted(throttle.succeeded, username, client)
    issued, expires = await run_in_threadpool(_issue, engine, principal, client, label, action)
    seconds = int((expires - datetime.now(UTC)).total_seconds()) if expires else None
    return principal, issued, seconds


async def _now[T](func: Callable[..., T], *args: object) -> T:
    """Call ``func(*args)`` here and now (the in-process throttle: a dictionary under a lock)."""
    return func(*args)


def _stored_login(engine, username: str):
    with engine.connect() as conn:
        return find_login(conn, username)


def _issue(engine, principal: Principal, client: str, label: str, action: str) -> tuple[str, datetime | None]:
    with engine.begin() as conn:
        issued, expires = create_token(conn, principal.login, label=label)
        record(conn, Actor.of(principal, client), action, target=principal.login, detail={"label": label})
    return issued, expires


def _audit_failure(engine, username: str, client: str, label: str, locked: bool) -> None:
    """One audit row per failed login: the login tried (only if an account could have it: never a password
    typed into the wrong field), the address, and whether that failure started a back-off."""
    with engine.begin() as conn:
        record(conn, Actor("anonymous", None, client), "login.fail",
               target=username if LOGIN.match(username) else None, detail={"label": label, "locked": locked})


@router.post("/token", summary="Exchange a login and password for a bearer token (OAuth2 password flow)")
async def token(request: Request, engine: EngineDep, username: Login, password: Password) -> dict[str, Any]:
    """Return ``{"access_token", "token_type": "bearer", "expires_in"}``; 401 problem+json otherwise (429 after
    repeated failures or while too many logins are being checked)."""
    _, issued, seconds = await _login(request, engine, username, password, "password login", "token.create")
    return {"access_token": issued, "token_type": "bearer", "expires_in": seconds}


@router.delete("/token", status_code=204, summary="Revoke the bearer token of this request")
def revoke(request: Request, engine: EngineDep, principal: PrincipalDep) -> Response:
    """Revoke the caller's own token (sign out of an API client)."""
    _revoke(request, engine, principal, bearer_token(request) or "")
    return Response(status_code=204)


def _revoke(request: Request, engine, principal: Principal, issued: str) -> None:
    with engine.begin() as conn:
        if revoke_token(conn, issued, request.app.state.principals):
            record(conn, Actor.of(principal, client_address(request)), "token.revoke", target=principal.login)


def _session_reply(request: Request, principal: Principal, session: str, seconds: int | None) -> dict[str, Any]:
    return {"login": principal.login, "role": principal.role, "scope": principal.scope,
            "scope_bounds": _scope_bounds(request, principal), "expires_in": seconds,
            "csrf_token": csrf_token(request.app.state.secret, session)}


def _scope_bounds(request: Request, principal: Principal) -> list[float] | None:
    """The bounding box of the area (or special grid) the account's cases lie in, for the pages' maps: tiles of
    its cases outside it are empty, and a map need not ask for them. None for the whole city and for an owner,
    whose cases lie wherever its components are."""
    kind = case_filter(principal)
    if kind is None or kind[0] == "owner":
        return None
    with request.app.state.engine.connect() as conn:
        return area_bounds(conn, kind[1])


@router.post("/session", summary="Log in to the web pages: sets the session cookie, returns its CSRF token")
async def open_session(request: Request, response: Response, engine: EngineDep, username: Login,
                       password: Password) -> dict[str, Any]:
    """Set the ``gridlink_session`` cookie (HttpOnly, SameSite=Strict, Secure off loopback) and return
    ``{"login", "role", "scope", "scope_bounds", "expires_in", "csrf_token"}`` (``scope_bounds``:
    the scope area's box for maps, or null): send ``X-CSRF-Token`` with every write."""
    principal, session, seconds = await _login(request, engine, username, password, "web session", "session.create")
    loopback = request.url.hostname in ("127.0.0.1", "localhost", "::1")
    response.set_cookie(SESSION_COOKIE, session, max_age=seconds, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https" or not loopback)
    return await run_in_threadpool(_session_reply, request, principal, session, seconds)


@router.get("/session", summary="The account of this session, and its CSRF token")
def session(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Return the session's account and CSRF token (for a page loaded after login)."""
    return _session_reply(request, principal, request_token(request) or "", None)


@router.delete("/session", status_code=204, summary="Log out: revokes the session (needs X-CSRF-Token)")
def close_session(request: Request, engine: EngineDep, principal: PrincipalDep) -> Response:
    """Revoke the session's token and clear the cookie."""
    _revoke(request, engine, principal, request_token(request) or "")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
