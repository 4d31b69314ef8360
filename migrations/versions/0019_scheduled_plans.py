"""Future-dated grid plans (issue 19): a plan committed with a future effective time waits as ``scheduled``
until the scheduler applies it at that time; a partial index finds the plans that are due.

Revision ID: 0019_scheduled_plans (named for its concern, so that revisions written in parallel do not share an id)
Revises: 0018_case_event_xid
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_scheduled_plans"
down_revision = "0018_case_event_xid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ck_grid_plan_state", "grid_plan", type_="check")
    op.create_check_constraint("ck_grid_plan_state", "grid_plan",
                               "state IN ('draft', 'scheduled', 'committed', 'discarded')")
    op.create_check_constraint("ck_grid_plan_scheduled_time", "grid_plan",
                               "state <> 'scheduled' OR effective_at IS NOT NULL")
    op.create_index("ix_grid_plan_scheduled", "grid_plan", ["effective_at"],
                    postgresql_where=sa.text("state = 'scheduled'"))


def downgrade() -> None:
    op.drop_index("ix_grid_plan_scheduled", table_name="grid_plan")
    op.execute("UPDATE grid_plan SET state = 'draft', effective_at = NULL WHERE state = 'scheduled'")
    op.drop_constraint("ck_grid_plan_scheduled_time", "grid_plan", type_="check")
    op.drop_constraint("ck_grid_plan_state", "grid_plan", type_="check")
    op.create_check_constraint("ck_grid_plan_state", "grid_plan", "state IN ('draft', 'committed', 'discarded')")
