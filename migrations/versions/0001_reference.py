"""PostGIS and the reference tables: departments, component classes, event categories, holidays, meta.

Revision ID: 0001
Revises: (none)
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table('department',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('handles', sa.Text(), nullable=True),
    sa.CheckConstraint("kind IN ('bureau', 'utility', 'enforcement', 'locality', 'owner', 'maintainer')", name=op.f('ck_department_kind')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_department'))
    )
    op.create_table('component_class',
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('major_code', sa.String(length=2), nullable=False),
    sa.Column('major_name', sa.Text(), nullable=False),
    sa.Column('name_zh', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('geometry_kind', sa.String(length=8), nullable=False),
    sa.Column('default_owner', sa.String(length=32), nullable=False),
    sa.Column('demo_weight', sa.Numeric(precision=8, scale=5), nullable=False),
    sa.CheckConstraint("code ~ '^[0-9]{4}$' AND left(code, 2) = major_code", name=op.f('ck_component_class_code')),
    sa.CheckConstraint("geometry_kind IN ('point', 'line', 'polygon')", name=op.f('ck_component_class_geometry_kind')),
    sa.ForeignKeyConstraint(['default_owner'], ['department.key'], name=op.f('fk_component_class_default_owner_department')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_component_class'))
    )
    op.create_table('event_category',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('parent_code', sa.String(length=16), nullable=True),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('name_zh', sa.Text(), nullable=False),
    sa.Column('name_en', sa.Text(), nullable=False),
    sa.Column('grade', sa.String(length=1), nullable=True),
    sa.Column('handler', sa.String(length=32), nullable=True),
    sa.Column('manager', sa.String(length=32), nullable=True),
    sa.Column('enforcer', sa.String(length=32), nullable=True),
    sa.Column('time_limit', sa.SmallInteger(), nullable=True),
    sa.Column('time_unit', sa.String(length=16), nullable=True),
    sa.Column('flow', sa.String(length=16), nullable=True),
    sa.Column('closure', sa.Text(), nullable=True),
    sa.Column('component_classes', sa.ARRAY(sa.String(length=4)), nullable=True),
    sa.CheckConstraint("flow IS NULL OR flow IN ('grid_first', 'department', 'component', 'enforcement')", name=op.f('ck_event_category_flow')),
    sa.CheckConstraint("grade IS NULL OR grade IN ('A', 'B', 'C')", name=op.f('ck_event_category_grade')),
    sa.CheckConstraint("time_unit IS NULL OR time_unit IN ('working_hours', 'working_days', 'clock_hours')", name=op.f('ck_event_category_time_unit')),
    sa.CheckConstraint('(parent_code IS NULL AND level = 1) OR (parent_code IS NOT NULL AND level > 1 AND left(code, length(parent_code)) = parent_code)', name=op.f('ck_event_category_extends_parent')),
    sa.CheckConstraint('time_limit IS NULL OR (time_limit > 0 AND grade IS NOT NULL AND time_unit IS NOT NULL AND flow IS NOT NULL AND handler IS NOT NULL)', name=op.f('ck_event_category_leaf_complete')),
    sa.ForeignKeyConstraint(['parent_code'], ['event_category.code'], name=op.f('fk_event_category_parent_code_event_category')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_event_category'))
    )
    op.create_index(op.f('ix_event_category_parent_code'), 'event_category', ['parent_code'], unique=False)
    op.create_table('holiday',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('is_workday', sa.Boolean(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_holiday'))
    )
    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_meta'))
    )


def downgrade() -> None:
    op.drop_table('meta')
    op.drop_table('holiday')
    op.drop_index(op.f('ix_event_category_parent_code'), table_name='event_category')
    op.drop_table('event_category')
    op.drop_table('component_class')
    op.drop_table('department')
