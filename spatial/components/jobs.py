"""Survey imports that run in the background (the HTTP upload): one row of ``component_upload_jobs`` per
uploaded file, with its progress, then its report or problem, readable from any server process.

The process that takes an upload runs it, in a thread, and holds a session advisory lock on the job (on a
connection of the job's own, which also writes its progress) from before its row exists until after its end
is written. So no other process can ever run it, and whether a running job is alive is a question PostgreSQL
answers without a clock: when the server dies its connection closes and the lock goes; the next reader of a
job marked running whose lock it can take marks it failed (interrupted) — under that lock, so two readers
fail it once. A job is seen by the account that started it and by admins; ended jobs and their files are
deleted ``KEEP_S`` after they end. At most ``RUNNING`` imports run at once in a process (each holds a database
connection and a transaction for its whole file); a further upload is refused (TooManyRequestsError) rather
than queued without bound. The upload and its rejects file stay on the disk of the server that took them
(``host``): another host's server reports the job but cannot send its rejects.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.components.importer import ImportOptions, import_survey
from spatial.errors import ForbiddenError, GridlinkError, NotFoundError, TooManyRequestsError

RUNNING = 2
KEEP_S = 3600
LOCK_SPACE = 1801  # the first key of pg_advisory_lock(int, int): a running upload job (issue 18)
INTERRUPTED = {"status": 500, "title": "Import interrupted",
               "detail": "the server running the import stopped before it ended; nothing of it was stored:"
                         " upload the survey again"}
TRY_LOCK = f"SELECT pg_try_advisory_lock({LOCK_SPACE}, hashtext(:id))"  # held by the running process
TRY_XACT_LOCK = f"SELECT pg_try_advisory_xact_lock({LOCK_SPACE}, hashtext(:id))"  # a reader's test of it
_COLUMNS = ("id, login, owner_key, file, host, folder, state, rows_read, rows_total, report, problem, rejects,"
            " started_at, ended_at")
log = logging.getLogger(__name__)


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Job:
    """One background import, as its row holds it."""

    id: str
    login: str
    owner_key: str
    file: str
    host: str
    folder: str
    state: str
    rows_read: int
    rows_total: int | None
    report: dict[str, Any] | None
    problem: dict[str, Any] | None
    rejects: str | None
    started_at: Any = None
    ended_at: Any = None

    def local(self) -> bool:
        """Whether the job's files are on this host's disk."""
        return self.host == socket.gethostname()

    def rejects_file(self) -> Path | None:
        """The rejects file when it exists on this host's disk."""
        if self.rejects is None or not self.local():
            return None
        path = Path(self.rejects)
        return path if path.exists() else None

    def as_dict(self) -> dict[str, Any]:
        """The job as its status reply shows it."""
        return {"id": self.id, "state": self.state, "owner": self.owner_key, "file": self.file,
                "rows_read": self.rows_read, "rows_total": self.rows_total or None, "report": self.report,
                "problem": self.problem, "rejects": bool(self.rejects and self.report and self.report.get("refused")),
                "started_at": _iso(self.started_at), "ended_at": _iso(self.ended_at)}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class Jobs:
    """Starts this process's background imports; reads anyone's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._running = 0
        self._lock = threading.Lock()

    def start(self, principal: Principal, actor: Actor, upload: Path, options: ImportOptions) -> Job:
        """Record the import of ``upload`` (in a folder of its own, removed with the job) and run it in a thread
        holding the job's lock; the job as it starts."""
        self.forget_old()
        with self._lock:
            if self._running >= RUNNING:
                shutil.rmtree(upload.parent, ignore_errors=True)
                raise TooManyRequestsError(f"{RUNNING} imports are running: try again when one ends", retry_after=30)
            self._running += 1
        try:
            conn, job_id = self._claim(principal, upload, options)
        except BaseException:
            with self._lock:
                self._running -= 1
            shutil.rmtree(upload.parent, ignore_errors=True)
            raise
        job = read(conn, job_id)
        threading.Thread(target=self._run, args=(conn, job_id, principal, actor, upload, options),
                         name=f"import-{job_id}", daemon=True).start()
        return job

    def _claim(self, principal: Principal, upload: Path, options: ImportOptions) -> tuple[Connection, str]:
        """A connection of the job's own (autocommit) holding its lock, and the job's row, written under it."""
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            while True:  # a fresh id whose lock is free (two ids of one hash share a lock)
                job_id = secrets.token_urlsafe(12)
                if conn.execute(text(TRY_LOCK), {"id": job_id}).scalar():
                    break
            conn.execute(text(
                "INSERT INTO component_upload_jobs (id, login, owner_key, file, options, host, folder, worker, state,"
                " rejects) VALUES (:id, :login, :owner, :file, CAST(:options AS jsonb), :host, :folder, :worker,"
                " 'running', :rejects)"),
                {"id": job_id, "login": principal.login, "owner": options.owner, "file": upload.name,
                 "options": _options(options), "host": socket.gethostname(), "folder": str(upload.parent),
                 "worker": _me(), "rejects": str(options.rejects) if options.rejects else None})
        except BaseException:
            conn.invalidate()  # the session ends, and the lock with it, whatever it holds
            conn.close()
            raise
        return conn, job_id

    def _run(self, conn: Connection, job_id: str, principal: Principal, actor: Actor, upload: Path,
             options: ImportOptions) -> None:
        def progress(rows: int, total: int) -> None:
            conn.execute(text("UPDATE component_upload_jobs SET rows_read = rows_read + :n, rows_total = :t"
                              " WHERE id = :id"), {"n": rows, "t": total, "id": job_id})

        end: dict[str, Any]
        try:
            report = import_survey(self.engine, principal, actor, upload, options, progress).as_dict()
            end = {"state": "done", "report": report, "problem": None}
        except GridlinkError as exc:
            end = {"state": "failed", "report": None,
                   "problem": {"status": exc.status, "title": exc.title, "detail": exc.detail, **exc.extra}}
        except Exception:  # a job must end whatever happened; the reason stays in the server log
            log.exception("survey import %s failed", job_id)
            end = {"state": "failed", "report": None, "problem": {
                "status": 500, "title": "Internal error", "detail": "the import failed; nothing was stored"}}
        try:
            upload.unlink(missing_ok=True)
            if end["state"] == "failed":  # a stored import has its own audit row (importer.py); a refused one this
                record(conn, actor, "component.import_refused", target=options.owner,  # before the job ends: a
                       detail={"job": job_id, "file": upload.name, **end["problem"]})  # reader sees both or none
            _end(conn, job_id, **end)
        except Exception:  # the row stays running; its lock goes with the connection, so a reader fails it
            log.exception("survey import %s: its end could not be recorded", job_id)
        finally:
            _release(conn, job_id)
            with self._lock:
                self._running -= 1

    def get(self, principal: Principal, job_id: str) -> Job:
        """The job, for the account that started it or an admin; a running job whose server stopped is failed
        first (interrupted)."""
        with self.engine.connect() as conn:
            job = _reap(conn, job_id)
            conn.commit()
        if job is None:
            raise NotFoundError(f"no import {job_id}")
        if principal.role != "admin" and principal.login != job.login:
            raise ForbiddenError(f"import {job_id} was started by another account")
        return job

    def forget_old(self) -> None:
        """Delete the jobs that ended more than ``KEEP_S`` ago, with their folders on this host."""
        with self.engine.begin() as conn:
            gone = conn.execute(text(
                "DELETE FROM component_upload_jobs WHERE ended_at < now() - make_interval(secs => :keep)"
                " RETURNING host, folder"), {"keep": KEEP_S}).all()
        for host, folder in gone:
            if host == socket.gethostname():
                shutil.rmtree(folder, ignore_errors=True)


def _release(conn: Connection, job_id: str) -> None:
    """Unlock the job and give its connection back (a pooled session keeps its session locks otherwise)."""
    try:
        conn.execute(text(f"SELECT pg_advisory_unlock({LOCK_SPACE}, hashtext(:id))"), {"id": job_id})
    except Exception:  # the lock goes with the session, which is then not reused
        conn.invalidate()
    finally:
        conn.close()


def _options(options: ImportOptions) -> str:
    kept = {k: v for k, v in asdict(options).items() if k not in ("rejects", "mapping")}
    return json.dumps(kept, ensure_ascii=False)


def _end(conn: Connection, job_id: str, state: str, report: dict[str, Any] | None,
         problem: dict[str, Any] | None) -> None:
    conn.execute(text("UPDATE component_upload_jobs SET state = :state, report = CAST(:report AS jsonb),"
                      " problem = CAST(:problem AS jsonb), ended_at = now() WHERE id = :id"),
                 {"id": job_id, "state": state, "report": _json(report), "problem": _json(problem)})


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def read(conn: Connection, job_id: str) -> Job:
    """The job's row as it is (NotFoundError when there is none)."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM component_upload_jobs WHERE id = :id"), {"id": job_id}).first()
    if row is None:
        raise NotFoundError(f"no import {job_id}")
    return Job(**row._asdict())


def _reap(conn: Connection, job_id: str) -> Job | None:
    """The job, failed first when it is marked running and nobody holds its lock (its server stopped)."""
    if conn.execute(text(TRY_XACT_LOCK), {"id": job_id}).scalar():
        conn.execute(text("UPDATE component_upload_jobs SET state = 'failed', problem = CAST(:p AS jsonb),"
                          " ended_at = now() WHERE id = :id AND state = 'running'"),
                     {"id": job_id, "p": _json(INTERRUPTED)})
    try:
        return read(conn, job_id)
    except NotFoundError:
        return None
