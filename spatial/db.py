"""Database URL resolution and engine creation (never at import time)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, create_engine

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


def make_engine(url: str, settings: DatabaseSettings, *, request_timeouts: bool = True) -> Engine:
    """Create an engine with pre-ping and (for request work) a statement timeout."""
    options = f"-c statement_timeout={settings.statement_timeout_ms}" if request_timeouts else ""
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        connect_args={"options": options, "application_name": "gridlink"},
    )
