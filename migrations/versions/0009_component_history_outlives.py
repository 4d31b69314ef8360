"""Component history outlives its component: drop the foreign key from component_history to component.

OGC API Features Part 4 deletes components that no case refers to (spatial/components/edits.py); their
history — who made, changed and deleted them — is an append-only audit trail and must stay. The foreign key
would either block the delete or (with a cascade) erase the trail.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("fk_component_history_component_code_component", "component_history", type_="foreignkey")


def downgrade() -> None:
    # NOT VALID: the history of components deleted meanwhile stays (it is append-only anyway).
    op.create_foreign_key("fk_component_history_component_code_component", "component_history", "component",
                          ["component_code"], ["code"], postgresql_not_valid=True)
