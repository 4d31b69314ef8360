"""Issue 20: photos stored with a case (the inspector's photo of a report, a handler's photo of the work).

``case_photo`` keeps each photo's cleaned copy (re-encoded by spatial/cases/photos.py without EXIF or other
metadata) as ``bytea`` in the database, beside its case: a photo is stored in the transaction of the report or
upload that brings it (fully stored or fully refused), read under the case's scope, and saved by
``gridlink backup`` (pg_dump) with everything else — no folder of files to keep in step. The GPS position the
original carried is kept as numbers (``gps_lon``, ``gps_lat``) and offered back to the client. A photo sent
twice to the same case (a retried upload) is stored once; ``thumb`` is a copy of at most 480 px for lists: unique ``(case_id, sha256)`` of the original bytes.

Revision ID: 0025_case_photos
Revises: 0024_grid_name_versions
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_case_photos"
down_revision = "0024_grid_name_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_photo",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("media_type", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("gps_lon", sa.Float(), nullable=True),
        sa.Column("gps_lat", sa.Float(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("thumb", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_photo_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_photo")),
        sa.UniqueConstraint("case_id", "sha256", name=op.f("uq_case_photo_case_id_sha256")),
        sa.CheckConstraint("media_type IN ('image/jpeg', 'image/png', 'image/webp')",
                           name=op.f("ck_case_photo_media_type")),
        sa.CheckConstraint("size = octet_length(data)", name=op.f("ck_case_photo_size")),
        sa.CheckConstraint("(gps_lon IS NULL) = (gps_lat IS NULL) AND (gps_lon IS NULL OR"
                           " (gps_lon BETWEEN -180 AND 180 AND gps_lat BETWEEN -90 AND 90))",
                           name=op.f("ck_case_photo_gps")),
    )
    # The photos are stored compressed already: keep them out of TOAST's pglz attempt.
    op.execute("ALTER TABLE case_photo ALTER COLUMN data SET STORAGE EXTERNAL, ALTER COLUMN thumb SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("case_photo")
