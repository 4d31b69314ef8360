"""Issue 21: indexes that keep every page of the registry table (``GET /api/v1/components``) under 200 ms.

The registry page lists an owner's components sorted by code, by last change or by name, in keyset pages. On
the full demo (680,000 components, the water company's 194,000) sorting one owner's components by change time
or name read and sorted all of them for each page (360 ms and 240 ms in PostgreSQL alone). Each sort now has
an index in the order the search reads (spatial/components/registry.py ``_keys``: the sort key with NULL as its
lowest value, then the code), with the owner first for owners' pages and without it for administrators':
a page, first or deep, is then one short index range. ``(owner_key, code)`` replaces the index on
``owner_key`` alone, which it contains.

Revision ID: 0027_registry_page_indexes
Revises: 0026_component_upload_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0027_registry_page_indexes"
down_revision = "0026_component_upload_jobs"
branch_labels = None
depends_on = None

CHANGED = "coalesce(changed_at, '1970-01-01 00:00:00+00'::timestamptz)"  # registry.CHANGED_FLOOR
NAME = "coalesce(name, '')"
INDEXES = {
    "ix_component_owner_code": ["owner_key", "code"],
    "ix_component_owner_changed": ["owner_key", sa.text(CHANGED), "code"],
    "ix_component_owner_name": ["owner_key", sa.text(NAME), "code"],
    "ix_component_changed": [sa.text(CHANGED), "code"],
    "ix_component_name": [sa.text(NAME), "code"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "component", columns)
    op.drop_index("ix_component_owner_key", table_name="component")


def downgrade() -> None:
    op.create_index("ix_component_owner_key", "component", ["owner_key"])
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="component")
