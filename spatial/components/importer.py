"""Importing an owner's survey into the registry: one transaction, streamed, idempotent.

The survey is read in batches (spatial/components/survey.py), every row decided by the registry's rules
(spatial/components/survey_rows.py), and the rows that pass are staged with COPY in a temporary table. Then,
unless it is a dry run or an all-or-nothing import with refused rows, the stage is merged in a few set-based
statements: codes allocated for new rows without one (spatial/components/serials.py), new rows inserted and
changed rows updated with the base grid assigned spatially (the grid covering the point on surface, the
smallest code on shared edges), one ``component_history`` row each, the owner's registered components the
survey lacks counted (and retired when asked), and one audit row. A refused file or a failure at any point
rolls everything back: nothing partial is left.

Whatever its length, a survey is stored batch by batch with the registry's foreign keys in place, so that the
``component`` table stays readable and writable by others (search, /ogc, tiles, case intake) throughout. Only
``exclusive`` (an admin's maintenance window) merges a long survey with the keys dropped (ForeignKeys), which
locks the table against every reader until the commit.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from pyogrio.raw import write_arrow
from sqlalchemy import Connection, Engine, text

from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_component, check_exclusive_import
from spatial.components.grid_index import BaseGrids
from spatial.components.rules import RuleBook
from spatial.components.serials import first_free, lock_series
from spatial.components.survey import Survey, open_survey
from spatial.components.survey_rows import Decided, Decider, Names
from spatial.errors import ConflictError, InvalidParameterError
from spatial.store.copy import column_lines, column_text, copy_lines, raw_cursor
from spatial.store.integrity import ForeignKeyError, check_foreign_keys, restore_row_triggers, skip_row_triggers

BATCH = 20_000
BULK_ROWS = 50_000  # with ``exclusive``, a survey this long is stored with the foreign keys dropped and added back
MAPPING_KEY = "component_mapping:"  # + owner key: the owner's saved column mapping, in ``meta``
SHOWN = 20  # refused rows and missing codes listed in the report
STAGE_COLUMNS = ("row_no", "code", "series", "action", "fields", "name", "owner_key", "manager_key",
                 "maintainer_key", "status", "note", "surveyed_on", "geom", "grid_code")


@dataclass
class ImportOptions:
    """What the importer was asked to do."""

    owner: str
    mapping: dict[str, str | None] | None = None
    crs: str | None = None
    encoding: str | None = None
    layer: str | None = None
    dry_run: bool = False
    all_or_nothing: bool = False
    retire_missing: bool = False
    rejects: Path | None = None
    batch: int = BATCH
    bulk_rows: int = BULK_ROWS
    exclusive: bool = False  # a maintenance window: drop the foreign keys, holding ``component`` exclusively


@dataclass
class ImportReport:
    """What an import found and did."""

    file: str
    owner: str
    crs: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    refused: int = 0
    missing: int = 0
    retired: int = 0
    allocated: int = 0
    stored: bool = False
    dry_run: bool = False
    changed_fields: dict[str, int] = field(default_factory=dict)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    missing_codes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def import_survey(engine: Engine, principal: Principal, actor: Actor, path: Path, options: ImportOptions,
                  progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import the survey at ``path`` for ``options.owner`` as ``principal``; return the report. A file that
    cannot be imported raises SurveyFileError and stores nothing."""
    check_edit_component(principal, options.owner)
    if options.exclusive:
        check_exclusive_import(principal)
    with engine.connect() as conn, engine.connect() as lookups, conn.begin() as transaction:
        report = _run(conn, lookups, actor, path, options, progress)
        if report.stored:
            transaction.commit()
        else:
            transaction.rollback()
    return report


def _run(conn: Connection, lookups: Connection, actor: Actor, path: Path, options: ImportOptions,
         progress: Callable[[int, int], None] | None) -> ImportReport:
    """Read, decide and stage every row; store them (batch by batch when nothing may refuse the whole file)."""
    book = RuleBook.load(conn)
    if options.owner not in book.departments:
        raise InvalidParameterError(f"unknown owner {options.owner}", parameter="owner")
    saved = saved_mapping(conn, options.owner)
    survey = open_survey(path, book, mapping=options.mapping, saved=saved, crs=options.crs,
                         encoding=options.encoding, layer=options.layer)
    report = ImportReport(file=path.name, owner=options.owner, crs=survey.crs, mapping=survey.mapping,
                          dry_run=options.dry_run)
    conn.execute(text("CREATE TEMP TABLE survey_stage (row_no int PRIMARY KEY, code text, series text,"
                      " action text, fields text, name text, owner_key text, manager_key text, maintainer_key text,"
                      " status text, note text, surveyed_on date, geom geometry(Geometry, 4326), grid_code text)"
                      " ON COMMIT DROP"))
    conn.execute(text("CREATE INDEX ON survey_stage (code)"))
    # the base grid of each staged new row, when it is stored only at the end: assigned batch by batch while
    # the connection would otherwise wait for the reader, so the final insert reads it by row number
    conn.execute(text("CREATE TEMP TABLE survey_grid (row_no int PRIMARY KEY, grid_code text) ON COMMIT DROP"))
    decider = Decider(lookups, book, Names.load(conn), options.owner, set(survey.mapping.values()),
                      grids=BaseGrids.load(conn))
    fields: Counter[str] = Counter()
    rejects = _Rejects(survey, options.rejects)
    # Stored batch by batch while the next batch is decided (the foreign keys checked row by row, the table
    # open to everyone), unless nothing may be stored before the end, or a maintenance window (``exclusive``)
    # stages a long survey whole and merges it at the end with the foreign keys dropped (ForeignKeys).
    bulk = options.exclusive and survey.total >= options.bulk_rows
    incremental = not (options.dry_run or options.all_or_nothing or bulk)
    # closed here, on any exit: the reader thread is stopped before the connections it uses are returned
    with contextlib.closing(_pipelined(survey, decider, survey.batch_rows(options.batch))) as batches:
        for batch, rows, decided in batches:
            _stage(conn, [d for d in decided if isinstance(d, Decided)], report, fields)
            span = {"lo": report.rows + 1, "hi": report.rows + rows}
            if incremental:  # the database stores this batch while the next one is being decided
                _store(conn, actor.who, report, "s.row_no BETWEEN :lo AND :hi AND s.series IS NULL", span,
                       [d.item.code for d in decided if isinstance(d, Decided) and d.action == "changed"])
            elif not options.dry_run:  # what the merge would do serially, done while the reader decides
                conn.execute(text(f"INSERT INTO survey_grid SELECT s.row_no, {_GRID} FROM survey_stage s"
                                  " WHERE s.row_no BETWEEN :lo AND :hi AND s.action = 'new'"
                                  " AND s.grid_code IS NULL"), span)
                _history(conn, actor.who, report.file, "s.row_no BETWEEN :lo AND :hi AND s.series IS NULL", span)
            refused = [(i, reason) for i, reason in enumerate(decided) if isinstance(reason, str)]
            for i, reason in refused[:max(0, SHOWN - len(report.refusals))]:
                report.refusals.append({"row": report.rows + 1 + i, "reason": reason})
            report.refused += len(refused)
            rejects.add(batch, report.rows, refused)
            report.rows += rows
            if progress:
                progress(rows, survey.total)
    lookups.rollback()  # its reads of ``component`` no longer hold a lock the merge may need
    report.changed_fields = dict(fields.most_common())
    conn.execute(text("ANALYZE survey_stage"))  # the statements over the whole stage know its size (no autovacuum)
    _missing(conn, options, report)
    if options.dry_run or (options.all_or_nothing and report.refused):
        report.allocated = int(conn.execute(text("SELECT count(*) FROM survey_stage WHERE code IS NULL")).scalar_one())
        return report
    _merge(conn, actor, options, report, incremental)
    if options.mapping:
        conn.execute(text("INSERT INTO meta (key, value) VALUES (:k, CAST(:v AS jsonb)) ON CONFLICT (key)"
                          " DO UPDATE SET value = EXCLUDED.value"),
                     {"k": MAPPING_KEY + options.owner,
                      "v": json.dumps({**saved, **options.mapping}, ensure_ascii=False)})
    return report


def _pipelined(survey: Survey, decider: Decider, size: int) -> Generator[tuple[Any, int, list[Decided | str]]]:
    """The survey's batches with their decisions, read and decided in a thread of their own (on the lookup
    connection) one or two batches ahead, so that Python deciding and PostgreSQL storing overlap."""
    ahead: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            first = 1
            for batch, columns, geoms in survey.batches(size):
                if stop.is_set():
                    return
                ahead.put((batch, batch.num_rows, decider.batch(first, columns, geoms)))
                first += batch.num_rows
            ahead.put(_END)
        except BaseException as exc:  # handed to the reader, which raises it
            ahead.put(exc)

    worker = threading.Thread(target=produce, name="survey-reader", daemon=True)
    worker.start()
    try:
        while (item := ahead.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a reader waiting to hand over a batch nobody will take
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.1)
        worker.join()


_END = object()


def saved_mapping(conn: Connection, owner: str) -> dict[str, str | None]:
    """The column mapping the owner's earlier imports were given (``--mapping``), kept for the next survey."""
    value = conn.execute(text("SELECT value FROM meta WHERE key = :k"), {"k": MAPPING_KEY + owner}).scalar()
    return dict(value) if isinstance(value, dict) else {}


def _stage(conn: Connection, decided: list[Decided], report: ImportReport, fields: Counter[str]) -> None:
    """COPY the batch's decided rows into the stage, formatted column by column; an unchanged row as its code
    alone (only the code is read again: what the survey lists)."""
    counts = Counter(d.action for d in decided)
    for action, n in counts.items():
        setattr(report, action, getattr(report, action) + n)
    stored = [d for d in decided if d.action != "unchanged"]
    lines = [f"{d.row}\t{d.item.code}{_UNCHANGED}" for d in decided if d.action == "unchanged"]
    if stored:
        for d in stored:
            fields.update(d.fields)
        items = [d.item for d in stored]
        # EWKB with its SRID, converted in one call per batch (the stage's geometry column takes it as it is)
        ewkb = shapely.to_wkb(shapely.set_srid(np.array([i.geometry for i in items], dtype=object), 4326),
                              hex=True, include_srid=True)
        columns = [
            [str(d.row) for d in stored], column_text(None if d.series else d.item.code for d in stored),
            column_text(d.series for d in stored), [d.action for d in stored],
            column_text(json.dumps(d.fields) for d in stored),
            *(column_text(getattr(i, name) for i in items) for name in
              ("name", "owner_key", "manager_key", "maintainer_key", "status", "note", "surveyed_on")),
            list(ewkb), column_text(d.grid for d in stored)]
        lines.extend(column_lines(columns))
    if lines:  # the stage's order is by row_no (its key), not by the order of COPY
        copy_lines(raw_cursor(conn), "survey_stage", STAGE_COLUMNS, lines)


_UNCHANGED = "\t\\N\tunchanged\t[]" + "\t\\N" * (len(STAGE_COLUMNS) - 5) + "\n"  # series … geom after the code


def _missing(conn: Connection, options: ImportOptions, report: ImportReport) -> None:
    """The owner's components in service that the survey does not list."""
    missing = [c for (c,) in conn.execute(text(
        "SELECT code FROM component c WHERE owner_key = :o AND status NOT IN ('removed', 'abandoned')"
        " AND NOT EXISTS (SELECT 1 FROM survey_stage s WHERE s.code = c.code) ORDER BY code"),
        {"o": options.owner})]
    report.missing, report.missing_codes = len(missing), missing[:SHOWN]


_GRID = ("(SELECT min(g.grid_code) FROM grid_geometry g WHERE g.valid_to IS NULL AND g.kind = 'base'"
         " AND ST_Covers(g.geom, ST_PointOnSurface(s.geom)))")
# the grid found in memory while the survey was read (grid_index.py), else found here
_STAGED_GRID = f"coalesce(s.grid_code, (SELECT sg.grid_code FROM survey_grid sg WHERE sg.row_no = s.row_no), {_GRID})"


def _history(conn: Connection, who: str, file: str, where: str, params: dict[str, Any]) -> None:
    """The ``create`` history rows of the staged new rows ``where`` selects (on ``s``, the stage)."""
    # From the stage, never a join with ``component``: right after a registry was emptied its statistics say
    # it is empty, and such a join was planned as a scan per row (minutes).
    conn.execute(text(
        "INSERT INTO component_history (component_code, at, actor, action, status_to, changes)"
        " SELECT s.code, now(), :who, 'create', s.status, jsonb_build_object('source', 'survey', 'file',"
        " CAST(:file AS text), 'revision', 1, 'owner_key', s.owner_key)"
        f" FROM survey_stage s WHERE s.action = 'new' AND {where}"), {**params, "who": who, "file": file})


def _store(conn: Connection, who: str, report: ImportReport, where: str, params: dict[str, Any],
           changed: list[str], history_where: str | None = None) -> None:
    """Insert the staged new rows that ``where`` selects (on ``s``, the stage) and update the ``changed``
    codes, with the grid assigned spatially and one history row each (of the new rows ``history_where``
    selects, when the others have theirs already)."""
    expected = conn.execute(text(f"SELECT count(*) FROM survey_stage s WHERE s.action = 'new' AND {where}"),
                            params).scalar_one()
    # The six foreign keys checked set-based rather than row by row (a query and a row lock each: most of an
    # insert's cost) where the role may skip per-row triggers; the parents locked as the triggers would have.
    quick = expected > 0 and skip_row_triggers(conn)  # SET LOCAL: a failure's rollback undoes it too
    inserted = conn.execute(text(
        "INSERT INTO component (code, class_code, district_code, grid_code, name, manager_key, owner_key,"
        " maintainer_key, status, surveyed_on, changed_at, source, note, revision, geom)"
        f" SELECT code, substr(code, 7, 4), left(code, 6), {_STAGED_GRID}, name, manager_key, owner_key,"
        " maintainer_key, status, surveyed_on, now(), 'survey', note, 1, geom FROM survey_stage s"
        f" WHERE action = 'new' AND {where}"
        " ON CONFLICT (code) DO NOTHING"), params).rowcount
    if quick:
        restore_row_triggers(conn)
        try:
            check_foreign_keys(conn, ("component",), scope={"component": (
                f"c.code IN (SELECT s.code FROM survey_stage s WHERE s.action = 'new' AND {where})")},
                params=params, lock=True)
        except ForeignKeyError as exc:
            raise ConflictError(f"the survey's reference rows changed while it was stored ({exc}):"
                                " import it again") from exc
    if inserted != expected:
        raise ConflictError(f"{expected - inserted} component(s) of the survey were created by someone else while"
                            " it was read: import it again")
    _history(conn, who, report.file, history_where or where, params)
    if not changed:
        return
    # Driven by the codes, each row's values read from the stage by its code index: no join for the planner to
    # get wrong (stale statistics of a just-emptied registry made one a nested loop over both tables).
    conn.execute(text(
        "WITH changed AS (UPDATE component c SET (grid_code, name, manager_key, maintainer_key, status, note,"
        f" surveyed_on, geom) = (SELECT {_GRID}, s.name, s.manager_key, s.maintainer_key, s.status, s.note,"
        " s.surveyed_on, s.geom FROM survey_stage s WHERE s.code = c.code), changed_at = now(), source = 'survey',"
        " revision = c.revision + 1 WHERE c.code = ANY(:codes) RETURNING c.code, c.revision, c.status, c.owner_key)"
        " INSERT INTO component_history (component_code, at, actor, action, status_to, changes)"
        " SELECT ch.code, now(), :who, CASE WHEN s.fields LIKE '%\"status\"%' THEN 'status' ELSE 'update' END,"
        " ch.status, jsonb_build_object('source', 'survey', 'file', CAST(:file AS text), 'fields',"
        " CAST(s.fields AS jsonb), 'revision', ch.revision, 'owner_key', ch.owner_key)"
        " FROM changed ch CROSS JOIN LATERAL (SELECT fields FROM survey_stage s WHERE s.code = ch.code) s"),
        {"codes": changed, "who": who, "file": report.file})


def _merge(conn: Connection, actor: Actor, options: ImportOptions, report: ImportReport, stored: bool) -> None:
    """Store what is left once the file is read (all of it, or the new rows without a code when the rest was
    ``stored`` batch by batch): codes allocated, those rows, retirements, the foreign keys back, the audit row."""
    _allocate(conn, report)
    keys = ForeignKeys(conn)
    if options.exclusive and report.new >= options.bulk_rows:
        keys.drop()
    changed = [] if stored else list(conn.execute(text(
        "SELECT code FROM survey_stage WHERE action = 'changed'")).scalars())
    # the history of the rows that came with a code is written already (batch by batch): the rest's now
    _store(conn, actor.who, report, "s.series IS NOT NULL" if stored else "true", {}, changed,
           history_where="s.series IS NOT NULL")
    if options.retire_missing and report.missing:
        report.retired = _retire_missing(conn, actor, options.owner)
    keys.restore()
    record(conn, actor, "component.import", target=options.owner,
           detail={k: v for k, v in report.as_dict().items() if k not in ("refusals", "missing_codes", "mapping")})
    report.stored = True


class ForeignKeys:
    """The registry table's foreign keys (class, district, grid, three departments), dropped before a long
    survey's rows are inserted and added back before it commits. PostgreSQL checks a foreign key row by row
    (a query and a row lock each: about 70 % of inserting a component); added back, each is validated by one
    set-based query over the table instead. Definitions are read from the catalog, so they come back as the
    migrations made them; it all happens in the import's transaction (nothing is left without them, whatever
    fails), which holds the registry table exclusively from the drop to its commit: readers of ``component``
    wait meanwhile (README "Component registry"). Used only by an ``exclusive`` import."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dropped: list[tuple[str, str]] = []

    def drop(self) -> None:
        """Drop them (once)."""
        if self.dropped:
            return
        self.dropped = [(n, d) for n, d in self.conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'component'::regclass"
            " AND contype = 'f' ORDER BY conname"))]
        quote = self.conn.dialect.identifier_preparer.quote
        if self.dropped:
            self.conn.execute(text("ALTER TABLE component "
                                   + ", ".join(f"DROP CONSTRAINT {quote(n)}" for n, _ in self.dropped)))

    def restore(self) -> None:
        """Add back what was dropped, each validated against every row."""
        quote = self.conn.dialect.identifier_preparer.quote
        if self.dropped:
            self.conn.execute(text("ALTER TABLE component "
                                   + ", ".join(f"ADD CONSTRAINT {quote(n)} {d}" for n, d in self.dropped)))
        self.dropped = []


def _allocate(conn: Connection, report: ImportReport) -> None:
    """Give each new row without a code the next free serial of its series, the series locked."""
    new_series = [r[0] for r in conn.execute(text(
        "SELECT DISTINCT coalesce(series, left(code, 10)) FROM survey_stage WHERE action = 'new'"))]
    lock_series(conn, new_series)
    # numbered in the database, in row order: a survey of a million rows without codes costs no client memory
    for series, count in conn.execute(text(
            "SELECT series, count(*) FROM survey_stage WHERE code IS NULL GROUP BY series ORDER BY series")).all():
        first = first_free(conn, series, count)
        conn.execute(text(
            "UPDATE survey_stage s SET code = :series || lpad(CAST(:first - 1 + n.serial AS text), 6, '0')"
            " FROM (SELECT row_no, row_number() OVER (ORDER BY row_no) AS serial FROM survey_stage"
            " WHERE code IS NULL AND series = :series) n WHERE s.row_no = n.row_no"),
            {"series": series, "first": first})
        report.allocated += count


def _retire_missing(conn: Connection, actor: Actor, owner: str) -> int:
    retired = conn.execute(text(
        "UPDATE component c SET status = 'removed', changed_at = now(), revision = revision + 1"
        " WHERE owner_key = :o AND status NOT IN ('removed', 'abandoned')"
        " AND NOT EXISTS (SELECT 1 FROM survey_stage s WHERE s.code = c.code) RETURNING code, revision"),
        {"o": owner}).all()
    if retired:
        conn.execute(text(
            "INSERT INTO component_history (component_code, at, actor, action, status_to, changes)"
            " SELECT code, now(), :who, 'status', 'removed', jsonb_build_object('source', 'survey', 'reason',"
            " 'missing from the survey', 'revision', revision) FROM unnest(CAST(:c AS text[]), CAST(:r AS int[]))"
            " u(code, revision)"), {"who": actor.who, "c": [r[0] for r in retired], "r": [r[1] for r in retired]})
    return len(retired)


class _Rejects:
    """The refused rows written as the survey came (its format and columns) plus ``row`` and ``reason``."""

    def __init__(self, survey: Survey, path: Path | None) -> None:
        self.survey, self.path, self.started = survey, path, False
        if path is not None and path.exists():
            path.unlink()

    def add(self, batch: Any, before: int, refused: list[tuple[int, str]]) -> None:
        if self.path is None or not refused:
            return
        rows = batch.take(pa.array([i for i, _ in refused]))
        rows = rows.append_column("row", pa.array([before + 1 + i for i, _ in refused], pa.int64()))
        rows = rows.append_column("reason", pa.array([reason for _, reason in refused], pa.string()))
        options = {"GEOMETRY": "AS_WKT"} if self.survey.driver == "CSV" else {}
        write_arrow(rows, self.path, driver=self.survey.driver, geometry_name=self.survey.geometry_name,
                    geometry_type=self.survey.geometry_type, crs=self.survey.crs, append=self.started,
                    encoding="UTF-8", layer_options=options)
        self.started = True
