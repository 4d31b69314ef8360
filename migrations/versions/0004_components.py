"""Components with their 16-digit codes and their append-only history.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = '0003'
branch_labels = None
depends_on = None

# History tables are append-only: an UPDATE or DELETE is refused by the database itself, whoever asks.
APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION gridlink_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def append_only_trigger(table: str) -> str:
    """Return the DDL of the trigger that makes ``table`` append-only."""
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION gridlink_refuse_change()"
    )


def upgrade() -> None:
    op.create_geospatial_table('component',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('class_code', sa.String(length=4), nullable=False),
    sa.Column('district_code', sa.String(length=15), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('manager_key', sa.String(length=32), nullable=False),
    sa.Column('owner_key', sa.String(length=32), nullable=False),
    sa.Column('maintainer_key', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('surveyed_on', sa.Date(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
    sa.Column('geom', Geometry(srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("GeometryType(geom) IN ('POINT', 'LINESTRING', 'MULTILINESTRING', 'POLYGON', 'MULTIPOLYGON')", name=op.f('ck_component_geom_type')),
    sa.CheckConstraint("code ~ '^[0-9]{16}$' AND substr(code, 7, 4) = class_code AND left(code, 6) = district_code", name=op.f('ck_component_code')),
    sa.CheckConstraint("status IN ('intact', 'damaged', 'missing', 'abandoned', 'removed')", name=op.f('ck_component_status')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_component_geom_valid')),
    sa.ForeignKeyConstraint(['class_code'], ['component_class.code'], name=op.f('fk_component_class_code_component_class')),
    sa.ForeignKeyConstraint(['district_code'], ['grid.code'], name=op.f('fk_component_district_code_grid')),
    sa.ForeignKeyConstraint(['grid_code'], ['grid.code'], name=op.f('fk_component_grid_code_grid')),
    sa.ForeignKeyConstraint(['maintainer_key'], ['department.key'], name=op.f('fk_component_maintainer_key_department')),
    sa.ForeignKeyConstraint(['manager_key'], ['department.key'], name=op.f('fk_component_manager_key_department')),
    sa.ForeignKeyConstraint(['owner_key'], ['department.key'], name=op.f('fk_component_owner_key_department')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_component'))
    )
    op.create_index(op.f('ix_component_class_code'), 'component', ['class_code'], unique=False)
    op.create_geospatial_index('ix_component_geom', 'component', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_component_grid_code'), 'component', ['grid_code'], unique=False)
    op.create_index(op.f('ix_component_owner_key'), 'component', ['owner_key'], unique=False)
    op.create_table('component_history',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('component_code', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('status_from', sa.String(length=12), nullable=True),
    sa.Column('status_to', sa.String(length=12), nullable=True),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.CheckConstraint("action IN ('create', 'update', 'status', 'delete')", name=op.f('ck_component_history_action')),
    sa.ForeignKeyConstraint(['component_code'], ['component.code'], name=op.f('fk_component_history_component_code_component')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_component_history'))
    )
    op.create_index(op.f('ix_component_history_component_code'), 'component_history', ['component_code'], unique=False)
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(append_only_trigger("component_history"))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS component_history_append_only ON component_history")
    op.drop_index(op.f('ix_component_history_component_code'), table_name='component_history')
    op.drop_table('component_history')
    op.drop_index(op.f('ix_component_owner_key'), table_name='component')
    op.drop_index(op.f('ix_component_grid_code'), table_name='component')
    op.drop_geospatial_index('ix_component_geom', table_name='component', postgresql_using='gist', column_name='geom')
    op.drop_index(op.f('ix_component_class_code'), table_name='component')
    op.drop_geospatial_table('component')
    op.execute("DROP FUNCTION IF EXISTS gridlink_refuse_change()")
