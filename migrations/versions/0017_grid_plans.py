"""Grid plans (issue 19): a planner's edits held apart from the live grids, committed as one grid version.

``grid_plan`` holds the plan (owner, scope, state, effective time, the version its commit made, the plan it
rolls back, an import's repair and topology report); ``grid_plan_edit`` one planned grid per row (its shape,
name, code and the version it was based on).

Revision ID: 0017_grid_plans (named for its issue, so that revisions written in parallel do not share an id)
Revises: 0016_scheduler
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017_grid_plans"
down_revision = "0016_scheduler"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grid_plan",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("grid_version.id",
                  name="fk_grid_plan_version_id_grid_version"), nullable=True),
        sa.Column("rollback_of", sa.Integer(), sa.ForeignKey("grid_plan.id",
                  name="fk_grid_plan_rollback_of_grid_plan"), nullable=True),
        sa.Column("report", JSONB(), nullable=True),
        sa.CheckConstraint("state IN ('draft', 'committed', 'discarded')", name="ck_grid_plan_state"),
        sa.CheckConstraint("source IN ('plan', 'import', 'ogc', 'rollback')", name="ck_grid_plan_source"),
        sa.CheckConstraint("(state = 'committed') = (version_id IS NOT NULL)", name="ck_grid_plan_committed_version"),
        sa.PrimaryKeyConstraint("id", name="pk_grid_plan"),
    )
    op.create_index("ix_grid_plan_owner", "grid_plan", ["owner"])
    op.create_table(
        "grid_plan_edit",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("grid_plan.id", ondelete="CASCADE",
                  name="fk_grid_plan_edit_plan_id_grid_plan"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(12), nullable=False),
        sa.Column("code", sa.String(15), nullable=False),
        sa.Column("new_code", sa.String(15), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("parent_code", sa.String(15), nullable=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("op IN ('create', 'reshape', 'retire', 'recode')", name="ck_grid_plan_edit_op"),
        sa.CheckConstraint("geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))",
                           name="ck_grid_plan_edit_geom_valid"),
        sa.PrimaryKeyConstraint("id", name="pk_grid_plan_edit"),
    )
    op.create_index("ix_grid_plan_edit_plan_id", "grid_plan_edit", ["plan_id"])
    op.create_index("uq_grid_plan_edit_plan_id_code", "grid_plan_edit", ["plan_id", "code"], unique=True)
    op.create_index("ix_grid_plan_edit_geom", "grid_plan_edit", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("grid_plan_edit")
    op.drop_table("grid_plan")
