"""The live feed's commit order (issue 17 item 6): ``case_event.xid``, the writing transaction's id.

``case_event.id`` comes from a sequence when the row is inserted, not when it commits: under concurrency a
transaction holding id 100 can commit after one holding id 101, so a reader that remembers "the last id I
saw" would skip 100 for good. The feed (spatial/cases/feed.py) reads in commit-safe order instead: a row's
``xid`` is its transaction's 64-bit id (``pg_current_xact_id()``, the default; no writer names it); below the
lowest id of the database's transactions still in progress every row is final, and the feed orders those
rows by (xid, id). Rows written before this revision keep NULL (the feed never served them). BRIN (minmax
on bigint; PostgreSQL 15 has no BRIN class for xid8): ids grow with the append-only table's pages, so the
index is a few pages and costs an insert almost nothing; autosummarize keeps the newest ranges summarized.

Revision ID: 0018_case_event_xid
Revises: 0017_grid_plans
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_case_event_xid"
down_revision = "0017_grid_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The default is set after the column exists, so that the rows already stored keep NULL: a volatile
    # default given with ADD COLUMN would rewrite the whole table (millions of events) under one xid.
    op.add_column("case_event", sa.Column("xid", sa.BigInteger(), nullable=True))
    op.alter_column("case_event", "xid", server_default=sa.text("(pg_current_xact_id())::text::bigint"))
    op.create_index("ix_case_event_xid", "case_event", ["xid"], postgresql_using="brin",
                    postgresql_with={"autosummarize": "on", "pages_per_range": 16})


def downgrade() -> None:
    op.drop_index("ix_case_event_xid", table_name="case_event")
    op.drop_column("case_event", "xid")
