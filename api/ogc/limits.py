"""What one request may cost on /ogc (SECURITY.md "Cost limits on /ogc"; issue 23, finding 6).

- ``OgcSettings`` (env prefix ``GRIDLINK_OGC_``): the limits below, read when the app starts.
- ``budgeted``: every read of a request runs in one transaction whose statements each stop after
  ``statement_timeout_ms`` (``SET LOCAL statement_timeout``; the pool's 30 s default holds elsewhere). A
  statement stopped there is a 503 OGC exception (``QueryBudgetError``) with ``Retry-After``, never a 500.
- ``HeavyLane``: expensive requests — feature pages with a CQL2 ``filter`` — run on threads of their own
  (``heavy_threads``, with ``heavy_queue`` more waiting), apart from the threads serving the rest of /ogc
  (landing pages, collections, unfiltered pages, single items, tiles), and one caller (an account, or an
  address for anonymous callers) may have at most ``per_caller`` of them in flight: more is a 429, a full
  lane a 503, both OGC exceptions with ``Retry-After``, screened before the request is parsed and answered
  after half a second. Six callers' filters at once once stalled every /ogc request for half a minute; now
  they wait for each other, and nothing else waits for them.
- ``Failures``: whatever still escapes a route of the OGC sub-application is answered as OGC exception JSON
  — 503 when the database is away or too slow, otherwise a logged 500 — instead of Starlette's text/plain
  ``Internal Server Error``.

The CQL2 bounds (vertices, predicates, predicates no index can serve) are spatial/features/cql2.py's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.responses import Response

from api.middleware import BeforeReply
from api.problems import RETRY_AFTER_SECONDS, database_unavailable, ogc_exception
from spatial.access.principal import Principal
from spatial.errors import GridlinkError, QueryBudgetError, TooManyRequestsError, UnavailableError

log = logging.getLogger("gridlink.api")
REFUSAL_DELAY_S = 0.5  # a heavy-lane refusal is answered after this long (HeavyLane.screen)


class OgcSettings(BaseSettings):
    """The cost limits of /ogc."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINK_OGC_", extra="ignore")

    # Each statement serving an /ogc request stops after this long (the whole API's default is 30 s).
    statement_timeout_ms: int = 5_000
    # Threads serving expensive requests (feature pages with a CQL2 filter), and how many more may wait.
    heavy_threads: int = 3
    heavy_queue: int = 3
    # Expensive requests one caller may have in flight (waiting or running).
    per_caller: int = 2
    # numberMatched (spatial/features/pages.py): every page counts up to count_cap matches; beyond, the first
    # page counts them all if that takes at most count_ms (else numberMatched is left out).
    count_cap: int = 10_000
    count_ms: int = 1_500


def is_heavy(request: Request) -> bool:
    """Whether ``request`` (a GET of feature pages) takes the heavy lane: it carries a CQL2 filter."""
    return "filter" in request.query_params


def caller_key(request: Request, principal: Principal | None) -> str:
    """Who is asking, for the per-caller limit: the account, or the client address of an anonymous caller (or
    of any caller of a public collection, where the account is not looked up)."""
    if principal is not None:
        return f"account:{principal.login}"
    return f"address:{request.client.host if request.client else '?'}"


class HeavyLane:
    """The threads of expensive /ogc requests and their admission (see the module docstring). Admission and
    release run on the event loop, so the counters need no lock; a slot is held until the work is done in
    its thread, even when the client has gone (a thread cannot be stopped; the time budget bounds it)."""

    def __init__(self, settings: OgcSettings) -> None:
        self.executor = ThreadPoolExecutor(max_workers=settings.heavy_threads, thread_name_prefix="ogc-heavy")
        self.capacity = settings.heavy_threads + settings.heavy_queue
        self.per_caller = settings.per_caller
        self.in_flight: Counter[str] = Counter()

    async def screen(self, caller: str) -> None:
        """Refuse ``caller`` now, before the request is parsed, if ``run`` would: a flood of refusals should
        cost next to nothing. The refusal is answered after ``REFUSAL_DELAY_S`` (an idle wait on the event
        loop), so that a client retrying at once cannot turn refusals into a flood of their own."""
        try:
            self._admissible(caller)
        except GridlinkError:
            await asyncio.sleep(REFUSAL_DELAY_S)
            raise

    def _admissible(self, caller: str) -> None:
        if self.in_flight[caller] >= self.per_caller:
            raise TooManyRequestsError(f"at most {self.per_caller} filtered requests of one caller run at once on "
                                       "/ogc; wait for one to finish", retry_after=RETRY_AFTER_SECONDS)
        if self.in_flight.total() >= self.capacity:
            raise UnavailableError("the server is busy with other filtered requests; retry shortly",
                                   retry_after=RETRY_AFTER_SECONDS)

    async def run(self, caller: str, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on a heavy thread for ``caller``; TooManyRequestsError when the caller already
        has ``per_caller`` requests in flight, UnavailableError when the lane is full."""
        self._admissible(caller)
        loop = asyncio.get_running_loop()
        self.in_flight[caller] += 1
        try:
            future = self.executor.submit(function, *args)
        except RuntimeError:  # shut down
            self._release(caller)
            raise
        future.add_done_callback(lambda _: _soon(loop, self._release, caller))
        return await asyncio.wrap_future(future)

    def _release(self, caller: str) -> None:
        self.in_flight[caller] -= 1
        if self.in_flight[caller] <= 0:
            del self.in_flight[caller]

    def close(self) -> None:
        """Stop taking work; work not yet started is dropped."""
        self.executor.shutdown(wait=False, cancel_futures=True)


def _soon(loop: asyncio.AbstractEventLoop, callback: Callable[[str], None], caller: str) -> None:
    """Run ``callback(caller)`` on ``loop`` (from a worker thread); nothing when the loop has closed."""
    with suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, caller)



@contextmanager
def budgeted(engine: Engine, budget_ms: int) -> Iterator[Connection]:
    """A transaction on ``engine`` whose statements each stop after ``budget_ms``; a statement stopped there
    raises QueryBudgetError."""
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(budget_ms)})
            yield conn
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != QUERY_CANCELED:
            raise
        raise QueryBudgetError(
            f"the query ran over its time budget: each statement may take {budget_ms:,} ms on /ogc; narrow it "
            "(a smaller bbox or limit, a simpler filter) or retry later", retry_after=RETRY_AFTER_SECONDS) from exc


QUERY_CANCELED = "57014"  # SQLSTATE of a statement stopped by statement_timeout


class Failures(BeforeReply):
    """ASGI middleware of the OGC sub-application: an error escaping its routes becomes OGC exception JSON
    (see the module docstring). Errors after the reply has started go on to the server."""

    def answer(self, path: str, exc: Exception):
        """OGC exception JSON for any error."""
        return failure_response(path, exc)


def failure_response(path: str, exc: Exception) -> Response:
    """The OGC exception answering an unexpected error on ``path``: 503 (one log line) when the database is
    away or too slow, otherwise 500 (logged with its traceback; the reply never echoes it)."""
    if database_unavailable(exc):
        log.warning("database unavailable on %s: %s", path, type(exc).__name__)
        return ogc_exception(UnavailableError("the database cannot be reached or did not answer in time; retry "
                                              "shortly", retry_after=RETRY_AFTER_SECONDS))
    log.exception("unhandled error on %s", path)
    body = {"type": "NoApplicableCode", "code": "NoApplicableCode", "description": "internal error; it was logged"}
    return Response(json.dumps(body), status_code=500, media_type="application/json")
