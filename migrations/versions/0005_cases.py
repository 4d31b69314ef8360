"""Cases with their assignment fields and the append-only case-event table.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table('case',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_no', sa.String(length=20), nullable=False),
    sa.Column('category_code', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('location', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('community_code', sa.String(length=15), nullable=False),
    sa.Column('town_code', sa.String(length=15), nullable=False),
    sa.Column('district_code', sa.String(length=15), nullable=False),
    sa.Column('special_grid_codes', sa.ARRAY(sa.String(length=15)), nullable=False),
    sa.Column('grid_version_id', sa.Integer(), nullable=False),
    sa.Column('component_code', sa.String(length=16), nullable=True),
    sa.Column('component_distance_m', sa.Float(), nullable=True),
    sa.Column('owner_key', sa.String(length=32), nullable=False),
    sa.Column('owner_area_code', sa.String(length=15), nullable=True),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duplicate_of', sa.BigInteger(), nullable=True),
    sa.Column('reporter_name', sa.Text(), nullable=True),
    sa.Column('reporter_phone', sa.String(length=32), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("source IN ('inspector', 'hotline', 'public', 'video', 'dispatcher')", name=op.f('ck_case_source')),
    sa.CheckConstraint("state IN ('reported', 'registered', 'dispatched', 'handled', 'closed', 'voided', 'suspended')", name=op.f('ck_case_state')),
    sa.CheckConstraint('ST_IsValid(location) AND NOT ST_IsEmpty(location)', name=op.f('ck_case_location_valid')),
    sa.ForeignKeyConstraint(['category_code'], ['event_category.code'], name=op.f('fk_case_category_code_event_category')),
    sa.ForeignKeyConstraint(['community_code'], ['grid.code'], name=op.f('fk_case_community_code_grid')),
    sa.ForeignKeyConstraint(['component_code'], ['component.code'], name=op.f('fk_case_component_code_component')),
    sa.ForeignKeyConstraint(['district_code'], ['grid.code'], name=op.f('fk_case_district_code_grid')),
    sa.ForeignKeyConstraint(['duplicate_of'], ['case.id'], name=op.f('fk_case_duplicate_of_case')),
    sa.ForeignKeyConstraint(['grid_code'], ['grid.code'], name=op.f('fk_case_grid_code_grid')),
    sa.ForeignKeyConstraint(['grid_version_id'], ['grid_version.id'], name=op.f('fk_case_grid_version_id_grid_version')),
    sa.ForeignKeyConstraint(['owner_area_code'], ['grid.code'], name=op.f('fk_case_owner_area_code_grid')),
    sa.ForeignKeyConstraint(['town_code'], ['grid.code'], name=op.f('fk_case_town_code_grid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case')),
    sa.UniqueConstraint('case_no', name=op.f('uq_case_case_no')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_case_idempotency_key'))
    )
    op.create_index('ix_case_category_code_reported_at', 'case', ['category_code', 'reported_at'], unique=False)
    op.create_index(op.f('ix_case_community_code'), 'case', ['community_code'], unique=False)
    op.create_index(op.f('ix_case_component_code'), 'case', ['component_code'], unique=False)
    op.create_index(op.f('ix_case_district_code'), 'case', ['district_code'], unique=False)
    op.create_index(op.f('ix_case_duplicate_of'), 'case', ['duplicate_of'], unique=False)
    op.create_index(op.f('ix_case_grid_code'), 'case', ['grid_code'], unique=False)
    op.create_geospatial_index('ix_case_location', 'case', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_case_owner_key'), 'case', ['owner_key'], unique=False)
    op.create_index(op.f('ix_case_reported_at'), 'case', ['reported_at'], unique=False)
    op.create_index(op.f('ix_case_state'), 'case', ['state'], unique=False)
    op.create_index(op.f('ix_case_town_code'), 'case', ['town_code'], unique=False)
    op.create_table('case_event',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('state_after', sa.String(length=12), nullable=True),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.CheckConstraint("kind IN ('report', 'register', 'dispatch', 'handle', 'check', 'close', 'evaluate', 'void', 'return', 'extend', 'suspend', 'resume', 'rework', 'assist', 'remind', 'supervise', 'link')", name=op.f('ck_case_event_kind')),
    sa.CheckConstraint("state_after IS NULL OR state_after IN ('reported', 'registered', 'dispatched', 'handled', 'closed', 'voided', 'suspended')", name=op.f('ck_case_event_state_after')),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_case_event_case_id_case')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_event'))
    )
    op.create_index('ix_case_event_case_id_at', 'case_event', ['case_id', 'at'], unique=False)
    op.execute(
        "CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event "
        "FOR EACH ROW EXECUTE FUNCTION gridlink_refuse_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_event_append_only ON case_event")
    op.drop_index('ix_case_event_case_id_at', table_name='case_event')
    op.drop_table('case_event')
    op.drop_index(op.f('ix_case_town_code'), table_name='case')
    op.drop_index(op.f('ix_case_state'), table_name='case')
    op.drop_index(op.f('ix_case_reported_at'), table_name='case')
    op.drop_index(op.f('ix_case_owner_key'), table_name='case')
    op.drop_geospatial_index('ix_case_location', table_name='case', postgresql_using='gist', column_name='location')
    op.drop_index(op.f('ix_case_grid_code'), table_name='case')
    op.drop_index(op.f('ix_case_duplicate_of'), table_name='case')
    op.drop_index(op.f('ix_case_district_code'), table_name='case')
    op.drop_index(op.f('ix_case_component_code'), table_name='case')
    op.drop_index(op.f('ix_case_community_code'), table_name='case')
    op.drop_index('ix_case_category_code_reported_at', table_name='case')
    op.drop_geospatial_table('case')
