"""Lighter indexes on ``case``: every bulk-loaded case pays for each index it updates.

Measured on the full demo (100,000 cases COPYed into 580,000, BENCHMARKS.md): the (category_code, location)
btree_gist index of open originals cost 40 µs per row, four times a location-only GiST. Duplicate linking
keeps a partial GiST of open originals on location alone and filters the category on the few cases
within 50 m. Community, town and district codes are prefixes of the base grid code (SPEC "Grids"), so area
filters use a range on the grid-code index and the three per-level B-trees go. ``duplicate_of`` and
``component_code`` are looked up only by value, so their B-trees leave out the NULL rows.

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPEN_ORIGINAL = "state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"


def upgrade() -> None:
    op.drop_index("ix_case_open_category_location", table_name="case")
    op.create_index("ix_case_open_location", "case", ["location"], unique=False, postgresql_using="gist",
                    postgresql_where=sa.text(OPEN_ORIGINAL))
    for level in ("community", "town", "district"):
        op.drop_index(f"ix_case_{level}_code", table_name="case")
    for column in ("duplicate_of", "component_code"):
        op.drop_index(f"ix_case_{column}", table_name="case")
        op.create_index(f"ix_case_{column}", "case", [column], unique=False,
                        postgresql_where=sa.text(f"{column} IS NOT NULL"))


def downgrade() -> None:
    for column in ("duplicate_of", "component_code"):
        op.drop_index(f"ix_case_{column}", table_name="case")
        op.create_index(f"ix_case_{column}", "case", [column], unique=False)
    for level in ("community", "town", "district"):
        op.create_index(f"ix_case_{level}_code", "case", [f"{level}_code"], unique=False)
    op.drop_index("ix_case_open_location", table_name="case")
    op.create_index("ix_case_open_category_location", "case", ["category_code", "location"], unique=False,
                    postgresql_using="gist", postgresql_where=sa.text(OPEN_ORIGINAL))
