"""Indexes for intake: open original cases by category and place; current base and special grids.

Duplicate linking asks for open originals of one category near a point: a partial GiST index on
(category_code, location) (btree_gist) answers both conditions at once. Assignment asks for the current
base grid, or the current special grids, covering a point: partial GiST indexes per purpose keep other
levels out of the probe.

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
CURRENT_BASE = "valid_to IS NULL AND kind = 'base'"
CURRENT_SPECIAL = "valid_to IS NULL AND kind IN ('enterprise', 'park', 'scenic', 'commercial')"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_index("ix_case_open_category_location", "case", ["category_code", "location"], unique=False,
                    postgresql_using="gist", postgresql_where=sa.text(OPEN_ORIGINAL))
    op.create_index("ix_case_open_component_code", "case", ["component_code"], unique=False,
                    postgresql_where=sa.text(OPEN_ORIGINAL))
    op.create_geospatial_index("ix_grid_geometry_current_base_geom", "grid_geometry", ["geom"], unique=False,
                               postgresql_using="gist", postgresql_where=sa.text(CURRENT_BASE), postgresql_ops={})
    op.create_geospatial_index("ix_grid_geometry_current_special_geom", "grid_geometry", ["geom"], unique=False,
                               postgresql_using="gist", postgresql_where=sa.text(CURRENT_SPECIAL),
                               postgresql_ops={})


def downgrade() -> None:
    op.drop_geospatial_index("ix_grid_geometry_current_special_geom", table_name="grid_geometry",
                             postgresql_using="gist", postgresql_where=sa.text(CURRENT_SPECIAL), column_name="geom")
    op.drop_geospatial_index("ix_grid_geometry_current_base_geom", table_name="grid_geometry",
                             postgresql_using="gist", postgresql_where=sa.text(CURRENT_BASE), column_name="geom")
    op.drop_index("ix_case_open_component_code", table_name="case", postgresql_where=sa.text(OPEN_ORIGINAL))
    op.drop_index("ix_case_open_category_location", table_name="case", postgresql_where=sa.text(OPEN_ORIGINAL))
