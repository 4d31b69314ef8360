"""Issue 19: grid names versioned with the shapes, so that time travel answers the name valid then.

``grid_geometry.name`` is the grid's name during that version's validity. Existing rows (current and past)
take the grid's present name: the name history before this revision is not known, so it is kept as the
current version. A rename is a new ``grid_geometry`` row (same shape, new name), closing the old one, so
``locate?at=``, the OGC ``datetime`` answers and the grid history read the name with the shape. A row
inserted without a name takes the grid's current name (trigger ``grid_geometry_name``), so every writer
that sets ``grid.name`` first and draws after (plans, special grid edits, the demo's COPY) keeps the two in step.

Revision ID: 0024_grid_name_versions
Revises: 0023_kpi_rollup
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_grid_name_versions"
down_revision = "0023_kpi_rollup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grid_geometry", sa.Column("name", sa.Text(), nullable=True))
    op.execute("UPDATE grid_geometry gg SET name = g.name FROM grid g WHERE g.code = gg.grid_code")
    op.alter_column("grid_geometry", "name", nullable=False)
    op.execute("""
        CREATE FUNCTION grid_geometry_name() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.name IS NULL THEN
                SELECT g.name INTO NEW.name FROM grid g WHERE g.code = NEW.grid_code;
            END IF;
            RETURN NEW;
        END $$""")
    op.execute("CREATE TRIGGER grid_geometry_name BEFORE INSERT ON grid_geometry"
               " FOR EACH ROW EXECUTE FUNCTION grid_geometry_name()")


def downgrade() -> None:
    op.execute("DROP TRIGGER grid_geometry_name ON grid_geometry")
    op.execute("DROP FUNCTION grid_geometry_name()")
    op.drop_column("grid_geometry", "name")
