"""Issue 17 joint handling (协办): the assisting units of a case.

``case_unit`` holds the assisting units of a joint case (spatial/cases/joint.py), each with its own state
(dispatched → accepted → handled; withdrawn when the case is voided), deadline and times; the lead unit stays
the case's owner (``case.owner_key``). ``case.assist_keys`` mirrors the keys of its assisting units, kept in
step in the same transaction, so that the scope rule (spatial/access/scope.py) reads them like
``special_grid_codes``. The event kinds gain ``assist_accept`` and ``assist_handle``, so ``case_event.kind`` widens from 12 to 16
characters (a widening PostgreSQL makes without rewriting the table).

Revision ID: 0021_joint_handling
Revises: 0020_case_kpi_summary
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_joint_handling"
down_revision = "0020_case_kpi_summary"
branch_labels = None
depends_on = None

OLD_KINDS = (
    "report", "register", "dispatch", "handle", "check", "close", "evaluate",
    "void", "return", "extend", "suspend", "resume", "rework", "assist", "remind", "supervise", "link",
    "verify", "accept", "request", "approve", "refuse", "reopen",
)
NEW_KINDS = (*OLD_KINDS, "assist_accept", "assist_handle")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    op.add_column("case", sa.Column("assist_keys", sa.ARRAY(sa.String(32)), nullable=False, server_default="{}"))
    op.create_table(
        "case_unit",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_key", sa.String(32), nullable=False),
        sa.Column("unit_area", sa.String(15), nullable=True),
        sa.Column("role", sa.String(8), nullable=False, server_default="assist"),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_unit_case_id_case")),
        sa.PrimaryKeyConstraint("case_id", "unit_key", name=op.f("pk_case_unit")),
        sa.CheckConstraint("role IN ('assist')", name=op.f("ck_case_unit_role")),
        sa.CheckConstraint("state IN ('dispatched', 'accepted', 'handled', 'withdrawn')",
                           name=op.f("ck_case_unit_state")),
    )
    # The cases a department assists on, for the scope rule of its handlers (spatial/access/scope.py): partial,
    # so the many cases without assisting units cost intake nothing but the predicate.
    op.create_index("ix_case_assist_keys", "case", ["assist_keys"], postgresql_using="gin",
                    postgresql_where=sa.text("assist_keys <> '{}'"))
    # An assisting unit's open work by deadline (its inbox, its evaluation).
    op.create_index("ix_case_unit_open", "case_unit", ["unit_key", "deadline"],
                    postgresql_where=sa.text("state IN ('dispatched', 'accepted')"))
    _retype_kind(16, was=12)
    op.drop_constraint(op.f("ck_case_event_kind"), "case_event", type_="check")
    op.create_check_constraint(op.f("ck_case_event_kind"), "case_event", _kinds(NEW_KINDS))


def downgrade() -> None:
    op.drop_constraint(op.f("ck_case_event_kind"), "case_event", type_="check")
    op.create_check_constraint(op.f("ck_case_event_kind"), "case_event", _kinds(OLD_KINDS))
    _retype_kind(12, was=16)
    op.drop_index("ix_case_unit_open", table_name="case_unit")
    op.drop_index("ix_case_assist_keys", table_name="case")
    op.drop_table("case_unit")
    op.drop_column("case", "assist_keys")


def _retype_kind(length: int, was: int) -> None:
    """Retype ``case_event.kind``. PostgreSQL refuses while a trigger's WHEN clause reads the column (the
    evaluation summary's ``case_event_kpi``, migration 0020): such triggers are dropped and made again from
    their own definitions, with their firing mode (``ENABLE ALWAYS``)."""
    bind = op.get_bind()
    triggers = bind.execute(sa.text(
        "SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t"
        " WHERE t.tgrelid = 'case_event'::regclass AND NOT t.tgisinternal")).all()
    for name, _, _ in triggers:
        op.execute(f'DROP TRIGGER "{name}" ON case_event')
    op.alter_column("case_event", "kind", type_=sa.String(length), existing_type=sa.String(was),
                    existing_nullable=False)
    for name, definition, enabled in triggers:
        op.execute(definition)
        if enabled == "A":
            op.execute(f'ALTER TABLE case_event ENABLE ALWAYS TRIGGER "{name}"')
        elif enabled == "R":
            op.execute(f'ALTER TABLE case_event ENABLE REPLICA TRIGGER "{name}"')
        elif enabled == "D":
            op.execute(f'ALTER TABLE case_event DISABLE TRIGGER "{name}"')
