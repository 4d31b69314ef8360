"""Issue 17 item 5: a per-case summary of the event trail on ``case``, kept on write, for the evaluation.

The evaluation (spatial/cases/kpi.py) judges each case from a handful of facts of its trail: when it was last
registered, when its state last changed, when it last became closed, handled, voided or suspended, when it was
last handled (the ``handle`` event) and how often it was reworked. Reading them from ``case_event`` for a
year means 3.9 million rows (bench/kpi.py); these columns hold them per case, with ``kpi_through``, the time
of the latest event they include, so that a period ending after it is answered from the case row alone and
a period ending earlier reads that case's trail (kpi.py says how).

The trigger ``case_event_kpi`` keeps them in the transaction that appends the event, for every writer (the
workflow, intake's ``link`` rows, bulk import, the scheduler); intake's ``report`` rows and events the
evaluation does not read (accept, check, evaluate, remind, …) do not fire it. It fires ALWAYS (bulk import
and the demo load run as ``session_replication_role = replica``). A loader that writes millions of events
sets ``gridlink.case_kpi = 'deferred'`` for its transaction and writes the columns itself (the demo
generator) or calls ``gridlink_case_kpi_rebuild()`` at the end; the rebuild is also this migration's backfill
and repairs any drift (it only rewrites rows whose summary differs from their trail).

A case's ``report`` event is not part of the summary: it is the case's first event, at ``reported_at``, and
the evaluation reads nothing else from it.

Revision ID: 0020_case_kpi_summary
Revises: 0019_scheduled_plans
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_case_kpi_summary"
down_revision = "0019_scheduled_plans"
branch_labels = None
depends_on = None

COLUMNS = ("kpi_registered_at", "kpi_state_at", "kpi_closed_at", "kpi_handled_state_at", "kpi_voided_at",
           "kpi_suspended_at", "kpi_handled_at")
# The events the summary reads (the trigger's WHEN and the rebuild's filter): everything but the report that
# changes the state, and the three kinds the evaluation counts or times.
READ = "{e}kind <> 'report' AND ({e}state_after IS NOT NULL OR {e}kind IN ('register', 'handle', 'rework'))"

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION gridlink_case_kpi() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "case" SET
        kpi_registered_at = CASE WHEN NEW.kind = 'register' THEN greatest(kpi_registered_at, NEW.at)
                                 ELSE kpi_registered_at END,
        kpi_state_at = CASE WHEN NEW.state_after IS NOT NULL THEN greatest(kpi_state_at, NEW.at)
                            ELSE kpi_state_at END,
        kpi_closed_at = CASE WHEN NEW.state_after = 'closed' THEN greatest(kpi_closed_at, NEW.at)
                             ELSE kpi_closed_at END,
        kpi_handled_state_at = CASE WHEN NEW.state_after = 'handled' THEN greatest(kpi_handled_state_at, NEW.at)
                                    ELSE kpi_handled_state_at END,
        kpi_voided_at = CASE WHEN NEW.state_after = 'voided' THEN greatest(kpi_voided_at, NEW.at)
                             ELSE kpi_voided_at END,
        kpi_suspended_at = CASE WHEN NEW.state_after = 'suspended' THEN greatest(kpi_suspended_at, NEW.at)
                                ELSE kpi_suspended_at END,
        kpi_handled_at = CASE WHEN NEW.kind = 'handle' THEN greatest(kpi_handled_at, NEW.at) ELSE kpi_handled_at END,
        kpi_reworks = kpi_reworks + CASE WHEN NEW.kind = 'rework' THEN 1 ELSE 0 END,
        kpi_through = greatest(kpi_through, NEW.at)
    WHERE id = NEW.case_id;
    RETURN NULL;
END $$;
"""

REBUILD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION gridlink_case_kpi_rebuild() RETURNS bigint LANGUAGE sql AS $$
    WITH facts AS (
        SELECT c.id,
               max(e.at) FILTER (WHERE e.kind = 'register') AS registered_at,
               max(e.at) FILTER (WHERE e.state_after IS NOT NULL) AS state_at,
               max(e.at) FILTER (WHERE e.state_after = 'closed') AS closed_at,
               max(e.at) FILTER (WHERE e.state_after = 'handled') AS handled_state_at,
               max(e.at) FILTER (WHERE e.state_after = 'voided') AS voided_at,
               max(e.at) FILTER (WHERE e.state_after = 'suspended') AS suspended_at,
               max(e.at) FILTER (WHERE e.kind = 'handle') AS handled_at,
               count(e.id) FILTER (WHERE e.kind = 'rework') AS reworks,
               max(e.at) AS through
        FROM "case" c LEFT JOIN case_event e ON e.case_id = c.id AND {READ.format(e="e.")}
        GROUP BY c.id
    ), changed AS (
        UPDATE "case" c SET kpi_registered_at = f.registered_at, kpi_state_at = f.state_at,
               kpi_closed_at = f.closed_at, kpi_handled_state_at = f.handled_state_at, kpi_voided_at = f.voided_at,
               kpi_suspended_at = f.suspended_at, kpi_handled_at = f.handled_at, kpi_reworks = f.reworks,
               kpi_through = f.through
        FROM facts f
        WHERE c.id = f.id
          AND (c.kpi_registered_at, c.kpi_state_at, c.kpi_closed_at, c.kpi_handled_state_at, c.kpi_voided_at,
               c.kpi_suspended_at, c.kpi_handled_at, c.kpi_reworks, c.kpi_through)
              IS DISTINCT FROM (f.registered_at, f.state_at, f.closed_at, f.handled_state_at, f.voided_at,
                                f.suspended_at, f.handled_at, f.reworks, f.through)
        RETURNING 1
    )
    SELECT count(*) FROM changed
$$;
"""


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("case", sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.add_column("case", sa.Column("kpi_reworks", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("case", sa.Column("kpi_through", sa.DateTime(timezone=True), nullable=True))
    op.execute(TRIGGER_FUNCTION)
    op.execute(REBUILD_FUNCTION)
    op.execute("SELECT gridlink_case_kpi_rebuild()")
    # The cases whose summary holds an event at or after a period's end (they read their trail): few for a
    # period that ends now, none for the cases intake has just stored (NULL until their first read event).
    op.create_index("ix_case_kpi_through", "case", ["kpi_through"],
                    postgresql_where=sa.text("kpi_through IS NOT NULL"))
    op.execute(f"CREATE TRIGGER case_event_kpi AFTER INSERT ON case_event FOR EACH ROW"
               f" WHEN ({READ.format(e='NEW.')}"
               f" AND current_setting('gridlink.case_kpi', true) IS DISTINCT FROM 'deferred')"
               f" EXECUTE FUNCTION gridlink_case_kpi()")
    op.execute("ALTER TABLE case_event ENABLE ALWAYS TRIGGER case_event_kpi")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_event_kpi ON case_event")
    op.execute("DROP FUNCTION IF EXISTS gridlink_case_kpi()")
    op.execute("DROP FUNCTION IF EXISTS gridlink_case_kpi_rebuild()")
    op.drop_index("ix_case_kpi_through", table_name="case")
    for column in (*COLUMNS, "kpi_reworks", "kpi_through"):
        op.drop_column("case", column)
