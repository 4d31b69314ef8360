"""Issue 22, measured at province scale: the KPI of one area reads its grids' rollup rows, not the whole map's.

The rollup's primary key is ``(span, day, grid_code, unit_key, lead)``: a period's rows of one district are
found by walking every grid's rows of the period's days and filtering by grid code — 790,184 rows read for
7,398 in the generated province (bench/scale.py --part province), growing with the map instead of the area.
``(span, grid_code, day)`` lets the statement (spatial/cases/kpi_rollup.py ``ROLLED``: the area's grid-code
range, then the days) read only the area's rows: 187–645 ms → 46–86 ms there, tried by EXPLAIN ANALYZE.

Revision ID: 0030_kpi_rollup_area_index
Revises: 0029_shared_limits
"""

from alembic import op

revision = "0030_kpi_rollup_area_index"
down_revision = "0029_shared_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_kpi_rollup_span_grid_day", "kpi_rollup", ["span", "grid_code", "day"])


def downgrade() -> None:
    op.drop_index("ix_kpi_rollup_span_grid_day", table_name="kpi_rollup")
