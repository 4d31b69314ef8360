"""A per-client token bucket for public (anonymous) submissions.

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
