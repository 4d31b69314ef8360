"""Issue 18: survey uploads (``POST /api/v1/components/imports``) as rows, not one process's memory.

``component_upload_jobs`` holds each background import: who started it for which owner, its state (running,
done, failed), progress (``rows_read`` of ``rows_total``), then its report or problem, and where its rejects
file is (``host`` + ``folder``: the upload and its rejects stay on the disk of the server that took it). Any
server process reads it. The process running a job holds a session advisory lock on it
(spatial/components/jobs.py); a job marked running whose lock nobody holds was interrupted (its server
stopped) and is failed, with that reason, by whoever reads it next.

Revision ID: 0026_component_upload_jobs
Revises: 0025_case_photos
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0026_component_upload_jobs"
down_revision = "0025_case_photos"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "component_upload_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("owner_key", sa.String(64), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("options", JSONB(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("worker", sa.Text(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("rows_total", sa.BigInteger(), nullable=True),
        sa.Column("report", JSONB(), nullable=True),
        sa.Column("problem", JSONB(), nullable=True),
        sa.Column("rejects", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_component_upload_jobs")),
        sa.CheckConstraint("state IN ('running', 'done', 'failed')", name=op.f("ck_component_upload_jobs_state")),
    )
    # The sweep of ended jobs (deleted an hour after they end) and of interrupted ones.
    op.create_index("ix_component_upload_jobs_ended_at", "component_upload_jobs", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_component_upload_jobs_ended_at", table_name="component_upload_jobs")
    op.drop_table("component_upload_jobs")
