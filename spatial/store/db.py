"""Database URL resolution and engine creation (never at import time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError

from spatial.settings import DatabaseSettings
from spatial.store.cluster import Cluster
from spatial.store.routing import ReadRouter
from spatial.store.sql import UNPREPARED


def database_url(settings: DatabaseSettings, dbname: str | None = None, log: Callable = print) -> str:
    """Return the SQLAlchemy URL: ``GRIDLINK_DATABASE_URL`` if set, else the embedded cluster (started)."""
    if settings.url is not None:
        url = settings.url.get_secret_value()
        if dbname is None:
            return url
        return url.rsplit("/", 1)[0] + "/" + dbname
    return Cluster(settings.home, log=log).ensure_database(dbname or settings.name)


def libpq_uri(url: str) -> str:
    """The libpq URI (asyncpg, psycopg 3) of a SQLAlchemy URL. Several hosts — the failover form
    ``…@/gridlink?host=h1:p1&host=h2:p2&target_session_attrs=read-write``, which psycopg2 already reads — become
    libpq's own ``postgresql://…@h1:p1,h2:p2/gridlink?target_session_attrs=read-write``."""
    parsed = make_url(url).set(drivername="postgresql")
    hosts = parsed.query.get("host")
    if not isinstance(hosts, tuple):
        return parsed.render_as_string(hide_password=False)
    single = parsed.set(host="placeholder", port=None).difference_update_query(["host"])
    rendered = single.render_as_string(hide_password=False)
    return rendered.replace("@placeholder", "@" + ",".join(quote(h, safe=":[]") for h in hosts), 1)


IDLE_PING_SECONDS = 2.0
# A request waits at most this long for a connection (new or from the pool), then gets a 503.
CONNECT_TIMEOUT_S = 5


def make_engine(url: str, settings: DatabaseSettings, *, request_timeouts: bool = True) -> Engine:
    """Create an engine that pings idle connections before use and (for requests) has a statement timeout.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per request on the hot intake
    route. A connection that was in use within the last ``IDLE_PING_SECONDS`` is handed out as it is;
    an idle one is pinged first, and a dead one is replaced before any request sees it.
    """
    # PgBouncer refuses the options startup parameter: behind it the role carries the timeout.
    timeout = request_timeouts and not settings.pgbouncer
    options = {"options": f"-c statement_timeout={settings.statement_timeout_ms}"} if timeout else {}
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        connect_args={**options, "application_name": "gridlink", "connect_timeout": CONNECT_TIMEOUT_S},
        pool_timeout=CONNECT_TIMEOUT_S,
        # An error's message (a 500's log line, a traceback) never carries the values sent: personal data, or
        # the over-long value that made an insert fail (issue 23, finding 12).
        hide_parameters=True,
    )
    if settings.pgbouncer:  # no session state: statements prepared per connection would be lost (or clash)
        event.listen(engine, "connect", _unprepared)
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_use)
    return engine


def _unprepared(dbapi_connection, record) -> None:
    record.info[UNPREPARED] = True


def _note_use(dbapi_connection, record) -> None:
    record.info["last_used"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, proxy) -> None:
    if time.monotonic() - record.info.get("last_used", 0.0) < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    except Exception as exc:  # any failure means the connection is gone: let the pool open a new one
        raise DisconnectionError("idle connection failed its ping") from exc


async def make_intake_pool(url: str, settings: DatabaseSettings) -> Any:
    """Create the asyncpg pool of the lean intake path (api/fast_intake.py): single-statement writes.

    Its connections run every statement in autocommit (one statement, atomic on its own: no BEGIN/COMMIT
    round trips), prepare each statement once and keep one generic plan for it (the statements are large;
    custom plans would re-plan them per call), and carry the request statement timeout. They hold no
    session state, so the pool's per-release ``RESET ALL`` round trip is skipped.
    """
    import asyncpg

    async def keep(connection) -> None:
        """Nothing to reset: these connections never change session state."""

    session: dict[str, Any] = {"server_settings": {
        "plan_cache_mode": "force_generic_plan", "application_name": "gridlink-intake",
        "statement_timeout": str(settings.statement_timeout_ms)}}
    if settings.pgbouncer:  # no startup settings, no statement kept prepared on a shared server connection
        session = {"server_settings": {"application_name": "gridlink-intake"}, "statement_cache_size": 0}
    return await asyncpg.create_pool(
        libpq_uri(url),
        min_size=1, max_size=settings.pool_size, reset=keep, timeout=CONNECT_TIMEOUT_S,
        command_timeout=settings.statement_timeout_ms / 1000, **session,
    )


def make_read_router(primary: Engine, settings: DatabaseSettings) -> ReadRouter:
    """The router of heavy reads over the replicas of ``settings.read_url_list()`` (none: all on ``primary``)."""
    return ReadRouter(primary, [make_engine(url, settings) for url in settings.read_url_list()],
                      max_lag_bytes=settings.read_max_lag_bytes, max_lag_s=settings.read_max_lag_s,
                      check_every_s=settings.read_check_every_s)
