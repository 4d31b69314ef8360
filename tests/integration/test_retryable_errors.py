"""A write the database rolled back to break a deadlock (40P01) or a serialization failure (40001) is the
caller's to retry, not a bug: both drivers' errors answer 503 problem+json with Retry-After (api/problems.py
``database_unavailable``), as a database that is away does. Raised by the real server here, by SQLSTATE."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from api.problems import database_unavailable

RAISE = "DO $$ BEGIN RAISE EXCEPTION 'rolled back' USING ERRCODE = '{code}'; END $$"


@pytest.mark.parametrize("code", ["40P01", "40001"])
def test_rolled_back_transactions_are_retryable_on_both_drivers(engine: Engine, code: str) -> None:
    with pytest.raises(Exception) as caught, engine.connect() as conn:  # psycopg2, wrapped by SQLAlchemy
        conn.execute(text(RAISE.format(code=code)))
    assert getattr(caught.value.orig, "pgcode", None) == code  # type: ignore[attr-defined]
    assert database_unavailable(caught.value)

    url = make_url(engine.url)

    async def lean() -> BaseException:
        conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                                     database=url.database)
        try:
            await conn.execute(RAISE.format(code=code))
        except asyncpg.PostgresError as exc:
            return exc
        finally:
            await conn.close()
        raise AssertionError("not raised")

    error = asyncio.run(lean())
    assert error.sqlstate == code  # type: ignore[attr-defined]
    assert database_unavailable(error)


def test_a_constraint_violation_is_not_retryable(engine: Engine) -> None:
    with pytest.raises(Exception) as caught, engine.connect() as conn:
        conn.execute(text(RAISE.format(code="23505")))
    assert not database_unavailable(caught.value)
