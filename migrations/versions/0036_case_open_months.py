"""The months that hold open cases, so that reads of open cases prune the others (issue 22).

Reads of open cases of any age — the inbox, the case tiles, the scheduler's sweep, planning's open cases, the
overdue list — carry no time of their own: each probed the open-case index of every month of ``case`` attached
(the months made ahead and the default partition too). ``case_open_month`` holds every month (Beijing time, as
the partitions) in which a case may be open: ``month`` its first instant, ``next`` the next month's.

- The statement triggers ``case_open_month_insert`` / ``_update`` (AFTER, with the statement's new rows; ENABLE
  ALWAYS, so that loads under ``session_replication_role = replica`` keep them) add the month of each new row
  that is open — a new case, a reopened one, one moved to another month — unless it is there already: a
  month's first open case writes one row, the others only look (no lock is taken on a row that is there).
- ``gridlink db maintain`` (spatial/store/partitions.py ``narrow_open_months``) drops the months that no longer
  hold one, under a SHARE lock on ``case``: the lock waits for every transaction writing cases to end, so a case
  opened by one of them is seen before its month is judged empty.

So the set is never smaller than the months of the open cases (it may be larger until the next maintenance).
Readers (spatial/store/partitions.py ``open_span``) bound ``reported_at`` by the set's first and last months (and the
current month, which a new report takes) as constants: the planner prunes the months outside.

Revision ID: 0036_case_open_months
Revises: 0035_workflow_partitions
"""

from __future__ import annotations

import logging
import time

from alembic import op

revision = "0036_case_open_months"
down_revision = "0035_workflow_partitions"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

ZONE = "Asia/Shanghai"
OPEN = "state IN ('reported', 'registered', 'dispatched', 'handled', 'suspended')"  # as at this revision
MONTH = f"date_trunc('month', {{t}}, '{ZONE}')"
# The next month's first instant: 32 days on from the first is in the next month whatever the session's zone.
NEXT = f"date_trunc('month', date_trunc('month', {{t}}, '{ZONE}') + interval '32 days', '{ZONE}')"

ADD = f"""
CREATE FUNCTION gridlink_case_open_month() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The months of the statement's open rows that the set lacks (a month's first open case; else nothing).
    INSERT INTO case_open_month (month, next)
    SELECT m.month, {NEXT.format(t="m.month")}
    FROM (SELECT DISTINCT {MONTH.format(t="n.reported_at")} AS month FROM new_rows n WHERE n.{OPEN}) m
    WHERE NOT EXISTS (SELECT 1 FROM case_open_month o WHERE o.month = m.month)
    ON CONFLICT (month) DO NOTHING;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    started = time.perf_counter()
    op.execute("CREATE TABLE case_open_month (month timestamptz NOT NULL, next timestamptz NOT NULL,"
               " CONSTRAINT pk_case_open_month PRIMARY KEY (month),"
               " CONSTRAINT ck_case_open_month_order CHECK (next > month))")
    op.execute(ADD)
    for event, refs in (("INSERT", "NEW TABLE AS new_rows"), ("UPDATE", "NEW TABLE AS new_rows")):
        name = f"case_open_month_{event.lower()}"
        op.execute(f'CREATE TRIGGER {name} AFTER {event} ON "case" REFERENCING {refs}'
                   " FOR EACH STATEMENT EXECUTE FUNCTION gridlink_case_open_month()")
        op.execute(f'ALTER TABLE "case" ENABLE ALWAYS TRIGGER {name}')
    # Cases written while this runs wait for its lock on "case" (the triggers above are part of the table).
    op.execute('LOCK TABLE "case" IN SHARE MODE')
    op.execute(f"INSERT INTO case_open_month (month, next) SELECT m, {NEXT.format(t='m')}"
               f' FROM (SELECT DISTINCT {MONTH.format(t="reported_at")} AS m FROM "case" WHERE {OPEN}) o')
    held = op.get_bind().exec_driver_sql("SELECT count(*) FROM case_open_month").scalar()
    log.info("case_open_month: %d months hold open cases (%.1f s)", held, time.perf_counter() - started)


def downgrade() -> None:
    for name in ("case_open_month_insert", "case_open_month_update"):
        op.execute(f'DROP TRIGGER {name} ON "case"')
    op.execute("DROP FUNCTION gridlink_case_open_month()")
    op.execute("DROP TABLE case_open_month")
