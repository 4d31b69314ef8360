"""Partial indexes on open original cases, for duplicate linking at intake.

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OPEN_ORIGINAL = "state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"


def upgrade() -> None:
    op.create_geospatial_index(
        "ix_case_open_location", "case", ["location"], unique=False, postgresql_using="gist",
        postgresql_where=sa.text(OPEN_ORIGINAL), postgresql_ops={},
    )
    op.create_index("ix_case_open_component_code", "case", ["component_code"], unique=False,
                    postgresql_where=sa.text(OPEN_ORIGINAL))


def downgrade() -> None:
    op.drop_index("ix_case_open_component_code", table_name="case", postgresql_where=sa.text(OPEN_ORIGINAL))
    op.drop_geospatial_index("ix_case_open_location", table_name="case", postgresql_using="gist",
                             postgresql_where=sa.text(OPEN_ORIGINAL), column_name="location")
