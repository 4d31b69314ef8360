"""Monthly partitions of the case trails (issue 22 item 1, migration 0028): ``case_event`` and ``audit_log``;
of the cases (0031) and, with their case, its units and photos (0035) — see ``MANAGED`` below.

Both are partitioned by month of ``at`` (Beijing time, the months the evaluation counts in), one partition
``<table>_pYYYY_MM`` per month plus ``<table>_default`` for rows of a month that has no partition yet, and
managed by pg_partman (schema ``partman``; docs/scale-out.md says why ``case`` itself stays one table):

- ``maintain`` (``gridlink db maintain``; hourly in the scheduler, spatial/cases/jobs.py) moves any rows that
  landed in a default partition into partitions of their months (pg_partman ``partition_data_time``), then
  keeps ``PREMAKE`` months made ahead of now (``run_maintenance``), so that new rows always have their month.
- ``cover`` makes the months from a date on (a bulk load of old history, such as the demo, calls it first).
- ``archive`` (``gridlink db archive --before YYYY-MM [--dump DIR]``) detaches every whole month before the
  given one from its table; with a folder, each detached month is dumped (pg_dump custom format) and dropped.
  A detached month is an ordinary table again: out of every query, kept as it was.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Engine, SQLColumnExpression, and_, make_url, text
from sqlalchemy.exc import OperationalError

from spatial.store.backup import BackupError, _client_args
from spatial.store.cluster import find_bindir
from spatial.store.models.cases import OPEN

PARTITIONED = ("case_event", "audit_log")  # the trails (migration 0028): archived by month
# Every table pg_partman keeps months of: the trails and, since migration 0031, the cases themselves (by
# ``reported_at``; their global keys in ``case_key``). ``archive`` takes a month of "case" only when all its cases
# are closed or voided; their keys stay (numbers and idempotency keys stay taken, what points at them stays valid).
# Since migration 0035 the workflow's tables of a case too — its assisting units and its photos — by their case's
# ``reported_at`` (``WITH_CASE``): a month of them is archived with the same month of "case".
WITH_CASE = ("case_unit", "case_photo")
MANAGED = (*PARTITIONED, "case", *WITH_CASE)
# How long before its case's ``reported_at`` an event may be: intake refuses a report dated more than CLOCK_SKEW
# (spatial/access/scope.py, the same 5 minutes; tests/integration/test_partitions.py holds them equal) ahead of
# its clock, and every later event is written at its clock. A period's reads of events (the evaluation) are
# bounded below by its start ``- EVENT_MARGIN``, so the months before the period are pruned (a case's own events
# are read between its trail's bounds instead: migration 0034, spatial/cases/rows.py).
EVENT_MARGIN = timedelta(minutes=5)
EVENT_MARGIN_SQL = "interval '5 minutes'"
ZONE = "Asia/Shanghai"
LOCAL = ZoneInfo(ZONE)
_PARTITION = re.compile(r"^(?:case_event|audit_log|case|case_unit|case_photo)_(?:p\d{4}_\d{2}|default)$")


# The span of report times that holds every open case (migration 0036): from the first month of case_open_month
# to the end of its last, widened to the current month (where a new report lands; an empty set gives just it).
_OPEN = text(
    f"SELECT least(min(month), date_trunc('month', now(), '{ZONE}')),"
    f" greatest(max(next), date_trunc('month', date_trunc('month', now() + interval '5 minutes', '{ZONE}')"
    f"                                         + interval '32 days', '{ZONE}'))"
    " FROM case_open_month")
# A read of open cases bound to that span (``reported_at``, the partition key of "case", against constants).
OPEN_SPAN = ("{k}.reported_at >= CAST(:open_from AS timestamptz)"
             " AND {k}.reported_at < CAST(:open_to AS timestamptz)")


def open_between(column: SQLColumnExpression[datetime], span: dict[str, datetime]) -> ColumnElement[bool]:
    """:data:`OPEN_SPAN` for a query built with SQLAlchemy: ``column`` (a ``reported_at``) within ``span``."""
    return and_(column >= span["open_from"], column < span["open_to"])


def open_span(conn: Connection) -> dict[str, datetime]:
    """The parameters of :data:`OPEN_SPAN`: every open case was reported in ``[open_from, open_to)``, so a read of
    open cases that names them plans only the months between (the months made ahead, the default partition and
    the months before the oldest open case are pruned).

    The set is read in a statement of its own: a case opened by another transaction in a month outside the span
    after it was read (a reopened old case, a report dated in an older month) shows from the next read on."""
    first, last = conn.execute(_OPEN).one()
    return {"open_from": first, "open_to": last}


LOCK_WAIT = "5s"  # how long narrow_open_months waits for the writers of cases before it leaves the set as it is
LOCK_NOT_AVAILABLE = "55P03"


class PartitionError(RuntimeError):
    """A partition cannot be maintained or archived as asked; the message says why."""


@dataclass
class Maintained:
    """What ``maintain`` did per table: rows moved out of its default partition, its months, the newest."""

    moved: dict[str, int] = field(default_factory=dict)
    months: dict[str, int] = field(default_factory=dict)
    newest: dict[str, str] = field(default_factory=dict)
    # The months holding open cases after ``narrow_open_months`` (None: its lock was not had, the set kept).
    open_months: list[str] | None = None


def is_partition(name: str) -> bool:
    """Tell whether ``name`` is a month (or default) partition of a partitioned table, not a model's table."""
    return bool(_PARTITION.match(name))


def months(conn: Connection, table: str) -> list[tuple[str, datetime, datetime]]:
    """The month partitions of ``table``, oldest first: (name, start, end) with ``end`` exclusive."""
    rows = conn.execute(text(
        "SELECT c.relname, CAST(b[1] AS timestamptz), CAST(b[2] AS timestamptz)"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
        " regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS b"
        " WHERE i.inhparent = CAST(:t AS regclass) AND b IS NOT NULL ORDER BY 2"), {"t": table}).all()
    return [(name, start, end) for name, start, end in rows]


def _local(conn: Connection) -> None:
    """Month boundaries in Beijing time for pg_partman's arithmetic, in this transaction."""
    conn.execute(text(f"SET LOCAL TimeZone = '{ZONE}'"))


def maintain(engine: Engine) -> Maintained:
    """Move stray rows out of the default partitions, then keep the months ahead made (one transaction)."""
    done = Maintained()
    with engine.begin() as conn:
        _local(conn)
        for table in MANAGED:
            done.moved[table] = _settle(conn, table)
            conn.execute(text("SELECT partman.run_maintenance(:p, p_analyze := false)"), {"p": f"public.{table}"})
            found = months(conn, table)
            done.months[table] = len(found)
            done.newest[table] = found[-1][0] if found else ""
    held = narrow_open_months(engine)
    done.open_months = None if held is None else [f"{m.astimezone(LOCAL):%Y-%m}" for m in held]
    return done


def narrow_open_months(engine: Engine, wait: str = LOCK_WAIT) -> list[datetime] | None:
    """Make ``case_open_month`` (migration 0036) exactly the months that hold an open case; return them, oldest
    first — or None, the set unchanged, when the lock below was not had within ``wait``.

    The triggers add a month when a case is written open; nothing else takes one away. Here, under a SHARE lock
    on "case" — it waits for every transaction writing cases to end and holds new writes back while it lasts (one
    probe of the open-case index per month: milliseconds) — each month of the set and each month partition is
    looked at: a month without an open case leaves, one with an open case missing from it comes in (cases
    written with the triggers off). A case a transaction opened is so never judged absent before it commits."""
    try:
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{wait}'"))
            conn.execute(text('LOCK TABLE "case" IN SHARE MODE'))
            _local(conn)  # month arithmetic in Beijing time
            spans = {start: end for _, start, end in months(conn, "case")}
            spans.update(conn.execute(text("SELECT month, next FROM case_open_month")).tuples().all())
            held = [start for start, end in sorted(spans.items()) if conn.execute(text(
                f'SELECT EXISTS (SELECT 1 FROM "case" WHERE reported_at >= :a AND reported_at < :b AND {OPEN})'),
                {"a": start, "b": end}).scalar()]
            # the default partition's open cases (months without a partition of their own), by month
            held += conn.execute(text(
                f"SELECT DISTINCT date_trunc('month', reported_at) FROM case_default WHERE {OPEN}")).scalars().all()
            held = sorted(set(held))
            conn.execute(text("DELETE FROM case_open_month WHERE month <> ALL(CAST(:m AS timestamptz[]))"),
                         {"m": held})
            conn.execute(text(
                "INSERT INTO case_open_month (month, next) SELECT m, m + interval '1 month'"
                " FROM unnest(CAST(:m AS timestamptz[])) AS m ON CONFLICT (month) DO NOTHING"), {"m": held})
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE:
            return None
        raise
    return held


def _settle(conn: Connection, table: str) -> int:
    """Move the rows of ``table``'s default partition into partitions of their months; return how many."""
    if not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table}_default)")).scalar():
        return 0
    if not conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
        raise PartitionError(f"{table}_default holds rows: moving them needs a superuser (the trails are"
                             " append-only: only replication mode lets a row leave the default partition)")
    # A move is a delete and an insert of the same row: the append-only triggers (fired in origin mode only)
    # must let it go, and the evaluation's summary (case_event_kpi, ALWAYS) must not count the event twice.
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    conn.execute(text("SET LOCAL gridlink.case_kpi = 'deferred'"))
    if table == "case":
        # pg_partman moves the rows out and back in two statements: case_key_sync drops each key as its row
        # leaves and makes it anew as it comes back, with the trail's bounds of a new case (its report time).
        # The events stay where they are: the bounds they had are put back.
        conn.execute(text("CREATE TEMPORARY TABLE gridlink_settled_trails ON COMMIT DROP AS"
                          " SELECT k.id, k.trail_from, k.trail_to FROM case_key k"
                          " WHERE k.id IN (SELECT id FROM case_default)"))
    moved = conn.execute(text("SELECT partman.partition_data_time(:p, p_batch_count := 100000, p_analyze := false)"),
                         {"p": f"public.{table}"}).scalar()
    # pg_partman's staging table (ON COMMIT DROP) has this table's columns: the next table's move in this same
    # transaction would find it and fail on its columns.
    conn.execute(text("DROP TABLE IF EXISTS partman_temp_data_storage"))
    if table == "case":
        conn.execute(text("UPDATE case_key k SET trail_from = s.trail_from, trail_to = s.trail_to"
                          " FROM gridlink_settled_trails s WHERE k.id = s.id"))
        conn.execute(text("DROP TABLE gridlink_settled_trails"))
    conn.execute(text("SET LOCAL gridlink.case_kpi = 'on'"))
    conn.execute(text("SET LOCAL session_replication_role = origin"))
    return int(moved or 0)


def cover(conn: Connection, since: datetime) -> int:
    """Make the missing months of every partitioned table from ``since``'s month up to the oldest one there is;
    return how many were made. For loads of old history into empty months (rows of a month that has no
    partition would land in the default partition)."""
    zone = conn.execute(text("SELECT current_setting('TimeZone')")).scalar()
    _local(conn)
    made = 0
    first = since.astimezone(LOCAL).date().replace(day=1)
    for table in MANAGED:
        have = months(conn, table)
        oldest = have[0][1].astimezone(LOCAL).date() if have else date.today().replace(day=1)
        wanted = []
        month = first
        while month < oldest:
            wanted.append(datetime(month.year, month.month, 1, tzinfo=LOCAL))
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        if wanted:
            conn.execute(text("SELECT partman.create_partition_time(:p, CAST(:times AS timestamptz[]), false)"),
                         {"p": f"public.{table}", "times": [m.isoformat() for m in wanted]})
            made += len(wanted)
    conn.execute(text("SELECT set_config('TimeZone', :z, true)"), {"z": zone})  # the caller's, as it was
    return made


def archive(engine: Engine, before: date, dump_dir: Path | None = None) -> list[str]:
    """Detach every month of the partitioned tables that ends on or before ``before`` (the first day of a month
    no later than the current one); with ``dump_dir``, dump each detached month there and drop it. Return the
    months detached."""
    current = datetime.now(LOCAL).date().replace(day=1)
    if before.day != 1 or before > current:
        raise PartitionError(f"--before must name a month no later than the current one ({current:%Y-%m})")
    limit = datetime(before.year, before.month, 1, tzinfo=LOCAL)
    detached = []
    with engine.begin() as conn:
        _local(conn)
        kept: set[str] = set()  # months of "case" that stay (an open case): their units and photos stay too
        for table in MANAGED:
            for name, _, end in months(conn, table):
                if end > limit:
                    continue
                if table == "case" and not _settled(conn, name):
                    kept.add(name.removeprefix("case_"))
                    continue
                if table in WITH_CASE and name.removeprefix(f"{table}_") in kept:
                    continue
                # names from the catalogue; "case" quoted (a keyword)
                conn.execute(text(f'ALTER TABLE "{table}" DETACH PARTITION {name}'))
                detached.append(name)
    if dump_dir is not None:
        dump_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        url = engine.url.render_as_string(hide_password=False)
        for name in detached:
            _dump(url, name, dump_dir / f"{name}.dump")
            with engine.begin() as conn:
                conn.execute(text(f"DROP TABLE {name}"))
    return detached


def _settled(conn: Connection, month: str) -> bool:
    """Tell whether every case of a month of "case" is closed or voided (a month with an open case stays)."""
    return not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {month} WHERE {OPEN})")).scalar()


def _dump(url: str, table: str, target: Path) -> None:
    """pg_dump one table (custom format) into ``target``, whole or not at all."""
    args, env = _client_args(url)
    partial = target.with_suffix(".partial")
    done = subprocess.run([str(find_bindir() / "pg_dump"), *args, "-d", make_url(url).database or "", "-Fc",
                           "--no-owner", "-t", f"public.{table}", "-f", str(partial)], env=env,
                          capture_output=True, text=True, umask=0o077)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump of {table} failed (it stays detached in the database): {done.stderr[-400:]}")
    partial.replace(target)
