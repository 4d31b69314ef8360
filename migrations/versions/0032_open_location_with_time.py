"""The intake's duplicate probe near the point: the open originals' GiST index holds the report time too.

The probe for an open original of the same category within 50 m and 24 hours (spatial/store/sql/assign_core.sql,
``nearby``) bounds ``reported_at`` by parameters so that the prepared generic plan starts only the window's months
of ``"case"`` (initial pruning). A bare ``reported_at`` range is also what a B-tree can use: the planner then
combined ``ix_case_open_location`` (location only) with ``ix_case_reported_at`` or
``ix_case_category_code_reported_at`` in a BitmapAnd that read every case of the 24 hours (4,036 index entries,
4.8 ms an intake on the benchmark's busy copy) instead of the few open originals near the point. With
``(location, reported_at)`` in one GiST (btree_gist, installed by migration 0006) the probe is one index scan,
nearest first and time-bounded: 0.75 ms for the whole intake statement there against 4–5.5 ms. Reads of open
cases by location alone (tiles, planning, "what is here") use the index's first column as before.

The probe for an open original on the same component keeps its time window in a form no index uses: with
the time in the GiST, the generic plan read that probe through it (every open original of the 24 hours)
instead of the component's few open cases (``ix_case_open_component_code``).

Only open originals are in the index (a few thousand rows: 5,041 in the full demo), so rebuilding it on every
month of ``"case"`` takes well under a second.

Revision ID: 0032_open_location_with_time
Revises: 0031_case_partitions
"""

from alembic import op

revision = "0032_open_location_with_time"
down_revision = "0031_case_partitions"
branch_labels = None
depends_on = None

OPEN_ORIGINAL = "state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"


def _index(columns: str) -> None:
    op.execute("DROP INDEX ix_case_open_location")
    op.execute(f'CREATE INDEX ix_case_open_location ON "case" USING gist ({columns}) WHERE {OPEN_ORIGINAL}')


def upgrade() -> None:
    _index("location, reported_at")


def downgrade() -> None:
    _index("location")
