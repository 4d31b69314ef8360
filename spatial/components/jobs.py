"""Survey imports that run in the background (the HTTP upload): a job per uploaded file, its progress and its
report, kept in this process for ``KEEP_S`` after it ends.

At most ``RUNNING`` imports run at once in a process (each holds a database connection and a transaction for
its whole file); a further upload is refused (TooManyRequestsError) rather than queued without bound. A job is
seen by the account that started it and by admins. Jobs live in the memory of the server process that took
the upload: with several workers, ask the one that answered (a jobs table is future work).
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from spatial.access.audit import Actor
from spatial.access.principal import Principal
from spatial.components.importer import ImportOptions, import_survey
from spatial.errors import ForbiddenError, GridlinkError, NotFoundError, TooManyRequestsError

RUNNING = 2
KEEP_S = 3600


@dataclass
class Job:
    """One background import."""

    id: str
    login: str
    owner: str
    file: str
    folder: Path
    state: str = "running"  # running, done, failed
    rows: int = 0
    total: int = 0
    report: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    rejects: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """The job as its status reply shows it."""
        return {"id": self.id, "state": self.state, "owner": self.owner, "file": self.file, "rows_read": self.rows,
                "rows_total": self.total if self.total > 0 else None, "report": self.report, "problem": self.problem,
                "rejects": bool(self.rejects and self.rejects.exists())}


class Jobs:
    """The background imports of this process."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, engine: Engine, principal: Principal, actor: Actor, upload: Path,
              options: ImportOptions) -> Job:
        """Run the import of ``upload`` (in a folder of its own, removed when the job is forgotten) in a thread."""
        self._forget_old()
        with self._lock:
            if sum(j.state == "running" for j in self._jobs.values()) >= RUNNING:
                shutil.rmtree(upload.parent, ignore_errors=True)
                raise TooManyRequestsError(f"{RUNNING} imports are running: try again when one ends", retry_after=30)
            job = Job(secrets.token_urlsafe(12), principal.login, options.owner, upload.name, upload.parent)
            self._jobs[job.id] = job
        job.rejects = options.rejects
        threading.Thread(target=self._run, args=(job, engine, principal, actor, upload, options),
                         name=f"import-{job.id}", daemon=True).start()
        return job

    def _run(self, job: Job, engine: Engine, principal: Principal, actor: Actor, upload: Path,
             options: ImportOptions) -> None:
        def progress(rows: int, total: int) -> None:
            job.rows, job.total = job.rows + rows, total

        try:
            job.report = import_survey(engine, principal, actor, upload, options, progress).as_dict()
            job.state = "done"
        except GridlinkError as exc:
            job.problem = {"status": exc.status, "title": exc.title, "detail": exc.detail, **exc.extra}
            job.state = "failed"
        except Exception:  # a job must end whatever happened; the reason stays in the server log
            import logging

            logging.getLogger(__name__).exception("survey import %s failed", job.id)
            job.problem = {"status": 500, "title": "Internal error", "detail": "the import failed; nothing was stored"}
            job.state = "failed"
        finally:
            job.ended = time.time()
            upload.unlink(missing_ok=True)

    def get(self, principal: Principal, job_id: str) -> Job:
        """The job, for the account that started it or an admin."""
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no import {job_id} in this server process")
        if principal.role != "admin" and principal.login != job.login:
            raise ForbiddenError(f"import {job_id} was started by another account")
        return job

    def _forget_old(self) -> None:
        with self._lock:
            old = [j for j in self._jobs.values() if j.ended and time.time() - j.ended > KEEP_S]
            for job in old:
                del self._jobs[job.id]
                shutil.rmtree(job.folder, ignore_errors=True)
