"""Issue 22 item 1: the workflow's tables ``case_unit`` and ``case_photo`` partitioned by their case's month.

Both belong to one case each and are read by it: a joint case's assisting units (migration 0021) and the photos
of a case (0022, the bytes: what grows most per case). They are partitioned with the case — by the case's
``reported_at``, copied into a new column of the same name — so that

- a read of a case's units or photos names the case's month (from ``case_key`` or the case's row, as a
  constant) and plans one month, like the case itself (spatial/cases/rows.py);
- ``gridlink db archive`` takes a month of units and photos with the same month of ``"case"`` (when all its
  cases are settled), so that an archived case leaves nothing of itself attached, and the photos — most of the
  bytes — leave with it;
- a join of units with their cases (scheduler, inbox, evaluation) matches months to months.

Keys: every unique key of a partitioned table holds the partition key. ``pk_case_unit`` becomes ``(case_id,
unit_key, reported_at)``, ``pk_case_photo`` ``(id, reported_at)`` and ``uq_case_photo_case_id_sha256`` ``(case_id,
sha256, reported_at)`` — the same guarantees, since all rows of one case carry its one ``reported_at``: the
trigger ``case_key_sync`` moves them with their case when the report's time changes (a case moved to another
month), and every writer takes the value from the case (``gridlink_case_month(case_id)``, migration 0033). A
photo id stays unique through its sequence. The foreign keys to ``case_key`` stay, under their names.

The conversion is in place, in one transaction, with a progress bar per table (the rows copied in batches);
the downgrade does the reverse.

Revision ID: 0035_workflow_partitions
Revises: 0034_case_trail_bounds
"""

from __future__ import annotations

import importlib
import logging
import time

import sqlalchemy as sa
from alembic import op

revision = "0035_workflow_partitions"
down_revision = "0034_case_trail_bounds"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# The definitions' reader, the rebuilder and the batch mover of 0028, and the months of "case" (0031): the units
# and photos get the same months, zone and months made ahead as their cases.
_trails = importlib.import_module("migrations.versions.0028_monthly_partitions")
_cases = importlib.import_module("migrations.versions.0031_case_partitions")
_bounds = importlib.import_module("migrations.versions.0034_case_trail_bounds")  # its rewriter of case_key_sync
ZONE, PREMAKE, OLDEST_MONTHS = _cases.ZONE, _cases.PREMAKE, _cases.OLDEST_MONTHS

# table: (primary key before, after; unique constraints before → after; the batch column; its id sequence)
TABLES: dict[str, dict] = {
    "case_unit": {"pk": ("case_id, unit_key", "case_id, unit_key, reported_at"), "unique": {},
                  "order": "case_id", "sequence": None},
    "case_photo": {"pk": ("id", "id, reported_at"),
                   "unique": {"uq_case_photo_case_id_sha256": ("case_id, sha256", "case_id, sha256, reported_at")},
                   "order": "id", "sequence": "case_photo_id_seq"},
}

# case_key_sync (0031, 0034): a case whose reported_at changes takes its units and photos along.
MOVE = """
            UPDATE case_unit SET reported_at = NEW.reported_at WHERE case_id = NEW.id AND reported_at <> NEW.reported_at;
            UPDATE case_photo SET reported_at = NEW.reported_at WHERE case_id = NEW.id AND reported_at <> NEW.reported_at;"""
# The two places of the function where the key's reported_at is written for an existing key (a plain UPDATE of
# the case, and the insert half of a move between months).
KEY_UPDATE = "reported_at = NEW.reported_at WHERE id = NEW.id;"


def _set_aside(conn, table: str, spec: dict, aside: str) -> dict[str, list]:
    """Rename ``table`` to ``aside`` bare of its unique constraints, triggers, indexes and foreign keys; return
    their definitions (but the unique constraints': ``spec`` has them) to make again on the new table."""
    parts = _trails._definitions(conn, table)  # drops the foreign keys
    op.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT pk_{table} TO pk_{aside}")
    for name in spec["unique"]:
        op.execute(f'ALTER TABLE {aside} DROP CONSTRAINT "{name}"')
    for trigger, _, _ in parts["triggers"]:
        op.execute(f'DROP TRIGGER "{trigger}" ON {aside}')
    parts["indexes"] = [(name, definition) for name, definition in parts["indexes"] if name not in spec["unique"]]
    for index, _ in parts["indexes"]:
        op.execute(f'DROP INDEX "{index}"')
    return parts


def upgrade() -> None:
    conn = op.get_bind()
    op.execute(f"SET LOCAL TimeZone = '{ZONE}'")
    for table, spec in TABLES.items():
        started = time.perf_counter()
        # The case's report time on every row first (from its key), then the table partitioned by it.
        op.execute(f"ALTER TABLE {table} ADD COLUMN reported_at timestamptz")
        op.execute(f"UPDATE {table} t SET reported_at = k.reported_at FROM case_key k WHERE k.id = t.case_id")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN reported_at SET NOT NULL")
        aside = f"{table}_unpartitioned"
        parts = _set_aside(conn, table, spec, aside)
        op.execute(f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                   " PARTITION BY RANGE (reported_at)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({spec['pk'][1]})")
        for name, (_, after) in spec["unique"].items():
            op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" UNIQUE ({after})')
        if spec["sequence"]:
            op.execute(f"ALTER SEQUENCE {spec['sequence']} OWNED BY {table}.id")
        # the months of "case" (a case's rows land in its own month's partition)
        start = conn.execute(sa.text(
            "SELECT to_char(greatest(coalesce(date_trunc('month', min(reported_at)), date_trunc('month', now())),"
            f" date_trunc('month', now()) - interval '{OLDEST_MONTHS} months'), 'YYYY-MM-DD') FROM case_key")).scalar()
        conn.execute(sa.text(
            "SELECT partman.create_parent(:parent, 'reported_at', 'native', 'monthly', p_premake := :premake,"
            " p_start_partition := :start)"), {"parent": f"public.{table}", "premake": PREMAKE, "start": start})
        conn.execute(sa.text("UPDATE partman.part_config SET infinite_time_partitions = true"
                             " WHERE parent_table = :parent"), {"parent": f"public.{table}"})
        moved = _trails._move(conn, aside, table, order=spec["order"])
        _trails._restore(parts, table)
        op.execute(f"DROP TABLE {aside}")
        op.execute(f"ANALYZE {table}")
        log.info("%s: %d rows moved into partitions in %.1f s", table, moved, time.perf_counter() - started)
    _bounds._rewrite_sync(conn, ((KEY_UPDATE, KEY_UPDATE + MOVE),), times=2)
    op.execute("RESET TimeZone")


def downgrade() -> None:
    conn = op.get_bind()
    _bounds._rewrite_sync(conn, ((KEY_UPDATE + MOVE, KEY_UPDATE),), times=2)
    for table, spec in TABLES.items():
        aside = f"{table}_partitioned"
        parts = _set_aside(conn, table, spec, aside)
        op.execute(f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({spec['pk'][0]})")
        if spec["sequence"]:
            op.execute(f"ALTER SEQUENCE {spec['sequence']} OWNED BY {table}.id")
        _trails._move(conn, aside, table, order=spec["order"])
        for name, (before, _) in spec["unique"].items():
            op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" UNIQUE ({before})')
        _trails._restore(parts, table)
        conn.execute(sa.text("DELETE FROM partman.part_config WHERE parent_table = :p"), {"p": f"public.{table}"})
        op.execute(f"DROP TABLE {aside} CASCADE")
        op.execute(f"DROP TABLE IF EXISTS partman.template_public_{table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN reported_at")
        op.execute(f"ANALYZE {table}")
