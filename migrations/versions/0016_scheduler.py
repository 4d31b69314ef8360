"""Issue 17 item 3, the scheduler: procrastinate's job tables, and one reminder / supervision order per step.

The scheduler (spatial/cases/scheduler.py, run by spatial/cases/jobs.py) appends ``remind`` (提醒) and
``supervise`` (督办) events. A unique index on (case, kind, data.step, data.deadline) over those two kinds makes a
doubled order impossible whatever number of workers or server processes run, and a check makes both keys
mandatory on them (a NULL would slip past the index). procrastinate's own schema (its tables, functions and
triggers, all named ``procrastinate_*``) is the one of the pinned procrastinate release (pyproject.toml); a
later release's schema changes come as a new revision applying its ``sql/migrations`` files.

Revision ID: 0016_scheduler
Revises: 0015
"""

from alembic import op
from procrastinate.schema import SchemaManager

revision = "0016_scheduler"
down_revision = "0015"
branch_labels = None
depends_on = None

ORDER_KINDS = "kind IN ('remind', 'supervise')"
ORDER_KEYS = f"NOT ({ORDER_KINDS}) OR ((data ->> 'step') IS NOT NULL AND (data ->> 'deadline') IS NOT NULL)"

DROP_PROCRASTINATE = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%'
    LOOP EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename); END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
    LOOP EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.f); END LOOP;
    FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%' AND t.typtype IN ('e', 'c')
    LOOP EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname); END LOOP;
END $$;
"""


def upgrade() -> None:
    op.create_check_constraint(op.f("ck_case_event_order_keys"), "case_event", ORDER_KEYS)
    op.execute(
        "CREATE UNIQUE INDEX uq_case_event_order ON case_event (case_id, kind, (data ->> 'step'),"
        f" (data ->> 'deadline')) WHERE {ORDER_KINDS}")
    _script(SchemaManager.get_schema())


def downgrade() -> None:
    _script(DROP_PROCRASTINATE)
    op.drop_index("uq_case_event_order", table_name="case_event")
    op.drop_constraint(op.f("ck_case_event_order_keys"), "case_event", type_="check")


def _script(sql: str) -> None:
    """Run a whole SQL script as it is: not through text() (its colons are no bind parameters), and with the
    driver's percent signs escaped (psycopg2 formats even an empty parameter set)."""
    op.get_bind().exec_driver_sql(sql.replace("%", "%%"))
