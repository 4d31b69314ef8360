"""The scheduler's runner: procrastinate (a PostgreSQL-backed job queue) runs ``scheduler.sweep`` periodically.

One periodic task, ``gridlink.scheduler.sweep``, every ``every_s`` seconds (``GRIDLINK_SCHEDULER_EVERY_S``,
30 by default). procrastinate defers each tick's job once, however many workers run (its
``procrastinate_periodic_defers`` table is unique on task and tick), and keeps at most one waiting
(``queueing_lock``); jobs survive restarts in ``procrastinate_jobs``. Exactly-once orders do not rest on
that: a sweep is idempotent and level-triggered (spatial/cases/scheduler.py), so a job lost with a killed
worker, or two sweeps at once, can neither lose nor double an order. A second periodic task,
``gridlink.scheduler.tidy``, fails the jobs of workers that stopped sending heartbeats (killed, crashed) and
deletes finished jobs older than a day, so the job table stays small. A third, ``gridlink.grids.apply_plans``,
on the sweep's cadence, applies the grid plans scheduled for a time that has come (issue 19:
``spatial.grids.planning.apply_due``, exactly once however many workers run). A fourth,
``gridlink.partitions.maintain``, hourly, keeps the monthly partitions of the case trails made ahead
(issue 22: ``spatial.store.partitions.maintain``, pg_partman; also ``gridlink db maintain``).

``run`` is what ``gridlink worker`` and the in-server scheduler (api/app.py lifespan) call: it opens the
queue's own psycopg pool, loads the working calendar and works until cancelled.
"""

from __future__ import annotations

import logging
from typing import Any

import procrastinate
from procrastinate.jobs import Status
from sqlalchemy import Engine

from spatial.cases import scheduler
from spatial.grids import planning
from spatial.reference.cache import ReferenceCache
from spatial.store import partitions
from spatial.store.db import libpq_uri

SWEEP = "gridlink.scheduler.sweep"
TIDY = "gridlink.scheduler.tidy"
PLANS = "gridlink.grids.apply_plans"
PARTITIONS = "gridlink.partitions.maintain"
EVERY_S = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)  # divisors of a minute: the cron's seconds column
log = logging.getLogger("gridlink.scheduler")


def conninfo(url: str) -> str:
    """A libpq URI (psycopg 3) from the SQLAlchemy URL the rest of gridlink uses."""
    return libpq_uri(url)


def build(url: str, every_s: int = 30) -> procrastinate.App:
    """The procrastinate app with the sweep every ``every_s`` seconds and the tidy task every 5 minutes."""
    if every_s not in EVERY_S:
        raise ValueError(f"every_s must divide a minute: one of {EVERY_S}")
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))
    seconds = "0" if every_s == 60 else f"*/{every_s}"

    @app.periodic(cron=f"* * * * * {seconds}", periodic_id="sweep")
    @app.task(name=SWEEP, queueing_lock=SWEEP, pass_context=True)
    def sweep(context: procrastinate.JobContext, timestamp: int) -> int:
        engine, calendar = context.additional_context["engine"], context.additional_context["calendar"]
        written = scheduler.sweep(engine, calendar)
        if written:
            log.info("scheduler: %d reminders / orders written", len(written))
        return len(written)

    @app.periodic(cron=f"* * * * * {seconds}", periodic_id="plans")
    @app.task(name=PLANS, queueing_lock=PLANS, pass_context=True)
    def apply_plans(context: procrastinate.JobContext, timestamp: int) -> int:
        applied = planning.apply_due(context.additional_context["engine"])
        if applied:
            log.info("scheduler: %d scheduled grid plan(s) applied", len(applied))
        return len(applied)

    @app.periodic(cron="*/5 * * * *", periodic_id="tidy")
    @app.task(name=TIDY, queueing_lock=TIDY)
    async def tidy(timestamp: int) -> None:
        for job in await app.job_manager.get_stalled_jobs():
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
        await app.job_manager.delete_old_jobs(nb_hours=24, include_failed=True)

    @app.periodic(cron="23 * * * *", periodic_id="partitions")
    @app.task(name=PARTITIONS, queueing_lock=PARTITIONS, pass_context=True)
    def keep_partitions(context: procrastinate.JobContext, timestamp: int) -> int:
        done = partitions.maintain(context.additional_context["engine"])
        moved = sum(done.moved.values())
        if moved:
            log.info("partitions: %d rows moved out of the default partitions", moved)
        return moved

    del sweep, apply_plans, tidy, keep_partitions  # registered on the app
    return app


async def run(url: str, engine: Engine, *, every_s: int = 30, name: str = "gridlink",
              install_signal_handlers: bool = True) -> None:
    """Work the scheduler's queue until cancelled (or, with signal handlers, until SIGINT / SIGTERM)."""
    app = build(url, every_s)
    with engine.connect() as conn:
        calendar = ReferenceCache.load(conn).calendar
    context: dict[str, Any] = {"engine": engine, "calendar": calendar}
    async with app.open_async():
        await app.run_worker_async(name=name, concurrency=1, delete_jobs="successful",
                                   additional_context=context, install_signal_handlers=install_signal_handlers)
