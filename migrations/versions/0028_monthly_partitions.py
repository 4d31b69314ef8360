"""Issue 22 item 1: the case trails — ``case_event`` and ``audit_log`` — partitioned by month, managed by pg_partman.

Both tables are append-only histories that grow without bound (the full demo: ~3.5 million events a year for
~580,000 cases) and are always read by a case or by a period. They become native declarative partitioned
tables, ``PARTITION BY RANGE (at)``, one partition per month of Beijing time (``case_event_p2026_03``), with a
default partition for rows outside the months that exist; pg_partman (``partman`` schema) keeps 4 months
made ahead (``gridlink db maintain``, the worker) and ``gridlink db archive`` detaches old ones
(spatial/store/partitions.py). docs/scale-out.md explains why ``case`` itself stays one table.

Every unique key of a partitioned table must contain the partition key: the primary keys become (id, at);
the scheduler's unique indexes on orders (``uq_case_event_order``, ``uq_case_event_assist_order``, migrations
0016 and 0022) cannot stay as indexes, so the trigger ``case_event_order_once`` keeps the same guarantee
(one order per key, whatever number of workers) under a transaction-scoped advisory lock per key, and
refuses a doubled order with the same constraint names.

The conversion is in place: each table is renamed aside, the partitioned table made in its place (same
columns, defaults, checks and sequence), its rows moved across in id batches (each routed to its month; a
progress bar on a terminal, a log line per table), then indexes, foreign keys and triggers — with their
enabled state (``case_event_kpi`` fires ALWAYS) —, grants and owner are made again from the catalogue's own
definitions, and the old table dropped. The downgrade does the reverse and removes pg_partman.

Revision ID: 0028_monthly_partitions
Revises: 0027_registry_page_indexes
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from alembic import op
from tqdm import tqdm

revision = "0028_monthly_partitions"
down_revision = "0027_registry_page_indexes"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TABLES = ("case_event", "audit_log")
ZONE = "Asia/Shanghai"  # partitions hold months of Beijing time, the months the evaluation counts in
PREMAKE = 4
OLDEST_MONTHS = 36  # rows older than this many months before now stay in the default partition
BATCH = 200_000
ORDER_INDEXES = {
    "uq_case_event_order": ("kind IN ('remind', 'supervise')", "step"),
    "uq_case_event_assist_order": ("kind IN ('assist_remind', 'assist_supervise')", "unit"),
}

ORDER_GUARD = """
CREATE OR REPLACE FUNCTION gridlink_case_event_order_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    field text := CASE WHEN NEW.kind IN ('assist_remind', 'assist_supervise') THEN 'unit' ELSE 'step' END;
    name text := CASE WHEN field = 'unit' THEN 'uq_case_event_assist_order' ELSE 'uq_case_event_order' END;
BEGIN
    IF NEW.data ->> field IS NULL OR NEW.data ->> 'deadline' IS NULL THEN
        RETURN NEW;  -- no key: the check constraints refuse the row
    END IF;
    -- Held to the end of the transaction: a second writer of the same key waits here, then sees the first's row.
    PERFORM pg_advisory_xact_lock(hashtextextended(
        concat_ws('/', 'case_event_order', NEW.case_id, NEW.kind, NEW.data ->> field, NEW.data ->> 'deadline'), 0));
    IF EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = NEW.case_id AND e.kind = NEW.kind
               AND e.data ->> field = NEW.data ->> field AND e.data ->> 'deadline' = NEW.data ->> 'deadline') THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "%"', name
            USING ERRCODE = 'unique_violation', CONSTRAINT = name, TABLE = 'case_event';
    END IF;
    RETURN NEW;
END;
$$
"""
ORDER_TRIGGER = ("CREATE TRIGGER case_event_order_once BEFORE INSERT ON case_event FOR EACH ROW"
                 " WHEN (NEW.kind IN ('remind', 'supervise', 'assist_remind', 'assist_supervise'))"
                 " EXECUTE FUNCTION gridlink_case_event_order_once()")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS partman")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
    op.execute(f"SET LOCAL TimeZone = '{ZONE}'")
    for name in ORDER_INDEXES:
        op.drop_index(name, table_name="case_event")
    for table in TABLES:
        _partition(table)
    op.execute(ORDER_GUARD)
    op.execute(ORDER_TRIGGER)
    op.execute("RESET TimeZone")


def downgrade() -> None:
    op.execute(f"SET LOCAL TimeZone = '{ZONE}'")
    op.execute("DROP TRIGGER IF EXISTS case_event_order_once ON case_event")
    op.execute("DROP FUNCTION IF EXISTS gridlink_case_event_order_once()")
    for table in TABLES:
        _unpartition(table)
    for name, (kinds, field) in ORDER_INDEXES.items():
        op.execute(f"CREATE UNIQUE INDEX {name} ON case_event (case_id, kind, (data ->> '{field}'),"
                   f" (data ->> 'deadline')) WHERE {kinds}")
    op.execute("DROP EXTENSION IF EXISTS pg_partman")
    op.execute("DROP SCHEMA IF EXISTS partman CASCADE")
    op.execute("RESET TimeZone")


def _partition(table: str) -> None:
    """Make ``table`` a partitioned table by month of ``at`` in place, keeping every row and definition."""
    conn = op.get_bind()
    started = time.perf_counter()
    parts = _definitions(conn, table)
    aside = f"{table}_unpartitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT pk_{table} TO pk_{aside}")
    for trigger, _, _ in parts["triggers"]:
        op.execute(f'DROP TRIGGER "{trigger}" ON {aside}')
    for index, _ in parts["indexes"]:
        op.execute(f'DROP INDEX "{index}"')
    op.execute(f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
               " PARTITION BY RANGE (at)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id, at)")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    start = conn.execute(sa.text(
        f"SELECT to_char(greatest(coalesce(date_trunc('month', min(at)), date_trunc('month', now())),"
        f" date_trunc('month', now()) - interval '{OLDEST_MONTHS} months'), 'YYYY-MM-DD') FROM {aside}")).scalar()
    conn.execute(sa.text(
        "SELECT partman.create_parent(:parent, 'at', 'native', 'monthly', p_premake := :premake,"
        " p_start_partition := :start)"), {"parent": f"public.{table}", "premake": PREMAKE, "start": start})
    conn.execute(sa.text("UPDATE partman.part_config SET infinite_time_partitions = true"
                         " WHERE parent_table = :parent"), {"parent": f"public.{table}"})
    moved = _move(conn, aside, table, order="id")
    _restore(parts, table)
    op.execute(f"DROP TABLE {aside}")
    op.execute(f"ANALYZE {table}")
    months = conn.execute(sa.text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST(:t AS regclass)"),
                          {"t": table}).scalar()
    log.info("%s: %d rows moved into %d partitions in %.1f s", table, moved, months,
             time.perf_counter() - started)


def _unpartition(table: str) -> None:
    """Make the partitioned ``table`` one plain table again, keeping every row and definition."""
    conn = op.get_bind()
    parts = _definitions(conn, table)
    aside = f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT pk_{table} TO pk_{aside}")
    for trigger, _, _ in parts["triggers"]:
        op.execute(f'DROP TRIGGER "{trigger}" ON {aside}')
    for index, _ in parts["indexes"]:
        op.execute(f'DROP INDEX "{index}"')
    op.execute(f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    _move(conn, aside, table, order="id")
    _restore(parts, table)
    conn.execute(sa.text("DELETE FROM partman.part_config WHERE parent_table = :p"), {"p": f"public.{table}"})
    op.execute(f"DROP TABLE {aside} CASCADE")
    op.execute(f"DROP TABLE IF EXISTS partman.template_public_{table}")
    op.execute(f"ANALYZE {table}")


def _definitions(conn, table: str) -> dict[str, list]:
    """The indexes (but the primary key), foreign keys and triggers of ``table``, as the catalogue defines them."""
    oid = {"t": table}
    indexes = conn.execute(sa.text(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary ORDER BY 1"), oid).all()
    foreign = conn.execute(sa.text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY 1"), oid).all()
    triggers = conn.execute(sa.text(
        "SELECT tgname, pg_get_triggerdef(oid), tgenabled FROM pg_trigger"
        " WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal AND tgparentid = 0 ORDER BY 1"), oid).all()
    # Grants (PUBLIC when the grantee is 0) and the owner: the new table is made by whoever migrates.
    grants = conn.execute(sa.text(
        "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,"
        " a.is_grantable FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE c.oid = CAST(:t AS regclass) AND a.grantee <> c.relowner ORDER BY 2, 1"), oid).all()
    owner = conn.execute(sa.text("SELECT quote_ident(pg_get_userbyid(relowner)) FROM pg_class"
                                 " WHERE oid = CAST(:t AS regclass)"), oid).scalar()
    for name, _ in foreign:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return {"indexes": list(indexes), "foreign": list(foreign), "triggers": list(triggers), "grants": list(grants),
            "owner": [owner]}


def _restore(parts: dict[str, list], table: str) -> None:
    """Make the indexes, foreign keys, triggers, grants and owner of ``parts`` again on ``table`` (after its rows
    are in)."""
    op.execute(f"ALTER TABLE {table} OWNER TO {parts['owner'][0]}")
    for privilege, grantee, grantable in parts["grants"]:
        option = " WITH GRANT OPTION" if grantable else ""
        op.execute(f"GRANT {privilege} ON {table} TO {grantee}{option}")
    for _, definition in parts["indexes"]:
        op.execute(definition)
    for name, definition in parts["foreign"]:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition, enabled in parts["triggers"]:
        op.execute(definition)
        state = {"A": "ENABLE ALWAYS", "R": "ENABLE REPLICA", "D": "DISABLE"}.get(enabled)
        if state:
            op.execute(f'ALTER TABLE {table} {state} TRIGGER "{name}"')


def _move(conn, source: str, target: str, order: str) -> int:
    """Copy every row of ``source`` into ``target`` in batches of ids; return how many."""
    low, high, total = conn.execute(sa.text(f"SELECT min({order}), max({order}), count(*) FROM {source}")).one()
    if not total:
        return 0
    with tqdm(total=total, desc=f"{target}: rows moved", unit="row", disable=None, mininterval=1.0) as bar:
        for first in range(low, high + 1, BATCH):
            done = conn.execute(sa.text(f"INSERT INTO {target} SELECT * FROM {source}"
                                        f" WHERE {order} >= :a AND {order} < :b"), {"a": first, "b": first + BATCH})
            bar.update(done.rowcount)
    return int(total)
