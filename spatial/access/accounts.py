"""Accounts and bearer tokens (SPEC "Accounts and access").

Each account has one role and one scope: an area code of any level or a department / owner key. Passwords
are stored only as argon2id hashes (argon2-cffi's defaults); there is no default password — the first
administrator is made with ``gridlink user add``, which reads the password from standard input. Tokens are
random (256 bits), shown once, and stored only as their SHA-256 digest, so a stolen database yields no usable
token; they expire (``expires_at``: a positive lifetime, or none only when asked for explicitly) and can be
revoked, one by one or all of an account's at once.

Passwords follow NIST SP 800-63B §5.1.1.2: at least ``MIN_PASSWORD`` characters, no composition rules, and
checked against what attackers try first — zxcvbn's lists of common passwords, names and words, repeated and
sequential runs, keyboard walks, and the login itself (``password_problem``).

An account can be disabled (its tokens are revoked and it can no longer log in) and enabled again (with new
tokens only); a password reset also revokes every token of the account, signing out its sessions.

Resolved tokens are kept in a small in-process cache (``PrincipalCache``) for ``PRINCIPAL_TTL_S`` seconds so
that the intake path does not pay a query per report. Every change that ends a token (revocation, disabling,
a password reset) announces the account on the PostgreSQL channel ``PRINCIPALS_CHANNEL`` in its own
transaction; each server process listens (``watch_principals``) and drops that account's cached tokens as
soon as the change commits, whichever process or command made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, text
from zxcvbn import zxcvbn

from spatial.access.principal import Principal
from spatial.access.scope import scope_problem
from spatial.errors import AuthenticationError, InvalidParameterError, NotFoundError
from spatial.store.db import CONNECT_TIMEOUT_S, libpq_uri
from spatial.store.models.accounts import ROLES

LOGIN = re.compile(r"^[A-Za-z0-9._@-]{3,64}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# zxcvbn's score 3: at least 10^8 guesses, "safely unguessable" against throttled online attacks and a slow
# hash offline; anything it scores lower is built from a common password, words, repeats or sequences.
MIN_PASSWORD_SCORE = 3
# zxcvbn's matching grows faster than linearly with length; a longer password is judged by its beginning.
_SCORED_PREFIX = 100
# Words any gridlink password guesser would try first, beside the account's own login and name.
_CONTEXT_WORDS = ("gridlink", "suzhou", "wuzhong", "admin", "dispatcher", "inspector")
TOKEN_TTL = timedelta(hours=8)
PRINCIPALS_CHANNEL = "gridlink_principals"
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
        self._changed = threading.Condition(self._lock)
        self.changes = 0  # accounts announced so far (forget_account), for whoever waits on a change
        self.listening = threading.Event()  # set while watch_principals hears the announcements

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

    def forget_account(self, account_id: int | None) -> None:
        """Drop every cached token of an account (None: of every account) — it changed somewhere."""
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items()
                             if account_id is not None and v[1].account_id != account_id}
            self.changes += 1
            self._changed.notify_all()

    def changed_since(self, seen: int, timeout: float) -> bool:
        """Wait until an account change arrives after ``seen`` (a value of ``changes``); tell whether one did."""
        with self._lock:
            return self._changed.wait_for(lambda: self.changes > seen, timeout)


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
    problem = password_problem(password, login, display_name)
    if problem:
        raise InvalidParameterError(problem, parameter="password")
    if conn.execute(text("SELECT 1 FROM account WHERE login = :l"), {"l": login}).first():
        raise InvalidParameterError(f"login {login!r} is taken", parameter="login")
    return int(conn.execute(text(
        "INSERT INTO account (login, display_name, role, scope, password_hash) VALUES (:l, :d, :r, :s, :h)"
        " RETURNING id"), {"l": login, "d": display_name, "r": role, "s": scope,
                             "h": _HASHER.hash(password)}).scalar_one())


def password_problem(password: str, login: str, display_name: str | None = None) -> str | None:
    """Why ``password`` may not be used (never quoting it), or None: too short or long, or easy to guess."""
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password may have at most {MAX_PASSWORD} characters"
    words = [w for w in (login, *re.split(r"[._@-]", login), display_name, *_CONTEXT_WORDS) if w]
    if zxcvbn(password[:_SCORED_PREFIX], user_inputs=words)["score"] < MIN_PASSWORD_SCORE:
        return ("the password is easy to guess (a common password, words with digits, a repeated or sequential"
                " run, a keyboard walk or the login): choose a longer passphrase of unrelated words")
    return None


def _account(conn: Connection, login: str, *, active: bool | None = True) -> int:
    """The id of ``login``'s account (``active``: only if enabled / only if disabled); NotFoundError else."""
    condition = {True: " AND disabled_at IS NULL", False: " AND disabled_at IS NOT NULL", None: ""}[active]
    found = conn.execute(text("SELECT id FROM account WHERE login = :l" + condition), {"l": login}).scalar()
    if found is None:
        state = {True: "active ", False: "disabled ", None: ""}[active]
        raise NotFoundError(f"no {state}account {login!r}")
    return int(found)


def _announce(conn: Connection, account_id: int) -> None:
    """Tell every server process (on commit) that ``account_id``'s tokens changed."""
    conn.execute(text("SELECT pg_notify(:c, :a)"), {"c": PRINCIPALS_CHANNEL, "a": str(account_id)})


def revoke_all_tokens(conn: Connection, login: str) -> int:
    """Revoke every active token of ``login`` (signs out all its sessions and clients); return how many."""
    account = _account(conn, login, active=None)
    _announce(conn, account)
    return int(conn.execute(text("UPDATE api_token SET revoked_at = now() WHERE account_id = :a"
                                 " AND revoked_at IS NULL"), {"a": account}).rowcount)


def disable_account(conn: Connection, login: str) -> None:
    """Disable an active account: it can no longer log in, and its tokens are revoked."""
    conn.execute(text("UPDATE account SET disabled_at = now() WHERE id = :a"), {"a": _account(conn, login)})
    revoke_all_tokens(conn, login)


def enable_account(conn: Connection, login: str) -> None:
    """Enable a disabled account again (its old tokens stay revoked)."""
    conn.execute(text("UPDATE account SET disabled_at = NULL WHERE id = :a"),
                 {"a": _account(conn, login, active=False)})


def set_password(conn: Connection, login: str, password: str) -> None:
    """Reset ``login``'s password (the same policy as ``add_user``) and revoke all its tokens."""
    account = _account(conn, login, active=None)
    name = conn.execute(text("SELECT display_name FROM account WHERE id = :a"), {"a": account}).scalar()
    problem = password_problem(password, login, name)
    if problem:
        raise InvalidParameterError(problem, parameter="password")
    conn.execute(text("UPDATE account SET password_hash = :h WHERE id = :a"),
                 {"h": _HASHER.hash(password), "a": account})
    revoke_all_tokens(conn, login)


@dataclass(frozen=True)
class StoredLogin:
    """What a password is checked against: the account and its password hash, read with ``find_login``."""

    principal: Principal
    password_hash: str | None


def find_login(conn: Connection, login: str) -> StoredLogin | None:
    """The active account of ``login`` and its hash, or None. A login that no account can have (``LOGIN``, as
    ``add_user`` requires) is not looked up: text PostgreSQL cannot take (a NUL byte) would otherwise be a
    500, found by schemathesis' stateful phase."""
    row = conn.execute(text(
        "SELECT id, login, role, scope, password_hash FROM account WHERE login = :l AND disabled_at IS NULL"
    ), {"l": login}).first() if LOGIN.match(login) else None
    return StoredLogin(Principal(row[0], row[1], row[2], row[3]), row[4]) if row else None


def verify_password(stored: StoredLogin | None, password: str) -> Principal:
    """The account if ``password`` is its password; AuthenticationError otherwise (the same for an unknown
    login, which costs the same hash). CPU- and memory-bound (argon2id): call it with no database connection
    held, so that slow or many checks never hold the pool."""
    try:
        _HASHER.verify(stored.password_hash if stored and stored.password_hash else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        stored = None
    if stored is None:
        raise AuthenticationError("wrong login or password")
    return stored.principal


def check_password(conn: Connection, login: str, password: str) -> Principal:
    """``verify_password`` of ``find_login`` (for callers that hold no pool: commands, tests)."""
    return verify_password(find_login(conn, login), password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, login: str, *, label: str | None = None,
                 ttl: timedelta | None = TOKEN_TTL) -> tuple[str, datetime | None]:
    """A new bearer token for ``login`` (shown once) and when it expires: ``ttl`` must be positive; None asks
    explicitly for a token that never expires (partner systems)."""
    if ttl is not None and ttl <= timedelta(0):
        raise InvalidParameterError("a token's lifetime must be positive (a token that never expires is asked"
                                    " for explicitly)", parameter="ttl")
    account = _account(conn, login)
    # A fixed prefix: recognisable in leaked-secret scans, and never read as a command-line option ("-…").
    token = "glt_" + secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + ttl if ttl is not None else None
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
    account = conn.execute(text(
        "UPDATE api_token SET revoked_at = now() WHERE token_hash = :h AND revoked_at IS NULL RETURNING account_id"),
        {"h": _digest(token)}).scalar()
    if account is not None:
        _announce(conn, account)
    return account is not None


async def watch_principals(url: str, cache: PrincipalCache, retry_s: float = 1.0) -> None:
    """Listen on ``PRINCIPALS_CHANNEL`` and drop the cached tokens of each account announced there, until
    cancelled. While the listening connection is down nothing would be heard: the whole cache is dropped
    whenever it (re)connects, so a change made meanwhile is not missed."""
    import asyncpg

    dsn = libpq_uri(url)

    def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        cache.forget_account(int(payload) if payload.isdigit() else None)

    while True:
        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
        except Exception:  # the database is away (or refuses us): try again, never end the watch
            await asyncio.sleep(retry_s)
            continue
        try:
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await conn.add_listener(PRINCIPALS_CHANNEL, heard)
            cache.forget_account(None)
            cache.listening.set()
            await lost.wait()
        except (OSError, asyncpg.PostgresError):
            pass
        finally:
            cache.listening.clear()
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))
        await asyncio.sleep(retry_s)


def server_secret(conn: Connection) -> bytes:
    """The server's own random key (CSRF tokens of web sessions): made once, kept in ``meta``, shared by
    every worker and kept across restarts and backups."""
    conn.execute(text("INSERT INTO meta (key, value) VALUES ('session_secret', to_jsonb(CAST(:v AS text)))"
                      " ON CONFLICT (key) DO NOTHING"), {"v": secrets.token_hex(32)})
    found = conn.execute(text("SELECT value #>> '{}' FROM meta WHERE key = 'session_secret'")).scalar_one()
    return bytes.fromhex(found)
