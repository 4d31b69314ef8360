"""The login back-off and the public rate limit kept in PostgreSQL, shared by every server process (issue 22,
item 5; docs/scale-out.md §4).

The same rules as the in-process ``LoginThrottle`` and ``RateLimiter`` of api/rate_limit.py — the same
methods, so the routes take either — with the counters in ``rate_counter`` (migration 0029, UNLOGGED) instead
of a dictionary of one process: N processes behind one address allow the configured rate once, not N times.
Times are the database's, so machines with drifting clocks count alike. Each decision is one short
transaction on the primary: a login's keys are taken with transaction-scoped advisory locks (in key order, so
two attempts never deadlock), so a burst of concurrent guesses on several processes is counted one after the
other, as the in-process throttle counts them under its lock; a bucket is one ``INSERT … ON CONFLICT`` whose
row lock serialises its takers. Rows left alone for ``forget_s`` are deleted now and then by whichever process
passes (at most once a minute each).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

LOCK_SPACE = 22  # the first key of pg_advisory_xact_lock(int, int): shared rate counters (issue 22)
SWEEP_EVERY_S = 60.0


class _Counters:
    """The ``rate_counter`` rows of one kind of limit, on the engine ``engine()`` returns when first needed
    (the server creates its engine at startup, after the limits)."""

    def __init__(self, engine: Callable[[], Engine], forget_s: float) -> None:
        self.engine, self.forget_s = engine, forget_s
        self.swept = 0.0

    def _sweep(self, conn: Connection) -> None:
        if time.monotonic() - self.swept < SWEEP_EVERY_S:
            return
        self.swept = time.monotonic()
        conn.execute(text("DELETE FROM rate_counter WHERE at < now() - make_interval(secs => :s)"),
                     {"s": self.forget_s})


class SharedLoginThrottle(_Counters):
    """``api.rate_limit.LoginThrottle`` with its failures in ``rate_counter`` (keys ``login:<name>`` and
    ``client:<address>``: value = failures in a row, at = the last one)."""

    def __init__(self, engine: Callable[[], Engine], free_per_login: int = 5, free_per_client: int = 20,
                 base_s: float = 1.0, max_s: float = 900.0, forget_s: float = 3600.0) -> None:
        super().__init__(engine, forget_s)
        self.free = {"login": free_per_login, "client": free_per_client}
        self.base_s, self.max_s = base_s, max_s

    @staticmethod
    def _keys(login: str, client: str) -> tuple[str, str]:
        return "login:" + login.strip().lower()[:64], "client:" + client[:64]

    def _failures(self, conn: Connection, keys: tuple[str, ...]) -> dict[str, tuple[int, float]]:
        """Each key's failures in a row and the seconds since the last one (keys forgotten left out)."""
        rows = conn.execute(text(
            "SELECT key, value, extract(epoch FROM now() - at) FROM rate_counter WHERE key = ANY(:k)"),
            {"k": list(keys)}).all()
        return {key: (int(value), float(age)) for key, value, age in rows if age <= self.forget_s}

    def _wait(self, key: str, failures: dict[str, tuple[int, float]]) -> float:
        count, age = failures.get(key, (0, 0.0))
        over = count - self.free[key.split(":", 1)[0]]
        return 0.0 if over < 0 else max(0.0, min(self.max_s, self.base_s * 2 ** over) - age)

    def attempt(self, login: str, client: str) -> float:
        """Start an attempt: 0 when it may go on (counted as a failure until ``succeeded``), else the seconds
        to wait (nothing counted)."""
        keys = self._keys(login, client)
        with self.engine().begin() as conn:
            for key in sorted(keys):
                conn.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                             {"space": LOCK_SPACE, "key": key})
            failures = self._failures(conn, keys)
            wait = max(self._wait(key, failures) for key in keys)
            if wait:
                return wait
            conn.execute(text(
                "INSERT INTO rate_counter (key, value, at) VALUES (:key, :value, now())"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, at = EXCLUDED.at"),
                [{"key": key, "value": failures.get(key, (0, 0.0))[0] + 1} for key in keys])
            self._sweep(conn)
            return 0.0

    def locked(self, login: str, client: str) -> bool:
        """Whether the failure just counted made the next attempt wait (for the audit row)."""
        keys = self._keys(login, client)
        with self.engine().connect() as conn:
            failures = self._failures(conn, keys)
            conn.rollback()
        return any(self._wait(key, failures) for key in keys)

    def succeeded(self, login: str, client: str) -> None:
        """The attempt was right: forget the login's failures and give the address its attempt back."""
        by_login, by_client = self._keys(login, client)
        with self.engine().begin() as conn:
            conn.execute(text("DELETE FROM rate_counter WHERE key = :k"), {"k": by_login})
            conn.execute(text("DELETE FROM rate_counter WHERE key = :k AND value <= 1"), {"k": by_client})
            conn.execute(text("UPDATE rate_counter SET value = value - 1 WHERE key = :k AND value > 1"),
                         {"k": by_client})


class SharedRateLimiter(_Counters):
    """``api.rate_limit.RateLimiter`` (a token bucket per client) with its buckets in ``rate_counter`` (key
    ``public:<address>``: value = tokens left, at = the last refill)."""

    def __init__(self, engine: Callable[[], Engine], per_minute: float, burst: int, forget_s: float = 3600.0) -> None:
        super().__init__(engine, forget_s)
        self.rate = per_minute / 60.0
        self.burst = float(burst)

    def take(self, key: str) -> float:
        """Spend one token of ``key``; return 0 if allowed, else the seconds until one is available."""
        if self.burst < 1:  # no bucket at all: nothing is ever allowed
            return 1 / self.rate if self.rate > 0 else 60.0
        params = {"key": "public:" + key[:64], "burst": self.burst, "rate": self.rate}
        refilled = "least(:burst, r.value + extract(epoch FROM now() - r.at) * :rate)"
        with self.engine().begin() as conn:
            taken = conn.execute(text(
                "INSERT INTO rate_counter AS r (key, value, at) VALUES (:key, :burst - 1, now())"
                f" ON CONFLICT (key) DO UPDATE SET value = {refilled} - 1, at = now() WHERE {refilled} >= 1"
                " RETURNING value"), params).first()
            self._sweep(conn)
            if taken is not None:
                return 0.0
            tokens = conn.execute(text(f"SELECT {refilled} FROM rate_counter r WHERE r.key = :key"),
                                  params).scalar_one()
        return (1 - float(tokens)) / self.rate if self.rate > 0 else 60.0
