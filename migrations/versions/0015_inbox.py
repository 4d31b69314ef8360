"""Issue 17 inbox: the open cases in the order of their due time.

``ix_case_open_due`` orders the open cases by when their current step runs out (``step_deadline``, else the
overall ``deadline``: the demo's history has no step deadlines) — the order of ``GET /api/v1/inbox``, whose
pages walk it; closed and voided cases (most of a year's) stay out of it, so a bulk-loaded case pays for it
only while open.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

OPEN = "state IN ('reported', 'registered', 'dispatched', 'handled', 'suspended')"


def upgrade() -> None:
    op.create_index("ix_case_open_due", "case", [sa.text("coalesce(step_deadline, deadline)"), "id"],
                    postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index("ix_case_open_due", table_name="case")
