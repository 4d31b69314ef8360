"""The times a case's trail spans, kept with its keys, so that reads of a trail prune the months (issue 22).

``case_event`` is partitioned by the month of an event's ``at`` (migration 0028); a case's trail is read by
``case_id``, which names no month, so each read planned and probed every month attached (19 on the full demo's
year, plus the months made ahead). The case's ``reported_at`` is no bound: the workflow takes its clock from the
caller and an import may hold events before the report.

``case_key`` gains ``trail_from`` and ``trail_to``: every event of the case lies between them.

- ``case_key_sync`` writes both as the case's ``reported_at`` when the key is made (the report event's time:
  the intake's first event then changes nothing);
- the statement trigger ``case_event_trail`` (AFTER INSERT, with the statement's new rows; ENABLE ALWAYS, so
  that bulk loads under ``session_replication_role = replica`` keep it too) widens them to each case's new
  events — one UPDATE per statement, only of the keys whose bounds move (``case_event`` is append-only: its
  rows are never changed or deleted one by one, so the bounds never shrink);
- NULL stands for "not known": a reader then reads every month. The backfill below leaves none.

Readers (spatial/cases/rows.py ``trail_window``) bind the bounds as constants: ``at BETWEEN '…' AND '…'``,
which the planner prunes to the months between. A month detached by ``gridlink db archive`` leaves bounds that
are wider than the events still attached: harmless.

The backfill reads each case's events once (by id ranges, with a progress bar).

Revision ID: 0034_case_trail_bounds
Revises: 0033_case_month_function
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from alembic import op
from tqdm import tqdm

revision = "0034_case_trail_bounds"
down_revision = "0033_case_month_function"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

BATCH = 50_000  # ids per backfill statement

KEY_INSERT = ("INSERT INTO case_key (id, case_no, idempotency_key, reported_at)",
              "INSERT INTO case_key (id, case_no, idempotency_key, reported_at, trail_from, trail_to)")
KEY_VALUES = ("VALUES (NEW.id, NEW.case_no, NEW.idempotency_key, NEW.reported_at)",
              "VALUES (NEW.id, NEW.case_no, NEW.idempotency_key, NEW.reported_at, NEW.reported_at, NEW.reported_at)")

TRAIL = """
CREATE FUNCTION gridlink_case_trail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Widen the bounds of each case the statement wrote events of (unknown bounds, NULL, stay unknown).
    UPDATE case_key k SET trail_from = least(k.trail_from, n.first_at), trail_to = greatest(k.trail_to, n.last_at)
    FROM (SELECT case_id, min(at) AS first_at, max(at) AS last_at FROM new_events GROUP BY case_id) n
    WHERE k.id = n.case_id AND (n.first_at < k.trail_from OR n.last_at > k.trail_to);
    RETURN NULL;
END $$
"""


def _rewrite_sync(conn, pairs: tuple[tuple[str, str], ...], times: int = 1) -> None:
    """Replace each ``old`` (held ``times`` times) by its ``new`` in gridlink_case_key_sync's definition, as the
    catalogue holds it (0035 rewrites it too)."""
    definition = conn.execute(
        sa.text("SELECT pg_get_functiondef(CAST('gridlink_case_key_sync()' AS regprocedure))")).scalar()
    for old, new in pairs:
        if definition.count(old) != times:
            raise RuntimeError(f"gridlink_case_key_sync does not hold {old!r} {times} times: not the function this "
                               "migration knows")
        definition = definition.replace(old, new)
    op.execute(definition)


def upgrade() -> None:
    conn = op.get_bind()
    started = time.perf_counter()
    op.execute("ALTER TABLE case_key ADD COLUMN trail_from timestamptz, ADD COLUMN trail_to timestamptz")
    # The trigger first: events written while this transaction runs wait for its lock on case_key anyway.
    _rewrite_sync(conn, (KEY_INSERT, KEY_VALUES))
    op.execute(TRAIL)
    op.execute("CREATE TRIGGER case_event_trail AFTER INSERT ON case_event REFERENCING NEW TABLE AS new_events"
               " FOR EACH STATEMENT EXECUTE FUNCTION gridlink_case_trail()")
    op.execute("ALTER TABLE case_event ENABLE ALWAYS TRIGGER case_event_trail")
    low, high = conn.execute(sa.text("SELECT min(id), max(id) FROM case_key")).one()
    done = 0
    if low is not None:
        total = conn.execute(sa.text("SELECT count(*) FROM case_key")).scalar() or 0
        with tqdm(total=total, desc="case_key: trail bounds", unit="case", disable=None, mininterval=1.0) as bar:
            for start in range(low, high + 1, BATCH):
                span = {"a": start, "b": start + BATCH - 1}
                step = conn.execute(sa.text(
                    "UPDATE case_key k SET trail_from = least(k.reported_at, e.first_at),"
                    " trail_to = greatest(k.reported_at, e.last_at)"
                    " FROM (SELECT case_id, min(at) AS first_at, max(at) AS last_at FROM case_event"
                    "       WHERE case_id BETWEEN :a AND :b GROUP BY case_id) e"
                    " WHERE k.id = e.case_id"), span).rowcount
                step += conn.execute(sa.text(  # a case without events (none is written so): its report time
                    "UPDATE case_key SET trail_from = reported_at, trail_to = reported_at"
                    " WHERE id BETWEEN :a AND :b AND trail_from IS NULL"), span).rowcount
                done += step
                bar.update(step)
    op.execute("ANALYZE case_key")
    log.info("case_key: trail bounds of %d cases in %.1f s", done, time.perf_counter() - started)


def downgrade() -> None:
    conn = op.get_bind()
    op.execute("DROP TRIGGER case_event_trail ON case_event")
    op.execute("DROP FUNCTION gridlink_case_trail()")
    _rewrite_sync(conn, tuple((new, old) for old, new in (KEY_VALUES, KEY_INSERT)))
    op.execute("ALTER TABLE case_key DROP COLUMN trail_from, DROP COLUMN trail_to")
