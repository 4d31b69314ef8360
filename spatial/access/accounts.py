"""Accounts and bearer tokens (SPEC "Accounts and access").

Each account has one role and one scope: an area code of any level or a department / owner key. Passwords
are stored only as argon2id hashes (argon2-cffi's defaults); there is no default password — the first
administrator is made with ``gridlink user add``, which reads the password from standard input. Tokens are
random (256 bits), shown once, and stored only as their SHA-256 digest, so a stolen database yields no usable
token; they expire (``expires_at``) and can be revoked.

Resolved tokens are kept in a small in-process cache (``PrincipalCache``) for ``PRINCIPAL_TTL_S`` seconds so
that the intake path does not pay a query per report: a revocation takes effect at once in the process that
revoked it and within that many seconds everywhere else.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, text

from spatial.access.principal import Principal
from spatial.access.scope import scope_problem
from spatial.errors import AuthenticationError, InvalidParameterError, NotFoundError
from spatial.store.db import CONNECT_TIMEOUT_S
from spatial.store.models.accounts import ROLES

LOGIN = re.compile(r"^[A-Za-z0-9._@-]{3,64}$")
MIN_PASSWORD = 12
TOKEN_TTL = timedelta(hours=8)
PRINCIPAL_TTL_S = 30.0
_HASHER = PasswordHasher()
# Verified against when the login is unknown, so that a wrong login costs what a wrong password does.
_DUMMY = _HASHER.hash("gridlink-no-such-account")


class PrincipalCache:
    """Tokens resolved recently (by digest), each for ``ttl`` seconds; bounded, thread-safe."""

    def __init__(self, ttl: float = PRINCIPAL_TTL_S, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        """The cached principal of ``token``, if resolved less than ``ttl`` seconds ago."""
        entry = self._entries.get(_digest(token))
        return entry[1] if entry and entry[0] > time.monotonic() else None

    def put(self, token: str, principal: Principal) -> None:
        """Remember a resolved token."""
        with self._lock:
            if len(self._entries) >= self.size:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.size:
                    self._entries.clear()
            self._entries[_digest(token)] = (time.monotonic() + self.ttl, principal)

    def forget(self, token: str) -> None:
        """Drop a token (revoked here)."""
        with self._lock:
            self._entries.pop(_digest(token), None)


def _scope_exists(conn: Connection, scope: str) -> bool:
    if scope == "*":
        return True
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM grid WHERE code = :s) OR EXISTS (SELECT 1 FROM department WHERE key = :s)"
    ), {"s": scope}).scalar())


def add_user(conn: Connection, login: str, *, role: str, scope: str, password: str,
             display_name: str | None = None) -> int:
    """Create an account; return its id. ``scope`` is an area code, a department key, or ``*`` for admins."""
    if not LOGIN.match(login):
        raise InvalidParameterError("login must be 3–64 letters, digits or . _ @ -", parameter="login")
    if role not in ROLES:
        raise InvalidParameterError(f"role must be one of {', '.join(ROLES)}", parameter="role")
    problem = scope_problem(role, scope)
    if problem:
        raise InvalidParameterError(problem, parameter="scope")
    if not _scope_exists(conn, scope):
        raise InvalidParameterError(f"scope {scope!r} is neither an area code nor a department key",
                                    parameter="scope")
    if len(password) < MIN_PASSWORD:
        raise InvalidParameterError(f"the password needs at least {MIN_PASSWORD} characters", parameter="password")
    if conn.execute(text("SELECT 1 FROM account WHERE login = :l"), {"l": login}).first():
        raise InvalidParameterError(f"login {login!r} is taken", parameter="login")
    return int(conn.execute(text(
        "INSERT INTO account (login, display_name, role, scope, password_hash) VALUES (:l, :d, :r, :s, :h)"
        " RETURNING id"), {"l": login, "d": display_name, "r": role, "s": scope,
                             "h": _HASHER.hash(password)}).scalar_one())


def check_password(conn: Connection, login: str, password: str) -> Principal:
    """The account whose login and password these are; AuthenticationError otherwise (same for both). A login
    that no account can have (``LOGIN``, as ``add_user`` requires) is not looked up: text PostgreSQL cannot
    take (a NUL byte) would otherwise be a 500, found by schemathesis' stateful phase."""
    row = conn.execute(text(
        "SELECT id, login, role, scope, password_hash FROM account WHERE login = :l AND disabled_at IS NULL"
    ), {"l": login}).first() if LOGIN.match(login) else None
    try:
        _HASHER.verify(row[4] if row and row[4] else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        row = None
    if row is None:
        raise AuthenticationError("wrong login or password")
    return Principal(row[0], row[1], row[2], row[3])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, login: str, *, label: str | None = None,
                 ttl: timedelta | None = TOKEN_TTL) -> tuple[str, datetime | None]:
    """A new bearer token for ``login`` (shown once) and when it expires (None: never, for systems)."""
    account = conn.execute(text("SELECT id FROM account WHERE login = :l AND disabled_at IS NULL"),
                           {"l": login}).scalar()
    if account is None:
        raise NotFoundError(f"no active account {login!r}")
    # A fixed prefix: recognisable in leaked-secret scans, and never read as a command-line option ("-…").
    token = "glt_" + secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + ttl if ttl else None
    conn.execute(text("INSERT INTO api_token (account_id, token_hash, label, expires_at) VALUES (:a, :h, :l, :e)"),
                 {"a": account, "h": _digest(token), "l": label, "e": expires})
    return token, expires


PRINCIPAL_SQL = (
    "SELECT a.id, a.login, a.role, a.scope FROM api_token t JOIN account a ON a.id = t.account_id"
    " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"
    " AND a.disabled_at IS NULL")
UNKNOWN_TOKEN = "the token is unknown, expired or revoked"


def principal_for(conn: Connection, token: str, cache: PrincipalCache | None = None) -> Principal:
    """The account behind a bearer token; AuthenticationError if the token is unknown, expired or revoked."""
    found = cache.get(token) if cache else None
    if found is not None:
        return found
    row = conn.execute(text(PRINCIPAL_SQL.replace("$1", ":h")), {"h": _digest(token)}).first()
    if row is None:
        raise AuthenticationError(UNKNOWN_TOKEN)
    principal = Principal(row[0], row[1], row[2], row[3])
    if cache:
        cache.put(token, principal)
    return principal


def resolve_token(engine: Any, token: str, cache: PrincipalCache) -> Principal:
    """``principal_for`` on a connection of ``engine`` taken only when ``cache`` does not know the token."""
    found = cache.get(token)
    if found is not None:
        return found
    with engine.connect() as conn:
        return principal_for(conn, token, cache)


async def principal_on_pool(pool: Any, token: str, cache: PrincipalCache) -> Principal | None:
    """``principal_for`` on an asyncpg pool (the lean intake path); None when the token is not valid."""
    found = cache.get(token)
    if found is not None:
        return found
    async with pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
        row = await conn.fetchrow(PRINCIPAL_SQL, _digest(token))
    if row is None:
        return None
    principal = Principal(row[0], row[1], row[2], row[3])
    cache.put(token, principal)
    return principal


def revoke_token(conn: Connection, token: str, cache: PrincipalCache | None = None) -> bool:
    """Revoke a token; tell whether it was active."""
    if cache:
        cache.forget(token)
    return bool(conn.execute(text(
        "UPDATE api_token SET revoked_at = now() WHERE token_hash = :h AND revoked_at IS NULL"),
        {"h": _digest(token)}).rowcount)


def server_secret(conn: Connection) -> bytes:
    """The server's own random key (CSRF tokens of web sessions): made once, kept in ``meta``, shared by
    every worker and kept across restarts and backups."""
    conn.execute(text("INSERT INTO meta (key, value) VALUES ('session_secret', to_jsonb(CAST(:v AS text)))"
                      " ON CONFLICT (key) DO NOTHING"), {"v": secrets.token_hex(32)})
    found = conn.execute(text("SELECT value #>> '{}' FROM meta WHERE key = 'session_secret'")).scalar_one()
    return bytes.fromhex(found)
