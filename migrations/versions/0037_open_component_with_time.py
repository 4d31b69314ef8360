"""The intake's duplicate probe on the same component: the open originals' component index holds the report time.

The probe for an open original on the same component (spatial/store/sql/assign_core.sql, ``same_component``)
kept its 24-hour window in a form no index uses (0032): with a bare ``reported_at`` range the generic plan read
the probe through the GiST of ``(location, reported_at)`` — every open original of the 24 hours — instead of the
component's few open cases; so it bounded no month and probed the component index of every month of ``"case"``.
With ``(component_code, reported_at)`` in the partial B-tree of open originals the window is one range of that
index, the cheapest path for the probe, and named as parameters (``:dup_from``, ``:dup_to``, as the nearby probe)
it lets the executor drop the other months before it starts (initial pruning).

The index keeps its name; it holds only open originals (5,041 rows in the full demo), so rebuilding it on every
month takes well under a second.

Revision ID: 0037_open_component_with_time
Revises: 0036_case_open_months
"""

from alembic import op

revision = "0037_open_component_with_time"
down_revision = "0036_case_open_months"
branch_labels = None
depends_on = None

OPEN_ORIGINAL = "state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"


def _index(columns: str) -> None:
    op.execute("DROP INDEX ix_case_open_component_code")
    op.execute(f'CREATE INDEX ix_case_open_component_code ON "case" ({columns}) WHERE {OPEN_ORIGINAL}')


def upgrade() -> None:
    _index("component_code, reported_at")


def downgrade() -> None:
    _index("component_code")
