"""A per-client token bucket for public (anonymous) submissions; the back-off and the hashing gate of password
logins (``LoginThrottle``, ``LoginGate``).

Anyone may file an Open311 request without a key (the public channel of SPEC); a script on one address must
not flood the dispatchers' queue. Each client address gets ``per_minute`` submissions a minute with bursts
of ``burst``; partner systems (with an api_key) are not limited here. The buckets live in the worker process
(with several workers a client gets that many times the rate) and are bounded in number: the idlest are
forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import anyio
import anyio.to_thread


class RateLimiter:
    """Token buckets by client key."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, last refill)
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token of ``key``; return 0 if allowed, else the seconds until one is available."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate if self.rate > 0 else 60.0
            self.buckets[key] = (tokens, now)
            while len(self.buckets) > self.max_clients:
                self.buckets.popitem(last=False)
            return wait


class LoginThrottle:
    """Exponential back-off of password logins, per login name and per client address (issue 23, finding 7).

    Each key (``login:<name>``, ``client:<address>``) may fail ``free`` times in a row; after that an attempt
    must wait ``base_s`` seconds after the last failure, doubling with each further failure up to ``max_s``.
    An attempt is counted as a failure when it starts (so a burst of concurrent guesses is counted before
    any of them is verified) and given back when it succeeds, which also forgets the login's failures. A
    key left alone for ``forget_s`` starts afresh. Names are counted whether or not an account has them, so
    the answer never tells which logins exist. In-process, bounded like ``RateLimiter``.
    """

    def __init__(self, free_per_login: int = 5, free_per_client: int = 20, base_s: float = 1.0,
                 max_s: float = 900.0, forget_s: float = 3600.0, max_keys: int = 100_000) -> None:
        self.free = {"login": free_per_login, "client": free_per_client}
        self.base_s, self.max_s, self.forget_s, self.max_keys = base_s, max_s, forget_s, max_keys
        self.clock = time.monotonic
        self.failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key → (failures, last one)
        self.lock = threading.Lock()

    @staticmethod
    def _keys(login: str, client: str) -> tuple[str, str]:
        return "login:" + login.strip().lower()[:64], "client:" + client[:64]

    def _wait(self, key: str, now: float) -> float:
        count, last = self.failures.get(key, (0, now))
        if now - last > self.forget_s:
            self.failures.pop(key, None)
            return 0.0
        over = count - self.free[key.split(":", 1)[0]]
        return 0.0 if over < 0 else max(0.0, last + min(self.max_s, self.base_s * 2 ** over) - now)

    def attempt(self, login: str, client: str) -> float:
        """Start an attempt: 0 when it may go on (counted as a failure until ``succeeded``), else the seconds
        to wait (nothing counted)."""
        now = self.clock()
        keys = self._keys(login, client)
        with self.lock:
            wait = max(self._wait(key, now) for key in keys)
            if wait:
                return wait
            for key in keys:
                count, _ = self.failures.pop(key, (0, now))
                self.failures[key] = (count + 1, now)
            while len(self.failures) > self.max_keys:
                self.failures.popitem(last=False)
            return 0.0

    def locked(self, login: str, client: str) -> bool:
        """Whether the failure just counted made the next attempt wait (for the audit row)."""
        with self.lock:
            return any(self._wait(key, self.clock()) for key in self._keys(login, client))

    def succeeded(self, login: str, client: str) -> None:
        """The attempt was right: forget the login's failures and give the address its attempt back."""
        by_login, by_client = self._keys(login, client)
        with self.lock:
            self.failures.pop(by_login, None)
            count, last = self.failures.get(by_client, (1, 0.0))
            if count <= 1:
                self.failures.pop(by_client, None)
            else:
                self.failures[by_client] = (count - 1, last)


class LoginGate:
    """At most ``concurrency`` password hashes verified at once, on worker threads counted apart from those that
    serve every other request, and at most ``queue`` more waiting: argon2id takes 64 MiB and a core for tens of
    milliseconds per check, so a login flood must take neither the shared threads nor the memory. A login
    beyond that is told to come back (``full``)."""

    def __init__(self, concurrency: int = 2, queue: int = 8) -> None:
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.capacity = concurrency + queue

    @property
    def waiting(self) -> int:
        """Logins waiting for a hashing slot."""
        return self.limiter.statistics().tasks_waiting

    def full(self) -> bool:
        """Whether another login would exceed the hashing slots and the queue."""
        return self.limiter.borrowed_tokens + self.waiting >= self.capacity

    async def run[T](self, func: Callable[..., T], *args: object) -> T:
        """Run ``func(*args)`` on a worker thread under the gate's limit (the caller checked ``full`` first)."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self.limiter)
