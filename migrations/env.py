"""Alembic environment: our metadata, GeoAlchemy2's helpers, online migrations only."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from spatial.store.models import Base
from spatial.store.partitions import is_partition

config = context.config
target_metadata = Base.metadata

# PostGIS/topology/tiger own these tables, procrastinate the procrastinate_* ones; not ours to compare.
FOREIGN_TABLES = {"spatial_ref_sys", "topology", "layer"}


def include_object(obj, name, type_, reflected, compare_to):
    """Skip PostGIS's own tables, then defer to GeoAlchemy2 (it handles spatial indexes)."""
    if type_ == "table" and (name in FOREIGN_TABLES or name.startswith("procrastinate_")):
        return False  # procrastinate's job tables come from its own schema (migration 0016_scheduler)
    if type_ == "table" and is_partition(name):
        return False  # a month of a partitioned table, made by pg_partman (migration 0028_monthly_partitions)
    if type_ == "foreign_key_constraint" and reflected and is_partition(obj.referred_table.name):
        return False  # PostgreSQL's own copy, per month, of a foreign key to a partitioned table (0031: case_key)
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run_migrations_online() -> None:
    """Run the migrations over one connection, in one transaction."""
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    """Configure the context on ``connection`` and run the pending revisions."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
