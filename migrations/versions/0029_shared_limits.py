"""Issue 22, item 5: the login back-off and the public rate limit shared by every server process.

With several ``gridlink serve`` processes (or machines) behind one address, counters kept in each process
allow N times the configured rate: a password guesser spreading its attempts over the processes would get N
times the failures before the back-off, a script N times the public submissions. With
``GRIDLINK_API_LIMITS=database`` (the default of ``gridlink serve --workers N`` with N > 1) the counters live
here instead (spatial/access/limits.py). ``UNLOGGED``: the counters are not worth a WAL record per login or
submission, are lost (emptied) if PostgreSQL crashes — everyone starts afresh, as with a restarted process —
and are not replicated (only the primary writes them).

Revision ID: 0029_shared_limits
Revises: 0028_monthly_partitions
"""

from alembic import op

revision = "0029_shared_limits"
down_revision = "0028_monthly_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE UNLOGGED TABLE rate_counter (key text CONSTRAINT pk_rate_counter PRIMARY KEY,"
               " value double precision NOT NULL, at timestamptz NOT NULL)")
    op.execute("CREATE INDEX ix_rate_counter_at ON rate_counter (at)")


def downgrade() -> None:
    op.execute("DROP TABLE rate_counter")
