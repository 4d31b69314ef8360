"""The pool hands out live connections: an idle connection whose server process died is replaced."""

from __future__ import annotations

from sqlalchemy import text

import spatial.store.db
from spatial.settings import DatabaseSettings
from spatial.store.db import make_engine


def test_dead_idle_connection_is_replaced(engine, monkeypatch) -> None:
    pooled = make_engine(engine.url.render_as_string(hide_password=False), DatabaseSettings(), request_timeouts=True)
    try:
        with pooled.connect() as conn:
            victim = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "30s"
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        monkeypatch.setattr(spatial.store.db, "IDLE_PING_SECONDS", 0.0)
        with pooled.connect() as conn:  # the ping fails, the pool reconnects, the caller never sees it
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != victim
    finally:
        pooled.dispose()
