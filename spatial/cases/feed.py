"""The live feed of case events (issue 17 item 6): one poller per server process, fanned out in memory.

Consoles follow ``GET /api/v1/events/stream`` (api/routes/events.py). What keeps the feed exact:

- **Commit order, not id order.** ``case_event.id`` is taken from its sequence at insert, so under concurrency
  a transaction holding id 100 can commit after one holding 101: "every id after the last one I saw" would
  skip 100 for good. Each row carries its transaction's id, ``xid`` (migration 0018). The **watermark** is the
  lowest id of a transaction of this database still in progress (the next id when there is none): every row
  with an xid below it is final — none can still appear. (Not the snapshot's ``xmin``: transaction ids are
  cluster-wide, and a transaction left open in another database of the cluster would hold the feed back; our
  database's own come from ``pg_stat_activity.backend_xid``, which shows every session of our own role — and
  every writer of ``case_event`` is one.) The feed serves exactly the rows below the watermark, ordered by
  ``(xid, id)``: a position that never moves backwards and that any server process computes alike.
- **The SSE id is the case_event id.** A client that reconnects with ``Last-Event-ID`` is resumed at that
  row's ``(xid, id)``: rows after it and below the watermark come from the database (paged), the rest from the
  live fan-out, with nothing in between and nothing twice (``Feed.subscribe`` takes the watermark and
  registers the subscriber in one step of the poller's lock).
- **Cost.** Intake does nothing for the feed but fill ``xid`` (a column default) and a BRIN index entry. One
  follower per process, running only while someone listens, reads the new rows every ``interval`` (200 ms)
  through that index — one reader however many clients follow — and fans them out in memory; a NOTIFY per
  case (measured −17 % intake, migration 0011) is not needed. The fan-out works per page of rows, not per
  event and client: subscribers with the same filter (scope, area, states, grades: ``FeedFilter.key``) form
  one group, whose filter is evaluated once per event; each group's admitted events are one batch (one
  list, shared by its subscribers' queues), and a stream writes each batch — everything it has queued — as
  one chunk, so the sockets see a few writes a second rather than one per event. The price of exactness is a
  lag: the watermark waits for the database's oldest writing transaction still open, so a long write (a
  100,000-row bulk import, a session idle in a transaction) holds the feed back until it ends.
- **Slow clients** have a bounded backlog (``queue_size`` events): one that would exceed it is cut off at
  once — its backlog dropped, not held — and its stream ends with a retry hint; it reconnects with its
  ``Last-Event-ID`` and reads what it missed from the database.

Who sees what: the case rule of spatial/access/scope.py (``may_read`` on the case's grid, special grids,
current owner and assisting units), narrowed by ``area`` (a grid code of any level or a special grid inside
the scope), ``state`` (the case's state after the event) and ``grade`` (the category's A/B/C).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, text

from spatial.access.principal import Principal
from spatial.access.scope import KEY_ROLES, covers, may_read
from spatial.codes import AREA_CODE, SPECIAL_CODE
from spatial.errors import ForbiddenError, InvalidParameterError, TooManyRequestsError
from spatial.reference.cache import ReferenceCache
from spatial.store.models.cases import STATES
from spatial.store.models.reference import GRADES

log = logging.getLogger(__name__)
T = TypeVar("T")
Position = tuple[int, int]  # (xid, id): the feed's order

# The watermark in two reads, in this order: the transactions in progress (cluster-wide) and the next id, then
# which of them are this database's (a transaction of another database never writes our case_event, and one of
# the shared cluster's other databases must not hold our feed back). A transaction in progress at the first
# read that is gone by the second has finished, so the rows query after both sees whatever it committed.
_SNAPSHOT = text("SELECT pg_snapshot_xmax(s)::text::bigint AS next,"
                 " array(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x) AS running"
                 " FROM pg_current_snapshot() AS s")
_HERE = text("SELECT array(SELECT backend_xid::text::bigint FROM pg_stat_activity"
             " WHERE datname = current_database() AND backend_xid IS NOT NULL)")
# The state after an event: its own state_after, or the last one before it in the case's trail (read order of
# spatial/cases/actions.py load_trail), through ix_case_event_case_id_at. Each event's case is read through its
# key (``case_key``: the case's month, migration 0031 — by ``gridlink_case_month``, 0033 — and its trail's first
# time, 0034) in its own month, and the state before it between the trail's first time and the event's: known
# per event only, so the executor starts only those months (run-time pruning). The case is a LATERAL sub-select
# with a LIMIT, which the planner keeps as one probe per event (it may not turn it into a join of every case).
_ROWS = text("""
SELECT e.id, e.xid, e.case_id, e.at, e.kind, e.actor, e.role,
       coalesce(e.state_after, (SELECT p.state_after FROM case_event p
                                WHERE p.case_id = e.case_id AND p.state_after IS NOT NULL
                                  AND (p.at, p.id) < (e.at, e.id)
                                  AND p.at BETWEEN coalesce(c.trail_from, '-infinity') AND e.at
                                ORDER BY p.at DESC, p.id DESC LIMIT 1)) AS state,
       c.grid_code, c.special_grid_codes, c.owner_key, c.category_code, c.assist_keys
FROM case_event e
CROSS JOIN LATERAL (SELECT k.trail_from, x.grid_code, x.special_grid_codes, x.owner_key, x.category_code,
                           x.assist_keys
                    FROM case_key k JOIN "case" x ON x.id = k.id
                    WHERE k.id = e.case_id AND x.reported_at = gridlink_case_month(e.case_id) LIMIT 1) c
WHERE e.xid >= :xid AND e.xid < :below AND (e.xid, e.id) > (:xid, :id)
ORDER BY e.xid, e.id
LIMIT :n
""")
_SETTLE = text("SET LOCAL enable_seqscan = off; SET LOCAL max_parallel_workers_per_gather = 0")
_POSITION = text("SELECT xid FROM case_event WHERE id = :id")
MAX_EVENT_ID = 2**62


@dataclass(frozen=True)
class FeedEvent:
    """One committed case event with what the filters read."""

    id: int
    xid: int
    case_id: int
    at: datetime
    kind: str
    state: str | None
    actor: str
    role: str | None
    grid_code: str
    special_grid_codes: tuple[str, ...]
    owner_key: str | None
    category: str
    grade: str | None
    assist_keys: tuple[str, ...] = ()

    @property
    def position(self) -> Position:
        """Where the event stands in the feed's order."""
        return (self.xid, self.id)

    def public(self) -> dict[str, Any]:
        """The event as a console receives it (no note, no data, no personal data: read the case for those)."""
        return {"id": self.id, "case_id": self.case_id, "at": self.at.isoformat(), "kind": self.kind,
                "state": self.state, "actor": self.actor, "role": self.role, "grid_code": self.grid_code,
                "owner_key": self.owner_key, "category": self.category, "grade": self.grade}


@dataclass(frozen=True)
class FeedFilter:
    """Which events a subscriber receives: its scope, then the optional area, states and grades."""

    principal: Principal
    area: str | None = None
    states: frozenset[str] = frozenset()
    grades: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[Any, ...]:
        """What ``admits`` depends on: subscribers with equal keys admit the same events (one group)."""
        return (self.principal.scope, self.principal.role in KEY_ROLES, self.area, self.states, self.grades)

    def admits(self, event: FeedEvent) -> bool:
        """Whether the subscriber may and wants to see ``event``."""
        if not may_read(self.principal, grid_code=event.grid_code, special_codes=event.special_grid_codes,
                        owner_key=event.owner_key, assist_keys=event.assist_keys):
            return False
        if self.area is not None and not covers(self.area, event.grid_code, event.special_grid_codes):
            return False
        if self.states and event.state not in self.states:
            return False
        return not self.grades or event.grade in self.grades


def feed_filter(principal: Principal, *, area: str | None = None, state: str | None = None,
                grade: str | None = None) -> FeedFilter:
    """The filter of a subscription from its query parameters (comma-separated lists of states and grades).

    Raises:
        InvalidParameterError: an unknown state or grade, an area that is no grid code. ForbiddenError: an
        area outside an area-scoped caller's scope.
    """
    states = _listed(state, STATES, "state")
    grades = _listed(grade, GRADES, "grade")
    if area is not None:
        if not (AREA_CODE.match(area) or SPECIAL_CODE.match(area)):
            raise InvalidParameterError("area must be a grid code of 6, 9, 12 or 15 digits, or a special grid code",
                                        parameter="area")
        inside = (principal.scope in ("*", area) or principal.role in KEY_ROLES
                  or (not SPECIAL_CODE.match(principal.scope) and area.startswith(principal.scope)))
        if not inside:
            raise ForbiddenError(f"area {area} lies outside your scope {principal.scope}", area=area,
                                 scope=principal.scope)
    return FeedFilter(principal, area, states, grades)


def _listed(value: str | None, allowed: tuple[str, ...], name: str) -> frozenset[str]:
    if not value:
        return frozenset()
    given = frozenset(v.strip() for v in value.split(","))
    unknown = sorted(given - set(allowed))
    if unknown:
        raise InvalidParameterError(f"unknown {name} {', '.join(unknown)} (one or more of {', '.join(allowed)})",
                                    parameter=name)
    return given


def parse_event_id(value: str | None) -> int | None:
    """The case_event id a ``Last-Event-ID`` header names (None when absent); InvalidParameterError otherwise."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 18 and 0 < int(value) < MAX_EVENT_ID):
        raise InvalidParameterError("Last-Event-ID must be the id of an event this feed sent",
                                    parameter="Last-Event-ID")
    return int(value)


Batch = list[FeedEvent]  # the events of one poll page one group of subscribers admits, in feed order


@dataclass(eq=False)
class Subscription:
    """One connected client: its filter, where it resumes, and the queue of batches the follower fills
    (``queued`` events in all, at most ``limit``; ``None`` in the queue ends the stream)."""

    filter: FeedFilter
    after: Position | None  # the Last-Event-ID's position; None: from the moment of subscribing
    replay_below: int  # the watermark when it subscribed: older rows come from the database
    limit: int = 10_000
    queue: asyncio.Queue[Batch | None] = field(default_factory=asyncio.Queue)
    queued: int = 0
    overflowed: bool = False


class Feed:
    """The per-process poller and its subscribers (create it in the server's lifespan, ``close`` it after)."""

    def __init__(self, engine: Engine, ref: ReferenceCache, *, interval: float = 0.2, page: int = 1000,
                 queue_size: int = 10_000, per_caller: int = 4, max_subscribers: int = 500) -> None:
        self.engine, self.ref, self.interval, self.page = engine, ref, interval, page
        self.queue_size, self.per_caller, self.max_subscribers = queue_size, per_caller, max_subscribers
        self.subscribers: set[Subscription] = set()
        self.watermark = 0  # every row with xid below it has been handed out
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    async def admit(self, flt: FeedFilter, last_event_id: int | None = None) -> Position | None:
        """Whether the caller may follow one more stream, and where it resumes: the position of
        ``last_event_id`` (None: from the moment it subscribes). Called before the reply starts, so that a
        refusal is still a problem+json.

        Raises:
            InvalidParameterError: ``last_event_id`` names no event the feed could have sent.
            TooManyRequestsError: the caller already holds ``per_caller`` streams, or the process is full.
        """
        if self._closed:
            raise TooManyRequestsError("the server is stopping: reconnect in a moment", retry_after=1)
        if len(self.subscribers) >= self.max_subscribers:
            raise TooManyRequestsError("this server process follows as many feeds as it may", retry_after=5)
        mine = sum(1 for s in self.subscribers if s.filter.principal.account_id == flt.principal.account_id)
        if mine >= self.per_caller:
            raise TooManyRequestsError(f"an account may follow at most {self.per_caller} feeds at once",
                                       retry_after=5)
        return None if last_event_id is None else await self._position(last_event_id)

    async def subscribe(self, flt: FeedFilter, after: Position | None) -> Subscription:
        """Register a subscriber (admitted by ``admit``) resuming after ``after``; start the poller if it
        is the first. Call it where the stream's ``finally`` will ``unsubscribe`` it."""
        async with self._lock:
            if self._poller is None or self._poller.done():
                self.watermark = await asyncio.to_thread(self._read_watermark)
                self._poller = asyncio.create_task(self._poll_forever(), name="gridlink-feed")
            sub = Subscription(flt, after, self.watermark, self.queue_size)
            self.subscribers.add(sub)
        if self._closed:
            _offer(sub, None)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscriber (its stream ended); the poller stops with the last one."""
        self.subscribers.discard(sub)

    async def events(self, sub: Subscription, heartbeat: float = 15.0) -> AsyncIterator[Batch]:
        """The subscriber's events in feed order, in batches: first what it missed (from the database, page by
        page), then live ones — each time everything queued so far, as one batch; an empty batch after
        ``heartbeat`` seconds of silence. Ends when the feed closes or the subscriber is cut off as too slow
        (``sub.overflowed``: its backlog is dropped, it resumes from the database)."""
        if sub.after is not None:
            async for page in self._replay(sub, sub.after):
                yield page
        while True:
            try:
                first = await asyncio.wait_for(sub.queue.get(), heartbeat)
            except TimeoutError:
                yield []
                continue
            batches = [first]
            while batches[-1] is not None and not sub.queue.empty():
                batches.append(sub.queue.get_nowait())
            live: Batch = []
            for batch in batches:
                if batch is None:
                    break
                sub.queued -= len(batch)
                live.extend(batch if sub.after is None else (e for e in batch if e.position > sub.after))
            if live:
                yield live
            if batches[-1] is None or sub.overflowed:
                return

    async def close(self) -> None:
        """Stop polling and end every stream."""
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except (asyncio.CancelledError, Exception):
                log.debug("feed poller ended", exc_info=True)
        for sub in list(self.subscribers):
            _offer(sub, None)

    # -- inside

    async def _position(self, event_id: int) -> Position:
        xid = await asyncio.to_thread(self._read, lambda c: c.execute(_POSITION, {"id": event_id}).scalar())
        if xid is None:  # no such event, or one written before the feed existed (migration 0018_case_event_xid)
            raise InvalidParameterError(f"no event {event_id} in the feed: reconnect without Last-Event-ID",
                                        parameter="Last-Event-ID")
        return (xid, event_id)

    async def _replay(self, sub: Subscription, position: Position) -> AsyncIterator[Batch]:
        """The rows after ``position`` below the subscriber's first watermark, page by page."""
        while position[0] < sub.replay_below:
            rows = await asyncio.to_thread(self._rows, position, sub.replay_below)
            admitted = [event for event in rows if sub.filter.admits(event)]
            if admitted:
                yield admitted
            if len(rows) < self.page:
                return
            position = rows[-1].position

    async def _poll_forever(self) -> None:
        while self.subscribers and not self._closed:
            try:
                async with self._lock:
                    await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away or slow: keep the subscribers, try again
                log.exception("feed poll failed")
                await asyncio.sleep(1)
            await asyncio.sleep(self.interval)

    async def _poll_once(self) -> None:
        """Hand out every row between the last watermark and the current one."""
        below = await asyncio.to_thread(self._read_watermark)
        position: Position = (self.watermark, 0)
        while below > self.watermark:
            rows = await asyncio.to_thread(self._rows, position, below)
            if rows:
                self._fan_out(rows)
            if len(rows) < self.page:
                break
            position = rows[-1].position
        self.watermark = max(self.watermark, below)

    def _fan_out(self, rows: list[FeedEvent]) -> None:
        """Hand one page of rows to the subscribers: each group's filter once per event, one shared batch."""
        groups: dict[tuple[Any, ...], list[Subscription]] = {}
        for sub in self.subscribers:
            groups.setdefault(sub.filter.key, []).append(sub)
        for subs in groups.values():
            admits = subs[0].filter.admits
            batch = [event for event in rows if admits(event)]
            if batch:
                for sub in subs:
                    _offer(sub, batch)

    def _read(self, work: Callable[[Any], T]) -> T:
        with self.engine.connect() as conn:
            return work(conn)

    def _read_watermark(self) -> int:
        """The lowest id of a transaction of this database still in progress, or the next id: every row with
        an xid below it is final."""
        def read(conn: Any) -> int:
            snapshot = conn.execute(_SNAPSHOT).one()
            here = set(conn.execute(_HERE).scalar_one())
            ours = [x for x in snapshot.running if x & 0xFFFFFFFF in here]  # backend_xid is the 32-bit form
            return int(min(ours, default=snapshot.next))
        return self._read(read)

    def _rows(self, after: Position, below: int) -> list[FeedEvent]:
        """Rows after ``after`` with an xid below ``below``, in feed order, one page."""
        params = {"xid": after[0], "id": after[1], "below": below, "n": self.page}

        def read(conn: Any) -> list[Any]:
            # Through the BRIN index, whatever the statistics say: a plan that scans the table (millions of
            # events) five times a second per process is the one thing this read must never do.
            conn.execute(_SETTLE)
            return list(conn.execute(_ROWS, params).all())
        rows = self._read(read)
        categories = self.ref.categories
        return [FeedEvent(r.id, r.xid, r.case_id, r.at, r.kind, r.state, r.actor, r.role, r.grid_code,
                          tuple(r.special_grid_codes or ()), r.owner_key, r.category_code,
                          categories[r.category_code].grade if r.category_code in categories else None,
                          tuple(r.assist_keys or ()))
                for r in rows]


def _offer(sub: Subscription, batch: Batch | None) -> None:
    """Queue ``batch`` for ``sub`` (``None``: end its stream). A subscriber whose backlog would pass its limit
    is cut off: its backlog is dropped at once and its stream ends (it reconnects and replays from the
    database)."""
    if sub.overflowed:
        return
    if batch is not None and sub.queued + len(batch) > sub.limit:
        sub.overflowed = True
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queued, batch = 0, None
    elif batch is not None:
        sub.queued += len(batch)
    sub.queue.put_nowait(batch)
