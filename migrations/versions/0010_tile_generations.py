"""Tile cache invalidation (tiles/cache.py): what changed since a tile was built.

- Grids and components change rarely and in batches: statement triggers bump ``tile_generation`` in the
  same transaction, so a tile request that starts after the commit sees the new generation — the very next
  request shows the change.
- Cases change at intake rates: a row counter would serialise intake, so their statement trigger sends
  ``NOTIFY gridlink_tiles, 'cases'`` instead, which PostgreSQL delivers when the transaction commits; the
  cache drops its case tiles on receipt (milliseconds after the commit).
All triggers are ENABLE ALWAYS so that bulk loads under ``session_replication_role = replica`` count too.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COUNTED = {"grid": "grids", "grid_geometry": "grids", "component": "components"}

FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridlink_tiles_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tile_generation SET generation = generation + 1 WHERE name = TG_ARGV[0];
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gridlink_tiles_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridlink_tiles', TG_ARGV[0]);
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("CREATE TABLE tile_generation (name text PRIMARY KEY, generation bigint NOT NULL)")
    op.execute("INSERT INTO tile_generation VALUES ('grids', 1), ('components', 1)")
    op.execute(FUNCTIONS)
    for table, group in COUNTED.items():
        op.execute(f"CREATE TRIGGER {table}_tiles AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION gridlink_tiles_bump('{group}')")
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_tiles")
    op.execute('CREATE TRIGGER case_tiles AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "case"'
               " FOR EACH STATEMENT EXECUTE FUNCTION gridlink_tiles_notify('cases')")
    op.execute('ALTER TABLE "case" ENABLE ALWAYS TRIGGER case_tiles')


def downgrade() -> None:
    op.execute('DROP TRIGGER IF EXISTS case_tiles ON "case"')
    for table in COUNTED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_tiles ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gridlink_tiles_notify()")
    op.execute("DROP FUNCTION IF EXISTS gridlink_tiles_bump()")
    op.execute("DROP TABLE IF EXISTS tile_generation")
