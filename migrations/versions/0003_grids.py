"""Grids of four levels and special grids, their versions, geometries and teams.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry

revision = "0003"
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('grid',
    sa.Column('code', sa.String(length=15), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('parent_code', sa.String(length=15), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(level = 1 AND kind = 'district' AND parent_code IS NULL AND code ~ '^[0-9]{6}$') OR (level = 2 AND kind = 'town' AND code ~ '^[0-9]{9}$' AND parent_code = left(code, 6)) OR (level = 3 AND kind = 'community' AND code ~ '^[0-9]{12}$' AND parent_code = left(code, 9)) OR (level = 4 AND kind = 'base' AND code ~ '^[0-9]{15}$' AND parent_code = left(code, 12)) OR (level IS NULL AND kind IN ('enterprise', 'park', 'scenic', 'commercial') AND code ~ '^[0-9]{6}[EPSC][0-9]{4}$' AND parent_code = left(code, 6))", name=op.f('ck_grid_code_extends_parent')),
    sa.CheckConstraint("kind IN ('district', 'town', 'community', 'base', 'enterprise', 'park', 'scenic', 'commercial')", name=op.f('ck_grid_kind')),
    sa.ForeignKeyConstraint(['parent_code'], ['grid.code'], name=op.f('fk_grid_parent_code_grid')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_grid'))
    )
    op.create_index(op.f('ix_grid_level'), 'grid', ['level'], unique=False)
    op.create_index(op.f('ix_grid_parent_code'), 'grid', ['parent_code'], unique=False)
    op.create_table('grid_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_version'))
    )
    op.create_geospatial_table('grid_geometry',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('district', 'town', 'community', 'base', 'enterprise', 'park', 'scenic', 'commercial')", name=op.f('ck_grid_geometry_kind')),
    sa.CheckConstraint('ST_IsValid(geom) AND NOT ST_IsEmpty(geom)', name=op.f('ck_grid_geometry_geom_valid')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_grid_geometry_valid_range')),
    sa.ForeignKeyConstraint(['grid_code'], ['grid.code'], name=op.f('fk_grid_geometry_grid_code_grid')),
    sa.ForeignKeyConstraint(['version_id'], ['grid_version.id'], name=op.f('fk_grid_geometry_version_id_grid_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_geometry'))
    )
    op.create_geospatial_index('ix_grid_geometry_current_geom', 'grid_geometry', ['geom'], unique=False, postgresql_using='gist', postgresql_where=sa.text('valid_to IS NULL'), postgresql_ops={})
    op.create_geospatial_index('ix_grid_geometry_geom', 'grid_geometry', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_grid_geometry_grid_code'), 'grid_geometry', ['grid_code'], unique=False)
    op.create_index('ix_grid_geometry_kind_current', 'grid_geometry', ['kind'], unique=False, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_index(op.f('ix_grid_geometry_version_id'), 'grid_geometry', ['version_id'], unique=False)
    op.create_index('uq_grid_geometry_current', 'grid_geometry', ['grid_code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_table('team_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=15), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("role IN ('chief', 'inspector', 'police', 'supervisor', 'volunteer', 'mediator')", name=op.f('ck_team_member_role')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_team_member_account_id_account')),
    sa.ForeignKeyConstraint(['grid_code'], ['grid.code'], name=op.f('fk_team_member_grid_code_grid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_member'))
    )
    op.create_index(op.f('ix_team_member_grid_code'), 'team_member', ['grid_code'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_team_member_grid_code'), table_name='team_member')
    op.drop_table('team_member')
    op.drop_index('uq_grid_geometry_current', table_name='grid_geometry', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_index(op.f('ix_grid_geometry_version_id'), table_name='grid_geometry')
    op.drop_index('ix_grid_geometry_kind_current', table_name='grid_geometry', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_index(op.f('ix_grid_geometry_grid_code'), table_name='grid_geometry')
    op.drop_geospatial_index('ix_grid_geometry_geom', table_name='grid_geometry', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_index('ix_grid_geometry_current_geom', table_name='grid_geometry', postgresql_using='gist', postgresql_where=sa.text('valid_to IS NULL'), column_name='geom')
    op.drop_geospatial_table('grid_geometry')
    op.drop_table('grid_version')
    op.drop_index(op.f('ix_grid_parent_code'), table_name='grid')
    op.drop_index(op.f('ix_grid_level'), table_name='grid')
    op.drop_table('grid')
