"""The schema changes only through Alembic: upgrade, check, downgrade and upgrade again all pass."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

from migrations import alembic_config
from spatial.store.models import Base
from tests.conftest import fresh_database


def test_upgrade_check_downgrade_roundtrip() -> None:
    url = fresh_database("gridlink_test_migrations")
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.check(config)  # raises when the models and the migrated schema differ
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    command.downgrade(config, "base")
    assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
    command.upgrade(config, "head")
    engine.dispose()


def test_every_geometry_has_a_gist_index_and_a_validity_check(engine) -> None:
    with engine.connect() as conn:
        columns = conn.execute(text(
            "SELECT f_table_name, f_geometry_column FROM geometry_columns WHERE f_table_schema = 'public'"
        )).all()
        assert {t for t, _ in columns} >= {"grid_geometry", "component", "case"}
        for table, column in columns:
            gist = conn.execute(text(
                "SELECT count(*) FROM pg_indexes WHERE tablename = :t AND indexdef ILIKE '%USING gist%'"
                " AND indexdef ILIKE '%' || :c || '%'"
            ), {"t": table, "c": column}).scalar()
            assert gist >= 1, f"{table}.{column} has no GiST index"
            check = conn.execute(text(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"
                " AND pg_get_constraintdef(oid) ILIKE '%st_isvalid(' || :c || ')%'"
            ), {"t": f'"{table}"', "c": column}).scalar()
            assert check == 1, f"{table}.{column} has no validity check"
