"""Database URL resolution and engine creation (never at import time)."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

from spatial.cluster import Cluster
from spatial.settings import DatabaseSettings


def database_url(settings: DatabaseSettings, dbname: str | None = None, log: Callable = print) -> str:
    """Return the SQLAlchemy URL: ``GRIDLINK_DATABASE_URL`` if set, else the embedded cluster (started)."""
    if settings.url is not None:
        url = settings.url.get_secret_value()
        if dbname is None:
            return url
        return url.rsplit("/", 1)[0] + "/" + dbname
    return Cluster(settings.home, log=log).ensure_database(dbname or settings.name)


IDLE_PING_SECONDS = 2.0


def make_engine(url: str, settings: DatabaseSettings, *, request_timeouts: bool = True,
                autocommit: bool = False) -> Engine:
    """Create an engine that pings idle connections before use and (for requests) has a statement timeout.

    ``autocommit=True`` makes a pool whose connections are in autocommit mode for their whole life, for
    writes that are one statement (atomic on their own): no BEGIN/COMMIT round trips, and no isolation
    level switched on checkout and reset on return, which a per-connection ``AUTOCOMMIT`` option costs.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per request on the hot intake
    route. A connection that was in use within the last ``IDLE_PING_SECONDS`` is handed out as it is;
    an idle one is pinged first, and a dead one is replaced before any request sees it.
    """
    options = f"-c statement_timeout={settings.statement_timeout_ms}" if request_timeouts else ""
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        connect_args={"options": options, "application_name": "gridlink"},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_use)
    return engine


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
