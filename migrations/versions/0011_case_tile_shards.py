"""Case tile invalidation without NOTIFY: a counter row per database backend, bumped in the writing transaction.

Measured (bench/intake.py): NOTIFY on every intake statement cost the HTTP path ~17 % (each server worker
woke for every case), and a notification lands a moment after the commit. Instead each backend bumps its own
row of ``tile_case_shard`` (no two transactions wait on the same row) and a tile request reads the sum,
which changes exactly when a case change commits — the next request sees it. ENABLE ALWAYS as in 0010.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION gridlink_tiles_bump_cases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tile_case_shard (pid, n) VALUES (pg_backend_pid(), 1)
    ON CONFLICT (pid) DO UPDATE SET n = tile_case_shard.n + 1;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute('DROP TRIGGER IF EXISTS case_tiles ON "case"')
    op.execute("DROP FUNCTION IF EXISTS gridlink_tiles_notify()")
    op.execute("CREATE TABLE tile_case_shard (pid integer PRIMARY KEY, n bigint NOT NULL)")
    op.execute(FUNCTION)
    op.execute('CREATE TRIGGER case_tiles AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "case"'
               " FOR EACH STATEMENT EXECUTE FUNCTION gridlink_tiles_bump_cases()")
    op.execute('ALTER TABLE "case" ENABLE ALWAYS TRIGGER case_tiles')


def downgrade() -> None:
    op.execute('DROP TRIGGER IF EXISTS case_tiles ON "case"')
    op.execute("DROP FUNCTION IF EXISTS gridlink_tiles_bump_cases()")
    op.execute("DROP TABLE IF EXISTS tile_case_shard")
    op.execute("""
CREATE OR REPLACE FUNCTION gridlink_tiles_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridlink_tiles', TG_ARGV[0]);
    RETURN NULL;
END $$;
""")
    op.execute('CREATE TRIGGER case_tiles AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "case"'
               " FOR EACH STATEMENT EXECUTE FUNCTION gridlink_tiles_notify('cases')")
    op.execute('ALTER TABLE "case" ENABLE ALWAYS TRIGGER case_tiles')
