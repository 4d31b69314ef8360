"""Which database serves a read: a streaming replica when one is close enough behind, else the primary.

Writes always go to the primary (``app.state.engine``). A read that may be stale by a moment (tiles, OGC
items, KPIs, lists) asks ``ReadRouter.engine(seen)``:

- ``seen``: the WAL position (LSN) of the caller's last write, which the server hands out on every write reply
  (``Gridlink-LSN``) and the caller sends back. A replica that has not replayed that far is not used, so the
  caller reads their own writes — from a replica once it has caught up, from the primary until then.
- lag: a replica is skipped while it is more than ``max_lag_bytes`` of WAL behind the primary, or while it has
  been behind without replaying anything for ``max_lag_s`` (replay paused, stream cut, stuck on a conflict).
- a dead replica (its check fails) is skipped until a check succeeds again.

Each replica is checked at most every ``check_every_s`` (two small queries: its replay position, then the
primary's WAL position); between checks the last answer stands. Usable replicas take the reads in turn.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
DEAD_RECHECK_FACTOR = 5  # a replica whose check failed is tried again after this many check intervals


def parse_lsn(value: str | None) -> int | None:
    """The LSN ``X/Y`` as one number; None for anything else."""
    if value is None or not LSN.match(value.strip()):
        return None
    high, low = value.strip().split("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(value: int) -> str:
    """The number as PostgreSQL writes an LSN."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass
class Replica:
    """One replica and what its last check found."""

    engine: Engine
    replayed: int = -1  # its replay LSN at the last check; -1: unknown or dead
    behind: int = 0  # bytes of the primary's WAL it had not replayed
    usable: bool = False
    checked_at: float = float("-inf")
    since: float = field(default_factory=time.monotonic)  # when `replayed` last moved


class ReadRouter:
    """Choose the engine of a read; see the module docstring."""

    def __init__(self, primary: Engine, replicas: Sequence[Engine], *, max_lag_bytes: int, max_lag_s: float,
                 check_every_s: float = 1.0) -> None:
        self.primary = primary
        self.replicas = [Replica(engine) for engine in replicas]
        self.max_lag_bytes = max_lag_bytes
        self.max_lag_s = max_lag_s
        self.check_every_s = check_every_s
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def engine(self, seen: str | None = None) -> Engine:
        """The engine for a read by a caller whose last write is at LSN ``seen`` (None: no such write known;
        an unreadable value counts as a write not yet replayed anywhere: the primary)."""
        if not self.replicas:
            return self.primary
        needed = -1 if seen is None else parse_lsn(seen)
        if needed is None:
            return self.primary
        self._refresh()
        usable = [r for r in self.replicas if r.usable and r.replayed >= needed]
        if not usable:
            return self.primary
        return usable[next(self._turn) % len(usable)].engine

    def _refresh(self) -> None:
        now = time.monotonic()
        due = [r for r in self.replicas
               if now - r.checked_at >= self.check_every_s * (1 if r.replayed >= 0 else DEAD_RECHECK_FACTOR)]
        if not due or not self._lock.acquire(blocking=False):
            return  # another request is checking: use what is known
        try:
            for replica in due:
                self._check(replica)
        finally:
            self._lock.release()

    def _check(self, replica: Replica) -> None:
        now = time.monotonic()
        replica.checked_at = now
        try:
            with replica.engine.connect() as conn:  # the replica first: the primary can only be further on
                replayed = parse_lsn(conn.execute(text("SELECT pg_last_wal_replay_lsn()::text")).scalar())
            with self.primary.connect() as conn:
                current = parse_lsn(conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar())
        except Exception:  # a replica (or primary) that cannot answer is not used
            replica.replayed, replica.usable = -1, False
            return
        if replayed is None or current is None:  # not a standby (promoted?), or a primary that is one
            replica.replayed, replica.usable = -1, False
            return
        if replayed != replica.replayed:
            replica.since = now
        replica.replayed = replayed
        replica.behind = max(current - replayed, 0)
        stuck = replica.behind > 0 and now - replica.since > self.max_lag_s
        replica.usable = replica.behind <= self.max_lag_bytes and not stuck

    def dispose(self) -> None:
        """Close the replicas' pools (the primary's belongs to the caller)."""
        for replica in self.replicas:
            replica.engine.dispose()
