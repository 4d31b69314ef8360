"""The live feed for consoles: ``GET /api/v1/events/stream``, Server-Sent Events (issue 17 item 6).

Each committed case event the caller may read (spatial/access/scope.py's case rule), narrowed by ``?area=``,
``?state=`` and ``?grade=``, is one SSE message: ``id`` the case_event id, ``data`` the event as JSON. A client
that reconnects with ``Last-Event-ID`` (browsers' EventSource does so by itself) receives what it missed and
nothing twice (the order and its proof: spatial/cases/feed.py). A comment line every 15 s keeps proxies from
closing a quiet stream. Bounded costs (SECURITY.md): at most ``GRIDLINK_API_FEED_PER_CALLER`` streams per
account and ``GRIDLINK_API_FEED_MAX`` per process (429 with ``Retry-After`` beyond), and a stream ends after
``GRIDLINK_API_FEED_MAX_SECONDS``, whereupon the client resumes with its ``Last-Event-ID`` — which also lets a
server stop within that time while consoles are connected. Each write carries every event queued since the
last one; a client too slow for its backlog is cut off with a longer ``retry`` and resumes from its last id.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from functools import lru_cache

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import AuthenticatedRoute, PrincipalDep
from spatial.cases.feed import Feed, FeedEvent, FeedFilter, Position, feed_filter, parse_event_id

router = APIRouter(prefix="/api/v1", tags=["workflow"], route_class=AuthenticatedRoute)
RETRY_MS = 1000  # how long EventSource waits before it reconnects
SLOW_RETRY_MS = 5000  # ... after the server cut it off as too slow (spatial/cases/feed.py)


@lru_cache(maxsize=4096)  # an event goes to many consoles: encoded once
def sse_message(event: FeedEvent) -> bytes:
    """One SSE message: ``id`` and a one-line JSON ``data`` (json.dumps escapes every line break)."""
    data = json.dumps(event.public(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\ndata: {data}\n\n".encode()


@router.get("/events/stream", summary="Live case events (Server-Sent Events; resume with Last-Event-ID)",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def stream(
    request: Request, principal: PrincipalDep,
    area: str | None = Query(default=None, max_length=16, description="grid code of any level or special grid"),
    state: str | None = Query(default=None, max_length=100, description="states after the event, comma-separated"),
    grade: str | None = Query(default=None, max_length=10, description="category grades A, B, C, comma-separated"),
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID", max_length=32),
) -> StreamingResponse:
    """Follow the case events the caller may read, from now or after ``Last-Event-ID``."""
    flt = feed_filter(principal, area=area, state=state, grade=grade)
    feed: Feed = request.app.state.feed
    after = await feed.admit(flt, parse_event_id(last_event_id))
    lifetime = request.app.state.api_settings.feed_max_seconds
    return StreamingResponse(_messages(feed, flt, after, lifetime), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _messages(feed: Feed, flt: FeedFilter, after: Position | None, lifetime: float) -> AsyncIterator[bytes]:
    """The stream's bytes; subscribing here, where ``finally`` always unsubscribes (a reply that never started
    leaves no subscriber behind)."""
    ends = time.monotonic() + lifetime
    sub = await feed.subscribe(flt, after)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        async for batch in feed.events(sub, heartbeat=min(15.0, lifetime)):
            # One chunk per batch (everything queued since the last write), not one write per event.
            yield b"".join(sse_message(event) for event in batch) if batch else b": keep-alive\n\n"
            if time.monotonic() >= ends:
                return
        if sub.overflowed:  # cut off as too slow: come back later, from the last id received
            yield f": too slow, resume with Last-Event-ID\nretry: {SLOW_RETRY_MS}\n\n".encode()
    finally:
        feed.unsubscribe(sub)
