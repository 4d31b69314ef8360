"""Issue 17: reminders (提醒) and supervision orders (督办) for an assisting unit's own deadline.

Joint handling (migration 0021) gave each assisting unit of a case its own deadline (``case_unit.deadline``);
the scheduler (spatial/cases/scheduler.py) now writes ``assist_remind`` at 80 % of its working time and
``assist_supervise`` once it has passed, each naming the unit (``data.unit``) and its deadline
(``data.deadline``). Like the lead's orders (``uq_case_event_order``, migration 0016), each exists at most once:
the unique index ``uq_case_event_assist_order`` on (case, kind, unit, deadline) refuses a second one whatever
number of workers sweep, and the check ``assist_order_keys`` refuses one without its key.

Revision ID: 0022_assist_orders
Revises: 0021_joint_handling
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_assist_orders"
down_revision = "0021_joint_handling"
branch_labels = None
depends_on = None

OLD_KINDS = (
    "report", "register", "dispatch", "handle", "check", "close", "evaluate",
    "void", "return", "extend", "suspend", "resume", "rework", "assist", "remind", "supervise", "link",
    "verify", "accept", "request", "approve", "refuse", "reopen", "assist_accept", "assist_handle",
)
NEW_KINDS = (*OLD_KINDS, "assist_remind", "assist_supervise")
ASSIST_ORDER_KINDS = "kind IN ('assist_remind', 'assist_supervise')"


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_case_event_kind"), "case_event", type_="check")
    op.create_check_constraint(op.f("ck_case_event_kind"), "case_event", _kinds(NEW_KINDS))
    op.create_check_constraint(op.f("ck_case_event_assist_order_keys"), "case_event",
                               f"NOT ({ASSIST_ORDER_KINDS}) OR ((data ->> 'unit') IS NOT NULL"
                               " AND (data ->> 'deadline') IS NOT NULL)")
    op.create_index("uq_case_event_assist_order", "case_event",
                    ["case_id", "kind", sa.text("(data ->> 'unit')"), sa.text("(data ->> 'deadline')")],
                    unique=True, postgresql_where=sa.text(ASSIST_ORDER_KINDS))


def downgrade() -> None:
    op.drop_index("uq_case_event_assist_order", table_name="case_event")
    op.drop_constraint(op.f("ck_case_event_assist_order_keys"), "case_event", type_="check")
    op.drop_constraint(op.f("ck_case_event_kind"), "case_event", type_="check")
    op.create_check_constraint(op.f("ck_case_event_kind"), "case_event", _kinds(OLD_KINDS))
