"""Issue 17 workflow: who acted in which role, the step deadline, the pending approval, the new event kinds.

``case_event.role`` names the role the actor acted in (NULL for rows written before the workflow: the demo's
history names its actors as ``role:unit``); ``case.step_deadline`` is when the current step of the loop runs
out (spatial/cases/workflow.py ``STEP_LIMITS``), next to the overall ``deadline``; ``case.pending_action`` is
the action waiting for a second person's approval (void, return, extend, suspend), kept in step with the
event trail like ``state``. The event kinds gain verify, accept, request, approve, refuse and reopen.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD_KINDS = (
    "report", "register", "dispatch", "handle", "check", "close", "evaluate",
    "void", "return", "extend", "suspend", "resume", "rework", "assist", "remind", "supervise", "link",
)
NEW_KINDS = (*OLD_KINDS, "verify", "accept", "request", "approve", "refuse", "reopen")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    op.add_column("case_event", sa.Column("role", sa.String(16), nullable=True))
    op.add_column("case", sa.Column("step_deadline", sa.DateTime(timezone=True), nullable=True))
    op.add_column("case", sa.Column("pending_action", sa.String(12), nullable=True))
    op.drop_constraint(op.f("ck_case_event_kind"), "case_event", type_="check")
    op.create_check_constraint(op.f("ck_case_event_kind"), "case_event", _kinds(NEW_KINDS))
    # The inbox of approvers: the few cases waiting for an approval.
    op.create_index("ix_case_pending_action", "case", ["pending_action"],
                    postgresql_where=sa.text("pending_action IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_case_pending_action", table_name="case")
    op.drop_constraint(op.f("ck_case_event_kind"), "case_event", type_="check")
    op.create_check_constraint(op.f("ck_case_event_kind"), "case_event", _kinds(OLD_KINDS))
    op.drop_column("case", "pending_action")
    op.drop_column("case", "step_deadline")
    op.drop_column("case_event", "role")
