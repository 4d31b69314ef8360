"""Shared fixtures: real PostGIS databases built by our own migrations (never mocks, never SQLite).

Databases live in the embedded cluster (or on the server of ``GRIDLINK_DATABASE_URL``), one per purpose,
each created fresh for the session: ``gridlink_test`` (empty schema; every test in a rolled-back
transaction), ``gridlink_test_small`` (the small demo) and ``gridlink_test_full`` (the full-scale demo, kept
between runs while its fingerprint matches, because it takes minutes to build).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from spatial.settings import DatabaseSettings
from spatial.store.cluster import ClusterError
from spatial.store.db import database_url

# Tests submit many anonymous Open311 requests from one address: the public rate limit (api/rate_limit.py)
# is lifted for them, apps and servers alike, except where test_open311.py checks the limit itself.
os.environ.setdefault("GRIDLINK_API_PUBLIC_PER_MINUTE", "1000000")
os.environ.setdefault("GRIDLINK_API_PUBLIC_BURST", "1000000")


def _server_url(dbname: str) -> str:
    try:
        return database_url(DatabaseSettings(), dbname, log=lambda *_: None)
    except ClusterError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostGIS available: {exc}")
        raise


def fresh_database(dbname: str, keep: bool = False) -> str:
    """Create ``dbname`` (dropping it first unless ``keep``) and return its URL. ``GRIDLINK_TEST_DB_SUFFIX``
    is appended to every test database's name, so that two test runs can share one server."""
    dbname += os.environ.get("GRIDLINK_TEST_DB_SUFFIX", "")
    admin = create_engine(_server_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": dbname}).scalar()
        if exists and not keep:
            conn.execute(text(f'DROP DATABASE "{dbname}" WITH (FORCE)'))
        if not exists or not keep:
            conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    admin.dispose()
    return _server_url(dbname)


def migrated_engine(dbname: str, keep: bool = False) -> Engine:
    """Return an engine on ``dbname`` upgraded to head by our Alembic revisions."""
    from alembic import command

    from migrations import alembic_config

    url = fresh_database(dbname, keep=keep)
    command.upgrade(alembic_config(url), "head")
    return create_engine(url)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """An empty, migrated database with the reference tables loaded."""
    from spatial.reference.load import load_reference

    eng = migrated_engine("gridlink_test")
    with eng.begin() as conn:
        load_reference(conn)
    yield eng
    eng.dispose()


def rolled_back(eng: Engine) -> Iterator[Connection]:
    """Yield a connection whose transaction is rolled back afterwards."""
    with eng.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction is rolled back after the test."""
    yield from rolled_back(engine)


@pytest.fixture(scope="session")
def small_demo() -> Iterator[Engine]:
    """A database holding the small demo."""
    from spatial.demo.build import build_demo

    eng = migrated_engine("gridlink_test_small")
    build_demo(eng, small=True, progress=False)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def full_demo() -> Iterator[Engine]:
    """A database holding the full-scale demo (rebuilt only when the generator changed)."""
    from spatial.demo.build import build_demo

    eng = migrated_engine("gridlink_test_full", keep=True)
    build_demo(eng, small=False, force=True, progress=True)
    yield eng
    eng.dispose()


TEST_ADMIN = "test-admin"  # the world's administrator: the HTTP clients of the tests call as this account
TEST_PASSWORD = "correct horse battery staple"
_ADMIN_TOKEN: list[str] = []


def admin_headers() -> dict[str, str]:
    """The Authorization header of the world's administrator (after ``world_engine`` has run)."""
    return {"Authorization": f"Bearer {_ADMIN_TOKEN[-1]}"}


def world_database(dbname: str) -> Engine:
    """A new database ``dbname`` holding the known-answer world of tests/world.py and its administrator."""
    from spatial.access.accounts import add_user
    from spatial.reference.load import load_reference
    from tests.world import build_world

    eng = migrated_engine(dbname)
    with eng.begin() as connection:
        load_reference(connection)
        build_world(connection)
        add_user(connection, TEST_ADMIN, role="admin", scope="*", password=TEST_PASSWORD)
    return eng


@pytest.fixture(scope="session")
def world_engine() -> Iterator[Engine]:
    """A database holding the known-answer world of tests/world.py (committed)."""
    from spatial.access.accounts import create_token

    eng = world_database("gridlink_test_world")
    with eng.begin() as connection:
        _ADMIN_TOKEN.append(create_token(connection, TEST_ADMIN, label="tests", ttl=None)[0])
    yield eng
    eng.dispose()


@pytest.fixture
def world(world_engine: Engine) -> Iterator[Connection]:
    """A connection to the world whose transaction is rolled back after the test."""
    yield from rolled_back(world_engine)


@pytest.fixture(scope="module")
def world_client(world_engine: Engine):
    """An HTTP test client of the app on the world database."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(url=world_engine.url.render_as_string(hide_password=False)),
                    headers=admin_headers()) as client:
        yield client


@pytest.fixture
def client(world_client, no_cases):
    """The world's HTTP client, with no cases stored before the test (modules may override it)."""
    return world_client


@pytest.fixture
def no_cases(world_engine: Engine) -> None:
    """Empty the case tables of the world (HTTP tests commit)."""
    with world_engine.begin() as connection:
        connection.execute(text('TRUNCATE case_photo, case_unit, case_event, "case" RESTART IDENTITY'))


@pytest.fixture
def reference(world_engine: Engine):
    """The reference cache of the world database."""
    from spatial.reference.cache import ReferenceCache

    with world_engine.connect() as connection:
        return ReferenceCache.load(connection)
