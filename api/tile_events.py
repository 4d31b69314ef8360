"""Listening for committed case changes (``NOTIFY gridlink_tiles``) so that cached case tiles are dropped.

One asyncpg connection per worker process, kept open for the app's life; if it drops (database restart),
case tiles stop being cached until it is back — notifications missed meanwhile cannot make a tile stale.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from sqlalchemy import make_url

from tiles.cache import TileCache


async def listen(url: str, cache: TileCache) -> None:
    """Keep ``cache`` told about case changes until cancelled (reconnecting after failures)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            await asyncio.sleep(1)
            continue
        try:
            conn.add_termination_listener(lambda _conn, event=lost: event.set())
            await conn.add_listener("gridlink_tiles", lambda *_args: cache.cases_changed())
            cache.cases_changed()  # whatever happened while nobody listened
            cache.cases_live = True
            await lost.wait()
        finally:
            cache.cases_live = False
            cache.cases_changed()
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
        await asyncio.sleep(1)
