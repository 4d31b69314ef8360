"""Issue 22 item 1: the table ``case`` partitioned by month of ``reported_at``, its global keys in ``case_key``.

Migration 0028 partitioned the trails; ``case`` waited because every unique key of a partitioned table must hold
the partition key, and three guarantees do not: ``case_no`` unique, ``idempotency_key`` unique (no case stored
twice, also across a failover) and the foreign keys of ``case_event``, ``case_unit``, ``case_photo`` and
``case.duplicate_of`` to a case's ``id``. They move to a plain side table of the global keys:

    case_key (id PK, case_no UNIQUE uq_case_case_no, idempotency_key UNIQUE uq_case_idempotency_key, reported_at)

with the constraint names of before (spatial/ and api/ map unique violations by those names), and

- the trigger ``case_key_sync`` (AFTER INSERT, UPDATE OF case_no, idempotency_key, reported_at, DELETE; per row;
  ENABLE ALWAYS so that bulk loads under ``session_replication_role = replica`` keep it too) writes the key row
  in the statement that writes the case: a second case with a used number, key or id (in any month) is refused
  by the unique constraints of ``case_key``; a report moved to another month keeps its key; a deleted case
  takes its key, which the children's foreign keys refuse while they hold rows, as before;
- ``case_key_truncate`` empties ``case_key`` when ``case`` is truncated;
- the children's foreign keys point at ``case_key (id)`` under their old names, ON DELETE as before;
- the evaluation's summary trigger (``gridlink_case_kpi``) reads the case's month from ``case_key`` before its
  UPDATE, so that it touches one month.

There is no foreign key from ``case_key`` to ``case``: it would refuse to detach an archived month of cases and
``TRUNCATE case_photo, case_unit, case_event, "case"`` (docs/scale-out.md, section 6).

``case`` becomes ``PARTITION BY RANGE (reported_at)``, one partition per month of Beijing time (``case_p2026_03``)
plus ``case_default``, managed by pg_partman like the trails (``gridlink db maintain``); its primary key is
``(id, reported_at)``. The conversion is in place, in one transaction, with a progress bar; the downgrade does the
reverse (pg_partman stays: 0028 uses it).

Revision ID: 0031_case_partitions
Revises: 0030_kpi_rollup_area_index
"""

from __future__ import annotations

import importlib
import logging
import time

import sqlalchemy as sa
from alembic import op

revision = "0031_case_partitions"
down_revision = "0030_kpi_rollup_area_index"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# The definitions' reader, the rebuilder and the batch mover of 0028 (frozen with it; the same catalogue rules).
_trails = importlib.import_module("migrations.versions.0028_monthly_partitions")

ZONE = "Asia/Shanghai"
PREMAKE = 4
OLDEST_MONTHS = 36
UNIQUE = ("uq_case_case_no", "uq_case_idempotency_key")

KEY_SYNC = """
CREATE OR REPLACE FUNCTION gridlink_case_key_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- A row moved to another month (an UPDATE of reported_at is a delete and an insert) keeps its key.
        DELETE FROM case_key k WHERE k.id = OLD.id AND NOT EXISTS (SELECT 1 FROM "case" c WHERE c.id = OLD.id);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE case_key SET case_no = NEW.case_no, idempotency_key = NEW.idempotency_key,
                            reported_at = NEW.reported_at WHERE id = NEW.id;
    ELSE
        INSERT INTO case_key (id, case_no, idempotency_key, reported_at)
            VALUES (NEW.id, NEW.case_no, NEW.idempotency_key, NEW.reported_at) ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
            -- The id has a key: this row moved from another month, or it is a second case with this id.
            IF (SELECT count(*) FROM "case" WHERE id = NEW.id) > 1 THEN
                RAISE EXCEPTION 'duplicate key value violates unique constraint "pk_case_key"'
                    USING ERRCODE = 'unique_violation', CONSTRAINT = 'pk_case_key', TABLE = 'case_key',
                          DETAIL = format('Key (id)=(%s) already exists.', NEW.id);
            END IF;
            UPDATE case_key SET case_no = NEW.case_no, idempotency_key = NEW.idempotency_key,
                                reported_at = NEW.reported_at WHERE id = NEW.id;
        END IF;
    END IF;
    RETURN NULL;
END;
$$
"""
KEY_TRUNCATE = """
CREATE OR REPLACE FUNCTION gridlink_case_key_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The keys go with their cases; the trails, units and photos that point at them must go in the same
    -- statement (TRUNCATE case_event, case_unit, case_photo, "case"), or their foreign keys refuse it, as before.
    -- (A nested TRUNCATE cannot: the tables are in use by the statement that fired this.)
    DELETE FROM case_key;
    RETURN NULL;
END;
$$
"""
TRIGGERS = (
    'CREATE TRIGGER case_key_sync AFTER INSERT OR UPDATE OF case_no, idempotency_key, reported_at OR DELETE'
    ' ON "case" FOR EACH ROW EXECUTE FUNCTION gridlink_case_key_sync()',
    'CREATE TRIGGER case_key_truncate AFTER TRUNCATE ON "case" FOR EACH STATEMENT'
    " EXECUTE FUNCTION gridlink_case_key_truncate()",
)


# The evaluation's summary (gridlink_case_kpi, on every event): its UPDATE of the case by id reads the case's month
# from case_key first, so that it touches one month (run-time pruning) instead of probing each.
KPI_BY_ID = "WHERE id = NEW.case_id;"
KPI_PRUNED = "WHERE id = NEW.case_id AND reported_at = (SELECT k.reported_at FROM case_key k WHERE k.id = NEW.case_id);"


def _rewrite_kpi(conn, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in gridlink_case_kpi's definition, as the catalogue holds it."""
    definition = conn.execute(sa.text("SELECT pg_get_functiondef(CAST('gridlink_case_kpi()' AS regprocedure))")).scalar()
    if definition.count(old) != 1:
        raise RuntimeError(f"gridlink_case_kpi does not hold {old!r} once: not the function this migration knows")
    op.execute(definition.replace(old, new))


def upgrade() -> None:
    conn = op.get_bind()
    started = time.perf_counter()
    op.execute(f"SET LOCAL TimeZone = '{ZONE}'")
    children = _children(conn, '"case"')
    for table, name, _ in children:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    parts = _trails._definitions(conn, '"case"')
    aside = "case_unpartitioned"
    op.execute(f'ALTER TABLE "case" RENAME TO {aside}')
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT pk_case TO pk_{aside}")
    for name in UNIQUE:
        op.execute(f'ALTER TABLE {aside} DROP CONSTRAINT "{name}"')
    for trigger, _, _ in parts["triggers"]:
        op.execute(f'DROP TRIGGER "{trigger}" ON {aside}')
    for index, _ in parts["indexes"]:
        if index not in UNIQUE:
            op.execute(f'DROP INDEX "{index}"')
    # The unique constraints' indexes become plain ones: case_no is still read on "case" (Open311's token).
    parts["indexes"] = [(name, definition) for name, definition in parts["indexes"] if name not in UNIQUE]
    parts["indexes"].append(("ix_case_case_no", 'CREATE INDEX ix_case_case_no ON public."case" USING btree (case_no)'))
    parts["foreign"] = [(name, definition.replace('REFERENCES "case"(id)', "REFERENCES case_key(id)"))
                        for name, definition in parts["foreign"]]
    op.execute(f'CREATE TABLE "case" (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
               " PARTITION BY RANGE (reported_at)")
    op.execute('ALTER TABLE "case" ADD CONSTRAINT pk_case PRIMARY KEY (id, reported_at)')
    op.execute('ALTER SEQUENCE case_id_seq OWNED BY "case".id')
    start = conn.execute(sa.text(
        "SELECT to_char(greatest(coalesce(date_trunc('month', min(reported_at)), date_trunc('month', now())),"
        f" date_trunc('month', now()) - interval '{OLDEST_MONTHS} months'), 'YYYY-MM-DD') FROM {aside}")).scalar()
    conn.execute(sa.text(
        "SELECT partman.create_parent('public.case', 'reported_at', 'native', 'monthly', p_premake := :premake,"
        " p_start_partition := :start)"), {"premake": PREMAKE, "start": start})
    conn.execute(sa.text("UPDATE partman.part_config SET infinite_time_partitions = true"
                         " WHERE parent_table = 'public.case'"))
    moved = _trails._move(conn, aside, '"case"', order="id")
    op.execute("CREATE TABLE case_key (id bigint NOT NULL, case_no varchar(20) NOT NULL,"
               " idempotency_key varchar(128), reported_at timestamptz NOT NULL,"
               " CONSTRAINT pk_case_key PRIMARY KEY (id), CONSTRAINT uq_case_case_no UNIQUE (case_no),"
               " CONSTRAINT uq_case_idempotency_key UNIQUE (idempotency_key))")
    op.execute('INSERT INTO case_key (id, case_no, idempotency_key, reported_at)'
               ' SELECT id, case_no, idempotency_key, reported_at FROM "case"')
    op.execute(f"ALTER TABLE case_key OWNER TO {parts['owner'][0]}")
    for privilege, grantee, grantable in parts["grants"]:
        op.execute(f"GRANT {privilege} ON case_key TO {grantee}{' WITH GRANT OPTION' if grantable else ''}")
    _trails._restore(parts, '"case"')
    op.execute(KEY_SYNC)
    op.execute(KEY_TRUNCATE)
    _rewrite_kpi(conn, KPI_BY_ID, KPI_PRUNED)
    for trigger in TRIGGERS:
        op.execute(trigger)
    # ALWAYS: bulk loads run with session_replication_role = replica (spatial/store/integrity.py) and must write
    # the keys too.
    op.execute('ALTER TABLE "case" ENABLE ALWAYS TRIGGER case_key_sync')
    op.execute('ALTER TABLE "case" ENABLE ALWAYS TRIGGER case_key_truncate')
    for table, name, definition in children:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" '
                   + definition.replace('REFERENCES "case"(id)', "REFERENCES case_key(id)"))
    op.execute(f"DROP TABLE {aside}")
    op.execute('ANALYZE "case"')
    op.execute("ANALYZE case_key")
    op.execute("RESET TimeZone")
    months = conn.execute(sa.text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST('\"case\"' AS regclass)"))
    log.info("case: %d rows moved into %d partitions in %.1f s", moved, months.scalar(),
             time.perf_counter() - started)


def downgrade() -> None:
    conn = op.get_bind()
    op.execute(f"SET LOCAL TimeZone = '{ZONE}'")
    children = _children(conn, "case_key")
    for table, name, _ in children:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    _rewrite_kpi(conn, KPI_PRUNED, KPI_BY_ID)
    op.execute('DROP TRIGGER case_key_sync ON "case"')
    op.execute('DROP TRIGGER case_key_truncate ON "case"')
    op.execute("DROP FUNCTION gridlink_case_key_sync()")
    op.execute("DROP FUNCTION gridlink_case_key_truncate()")
    op.execute("DROP TABLE case_key")
    parts = _trails._definitions(conn, '"case"')
    parts["indexes"] = [(name, definition) for name, definition in parts["indexes"] if name != "ix_case_case_no"]
    parts["foreign"] = [(name, definition.replace("REFERENCES case_key(id)", 'REFERENCES "case"(id)'))
                        for name, definition in parts["foreign"]]
    aside = "case_partitioned"
    op.execute(f'ALTER TABLE "case" RENAME TO {aside}')
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT pk_case TO pk_{aside}")
    for trigger, _, _ in parts["triggers"]:
        op.execute(f'DROP TRIGGER "{trigger}" ON {aside}')
    for index, _ in parts["indexes"]:
        op.execute(f'DROP INDEX "{index}"')
    op.execute("DROP INDEX ix_case_case_no")
    op.execute(f'CREATE TABLE "case" (LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    op.execute('ALTER TABLE "case" ADD CONSTRAINT pk_case PRIMARY KEY (id)')
    op.execute('ALTER SEQUENCE case_id_seq OWNED BY "case".id')
    _trails._move(conn, aside, '"case"', order="id")
    op.execute('ALTER TABLE "case" ADD CONSTRAINT uq_case_case_no UNIQUE (case_no)')
    op.execute('ALTER TABLE "case" ADD CONSTRAINT uq_case_idempotency_key UNIQUE (idempotency_key)')
    _trails._restore(parts, '"case"')
    for table, name, definition in children:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" '
                   + definition.replace("REFERENCES case_key(id)", 'REFERENCES "case"(id)'))
    conn.execute(sa.text("DELETE FROM partman.part_config WHERE parent_table = 'public.case'"))
    op.execute(f"DROP TABLE {aside} CASCADE")
    op.execute("DROP TABLE IF EXISTS partman.template_public_case")
    op.execute('ANALYZE "case"')
    op.execute("RESET TimeZone")


def _children(conn, parent: str) -> list[tuple[str, str, str]]:
    """The foreign keys of other tables (and of ``parent`` itself) that reference ``parent``: (table, name,
    definition), each once (not the copies on partitions)."""
    return [tuple(row) for row in conn.execute(sa.text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE confrelid = CAST(:t AS regclass) AND contype = 'f' AND conparentid = 0"
        " AND conrelid <> confrelid ORDER BY 1, 2"), {"t": parent}).all()]
