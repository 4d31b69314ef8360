"""Bring grid_version's id sequence past the rows loaded with explicit ids (the demo's version 1).

Grid versions are now also made one by one (special grids edited through OGC API Features Part 4); a
sequence still at 1 would refuse the first of them. The demo build sets it too from now on.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT setval(pg_get_serial_sequence('grid_version', 'id'),"
               " GREATEST((SELECT max(id) FROM grid_version), 1))")


def downgrade() -> None:
    """Nothing to undo: a sequence past its table's ids is what it should always have been."""
