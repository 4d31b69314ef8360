"""Benchmark: evaluation (GET /api/v1/kpi) for every base grid and every department over the demo's full year,
against the same aggregation as one hand-written SQL query in the same run (issue 17, "Measure").

    .venv/bin/python -m bench.kpi [--rounds 3] [--intake 30] [--reuse] [--intake-only]

1. The full demo (a year of cases: ~580,000 cases, ~3.9 million events): a private copy of the benchmark's
   template database (bench/intake.py; built first if missing), ``gridlink_bench_kpi``, upgraded to head —
   the template is never migrated here (other branches' revisions meet it). The upgrade's time is printed:
   on a template made before migration 0020 it is that migration's backfill of the per-case summary, which
   rewrites every case row; ``VACUUM FULL`` then gives the table the shape a fresh demo build has.
   ``--reuse`` keeps the copy of an earlier run (the period stays the demo's year: section 4 adds cases).
2. Floor: one hand-written statement computing the same per-group counts (all of them, the 721 split
   included) over the same data the product reads — each case's summary columns (``case.kpi_*``), or its
   trail when it has an event at or after the period's end — without scope parameters, names, scores or
   ranks, on a raw psycopg2 cursor with the product's two planner settings (spatial/cases/kpi.py
   ``_settle``). For the record, once per group: the same with the server's default settings, and the
   trail-only statement (what the evaluation read before the summary: every event of the year).
   By department the floor adds the assisting units' rows of ``case_unit`` (joint handling).
3. Domain: ``spatial.cases.kpi.evaluate`` as a city-wide account, which reads the rollup (migration 0022:
   sums over the period's whole local days, the edges and the cases not settled at its end judged one by
   one); HTTP: ``GET /api/v1/kpi`` through the app in process (FastAPI's TestClient: routing, auth, JSON),
   with a city-wide partner's token. For the record, once per group: the domain case by case
   (``rollup=False``, what the evaluation read before the rollup), and what the rollup path read.
   Floor, domain and HTTP alternate in R rounds per group; the table shows medians and the ratio to the floor.
   The product's counts (rollup and case by case) must equal both floors', group by group (the summary's and
   the rollup's parity at full scale).
4. Intake's cost of the triggers that keep the summary and the rollup (``--intake`` seconds, after the
   evaluations): the intake floor of bench/intake.py (the intake statement per report, each committed, 8
   connections) in alternating rounds with ``case_event_kpi`` and the rollup's insert and update triggers on
   ``case`` enabled and disabled, each side first in half of the rounds; cases/s (mean of rounds) and the
   ratio on / off. Both rebuilds then catch up with the cases written with the triggers off.
Writes bench/results/kpi.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, text

from bench import machine, save
from bench.intake import TEMPLATE, Floor, bench_token, fresh_copy, interleaved, sample_reports, template
from spatial.access.principal import Principal
from spatial.cases.kpi import ASSIST_COUNTS, COUNTS, LEAD_COUNTS, KpiQuery, evaluate
from spatial.cases.kpi_rollup import one_by_one, window
from spatial.demo.build import DEMO_END
from spatial.settings import DatabaseSettings
from spatial.store.db import database_url

COPY = "gridlink_bench_kpi"
JUDGE = """
WITH judged AS (
  SELECT id, key, deadline, owner_key, close_at, handle_at, reworks, register_at IS NOT NULL AS registered,
         last_at = void_at AS voided, last_at = suspend_at AS suspended, last_at = close_at AS closed,
         last_at IN (close_at, handled_state_at) AS handled,
         register_at IS NOT NULL AND last_at IS DISTINCT FROM void_at AND last_at IS DISTINCT FROM suspend_at
           AND (deadline < %(end)s OR last_at = close_at) AS due,
         owner_key IN (SELECT key FROM department WHERE kind = 'enforcement') AS enforcement
  FROM ({facts}) per_case
  OFFSET 0
), lead AS (
SELECT key, count(*) AS reported,
       count(*) FILTER (WHERE registered) AS registered,
       count(*) FILTER (WHERE voided) AS voided,
       count(*) FILTER (WHERE suspended) AS suspended,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE due AND closed) AS closed,
       count(*) FILTER (WHERE due AND closed AND close_at <= deadline) AS closed_on_time,
       count(*) FILTER (WHERE due AND handled) AS handled,
       count(*) FILTER (WHERE due AND handled AND handle_at <= deadline) AS handled_on_time,
       count(*) FILTER (WHERE due AND reworks > 0) AS reworked,
       count(*) FILTER (WHERE due AND closed AND owner_key = 'GRID_CHIEF') AS solved_grid,
       count(*) FILTER (WHERE due AND closed AND owner_key <> 'GRID_CHIEF' AND NOT enforcement) AS solved_department,
       count(*) FILTER (WHERE due AND closed AND enforcement) AS solved_enforcement
FROM judged GROUP BY key
), assisted AS (
SELECT u.unit_key AS key, count(*) AS assisting,
       count(*) FILTER (WHERE u_due) AS assist_due,
       count(*) FILTER (WHERE u_due AND u_handled_at IS NOT NULL) AS assist_handled,
       count(*) FILTER (WHERE u_due AND u_handled_at <= u.deadline) AS assist_handled_on_time
FROM case_unit u JOIN judged j ON j.id = u.case_id
CROSS JOIN LATERAL (SELECT CASE WHEN u.handled_at < %(end)s THEN u.handled_at END AS u_handled_at) h
CROSS JOIN LATERAL (SELECT j.registered AND NOT coalesce(j.voided, false) AND NOT coalesce(j.suspended, false)
                           AND (u.deadline < %(end)s OR u_handled_at IS NOT NULL) AS u_due) d
WHERE u.dispatched_at < %(end)s
GROUP BY u.unit_key
)
SELECT coalesce(l.key, a.key) AS key, {lead_counts}, {assist_counts}
FROM lead l FULL JOIN assisted a ON a.key = l.key
"""
TRAIL = """
    SELECT c.id, {key} AS key, c.deadline, c.owner_key,
           max(e.at) FILTER (WHERE e.kind = 'register') AS register_at,
           max(e.at) FILTER (WHERE e.state_after IS NOT NULL) AS last_at,
           max(e.at) FILTER (WHERE e.state_after = 'closed') AS close_at,
           max(e.at) FILTER (WHERE e.state_after = 'handled') AS handled_state_at,
           max(e.at) FILTER (WHERE e.state_after = 'voided') AS void_at,
           max(e.at) FILTER (WHERE e.state_after = 'suspended') AS suspend_at,
           max(e.at) FILTER (WHERE e.kind = 'handle') AS handle_at,
           count(*) FILTER (WHERE e.kind = 'rework') AS reworks
    FROM "case" c JOIN case_event e ON e.case_id = c.id AND e.at < %(end)s
    WHERE c.reported_at >= %(start)s AND c.reported_at < %(end)s {moved_on}
    GROUP BY c.id
"""
SUMMARY = """
    SELECT c.id, {key} AS key, c.deadline, c.owner_key, c.kpi_registered_at AS register_at, c.kpi_state_at AS last_at,
           c.kpi_closed_at AS close_at, c.kpi_handled_state_at AS handled_state_at, c.kpi_voided_at AS void_at,
           c.kpi_suspended_at AS suspend_at, c.kpi_handled_at AS handle_at, c.kpi_reworks AS reworks
    FROM "case" c
    WHERE c.reported_at >= %(start)s AND c.reported_at < %(end)s
      AND (c.kpi_through IS NULL OR c.kpi_through < %(end)s)
    UNION ALL
""" + TRAIL.replace("{moved_on}", "AND c.kpi_through >= %(end)s")
FLOORS = {"summary": JUDGE.replace("{facts}", SUMMARY),
          "trail": JUDGE.replace("{facts}", TRAIL.replace("{moved_on}", ""))}
# By grid the statement ends with the lead's counts (assisting units count by department only); by
# department the assisting units' rows of case_unit join in.
LEAD_ONLY = "SELECT *, 0 AS assisting, 0 AS assist_due, 0 AS assist_handled, 0 AS assist_handled_on_time FROM lead"
ENDINGS = {"grid": lambda sql: sql[:sql.index("), assisted AS (")] + ")\n" + LEAD_ONLY,
           "department": lambda sql: sql.replace("{lead_counts}", ", ".join(
               f"coalesce(l.{c}, 0) AS {c}" for c in LEAD_COUNTS)).replace("{assist_counts}", ", ".join(
               f"coalesce(a.{c}, 0) AS {c}" for c in ASSIST_COUNTS))}
KEYS = {"grid": "c.grid_code", "department": "c.owner_key"}
COMPARED = COUNTS
CITY = Principal(0, "bench", "admin", "*")


def timed(fn) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def floor(engine, group: str, period: dict, settled: bool = True, kind: str = "summary") -> dict[str, dict[str, int]]:
    """A hand-written aggregation (``FLOORS[kind]``) on a raw cursor: counts by group key."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if settled:
            cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cur.execute("SET LOCAL work_mem = '128MB'")
        cur.execute(ENDINGS[group](FLOORS[kind]).replace("{key}", KEYS[group]), period)
        names = [d[0] for d in cur.description]
        rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
        raw.rollback()
        return rows
    finally:
        raw.close()


def prepare(settings: DatabaseSettings, reuse: bool = False) -> tuple[str, float | None, float | None]:
    """The benchmark's private copy of the demo template, at head: its URL, the upgrade's and VACUUM FULL's
    seconds (None: ``reuse`` kept the copy of an earlier run)."""
    from alembic import command

    from migrations import alembic_config

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = set(conn.execute(text("SELECT datname FROM pg_database WHERE datname IN (:t, :c)"),
                                 {"t": TEMPLATE, "c": COPY}).scalars())
    admin.dispose()
    if reuse and COPY in names:
        url = database_url(settings, COPY)
        t_upgrade, _ = timed(lambda: command.upgrade(alembic_config(url), "head"))
        return url, t_upgrade, None
    if TEMPLATE not in names:
        template(settings)
    url = fresh_copy(settings, COPY)
    t_upgrade, _ = timed(lambda: command.upgrade(alembic_config(url), "head"))
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        t_vacuum, _ = timed(lambda: conn.execute(text('VACUUM FULL ANALYZE "case"')))
    engine.dispose()
    return url, t_upgrade, t_vacuum


def domain(engine, group: str, period: dict, rollup: bool = True) -> dict[str, dict[str, int]]:
    """``evaluate`` as a city-wide account (from the rollup, or ``rollup=False`` case by case): counts by key."""
    with engine.connect() as conn:
        report = evaluate(conn, KpiQuery(group, period["start"], period["end"]), by=CITY, rollup=rollup)
    return {g["key"]: g for g in report["groups"]}


# The evaluation's triggers that intake meets: the per-case summary's (migration 0020) and the rollup's on
# case inserts and updates (migration 0022).
TRIGGERS = (("case_event", "case_event_kpi"), ('"case"', "case_kpi_rollup_insert"),
            ('"case"', "case_kpi_rollup_update"))


def rollup_shape(engine, period: dict) -> dict[str, int]:
    """What the rollup path reads for ``period``: rollup rows of its whole days, cases judged one by one."""
    days = window(period["start"], period["end"])
    assert days is not None
    params = {**period, **days.params()}
    with engine.connect() as conn:
        every, inside = one_by_one(conn, params)
        rows, months = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE span = 'm') FROM kpi_rollup WHERE (span = 'm' AND day >= :m0"
            " AND day < :m1) OR (span = 'd' AND ((day >= :d0 AND day < :m0) OR (day >= :m1 AND day < :d1)))"),
            params).one()
    return {"rollup_rows": rows, "month_rows": months, "one_by_one": len(every), "inside": len(inside)}


class Switched:
    """The intake floor with the evaluation's triggers switched on or off before each of its rounds."""

    def __init__(self, floor: Floor, on: bool) -> None:
        self.floor, self.on = floor, on

    def work(self, i: int, body: dict) -> None:
        """The floor's statement, committed (Floor.work's ``commit`` finds no SQLAlchemy transaction to end:
        the statement runs on the raw DBAPI connection)."""
        self.floor.work(i, body)
        dbapi = self.floor.conns[i].connection.dbapi_connection
        assert dbapi is not None
        dbapi.commit()

    def begin(self) -> None:
        with self.floor.engine.begin() as conn:
            for table, trigger in TRIGGERS:
                conn.execute(text(f"ALTER TABLE {table} {'ENABLE ALWAYS' if self.on else 'DISABLE'} TRIGGER {trigger}"))


def intake_cost(url: str, seconds: float, clients: int = 8, rounds: int = 6) -> dict[str, Any]:
    """Intake floor cases/s with the trigger on and off, alternating (section 4 of the docstring)."""
    # Fresh places for every run and no report sent twice: a report repeated within a day is a duplicate, and
    # duplicates (whose ``link`` row fires the trigger) would then be half the load instead of ~2 %.
    reports = sample_reports(url, 40_000, seed=int(time.time()) % 1_000_000)
    floor = Floor(url, clients)
    try:
        on, off = Switched(floor, True), Switched(floor, False)
        warm = interleaved(reports, clients, 4, 2, {"on": on, "off": off})
        offset = sum(side["requests"] for side in warm.values())
        rates: dict[str, list[float]] = {"on": [], "off": []}
        for r in range(rounds):  # each side goes first in half of the rounds
            order = {"on": on, "off": off} if r % 2 == 0 else {"off": off, "on": on}
            run = interleaved(reports[offset:], clients, seconds / rounds, 1, order)
            offset += sum(side["requests"] for side in run.values())
            for name in rates:
                rates[name] += run[name]["per_round"]
        on.begin()
        with floor.engine.begin() as conn:  # the cases written with the triggers off: summary and rollup again
            conn.execute(text("SELECT gridlink_case_kpi_rebuild(), gridlink_kpi_rollup_rebuild()"))
    finally:
        floor.close()
    ratios = [a / b for a, b in zip(rates["on"], rates["off"], strict=True)]
    mean = {name: round(statistics.mean(values), 1) for name, values in rates.items()}
    return {"on_per_s": mean["on"], "off_per_s": mean["off"], "ratio": round(mean["on"] / mean["off"], 3),
            "ratio_median_of_rounds": round(statistics.median(ratios), 3),
            "rounds_on": rates["on"], "rounds_off": rates["off"]}


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep the copy of an earlier run (no upgrade timing)")
    parser.add_argument("--intake-only", action="store_true", help="only section 4 (on the kept copy)")
    parser.add_argument("--intake", type=float, default=30, help="seconds of intake with the trigger on and off")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from api.app import create_app

    url, t_upgrade, t_vacuum = prepare(DatabaseSettings(), reuse=args.reuse or args.intake_only)
    if args.intake_only:
        print(intake_cost(url, args.intake))
        return
    if t_upgrade is not None:
        print(f"upgrade of the copy to head: {t_upgrade:.1f} s"
              + (f"; VACUUM FULL ANALYZE case: {t_vacuum:.1f} s" if t_vacuum is not None else " (kept copy)"))
    token = bench_token(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        # The demo's year (section 4 adds cases after it to the kept copy).
        first, last = conn.execute(text('SELECT min(reported_at), max(reported_at) FROM "case"'
                                        " WHERE reported_at < :end"), {"end": DEMO_END}).one()
    period = {"start": first, "end": last + timedelta(seconds=1)}
    shape = rollup_shape(engine, period)
    params = {"from": period["start"].isoformat(), "to": period["end"].isoformat()}
    rows: list[dict[str, Any]] = []
    with TestClient(create_app(url=url), headers={"Authorization": f"Bearer {token}"}) as client:
        for group in KEYS:
            t_default, _ = timed(lambda g=group: floor(engine, g, period, settled=False))
            t_trail, by_trail = timed(lambda g=group: floor(engine, g, period, kind="trail"))
            t_cases, by_case = timed(lambda g=group: domain(engine, g, period, rollup=False))
            times: dict[str, list[float]] = {"floor": [], "domain": [], "http": []}
            for _ in range(args.rounds):
                t, expected = timed(lambda g=group: floor(engine, g, period))
                times["floor"].append(t)
                t, got = timed(lambda g=group: domain(engine, g, period))
                times["domain"].append(t)
                t, reply = timed(lambda g=group: client.get("/api/v1/kpi", params={**params, "group": g}))
                times["http"].append(t)
                assert reply.status_code == 200, reply.text
                assert len(reply.json()["groups"]) == len(expected)
                assert set(by_trail) == set(expected)
                for key, counts in expected.items():
                    assert {k: got[key][k] for k in COMPARED} == {k: counts[k] for k in COMPARED}, key
                    assert {k: by_trail[key][k] for k in COMPARED} == {k: counts[k] for k in COMPARED}, key
                    assert {k: by_case[key][k] for k in COMPARED} == {k: counts[k] for k in COMPARED}, key
            medians = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"group": group, "groups": len(expected), "floor_default_s": round(t_default, 3),
                         "trail_floor_s": round(t_trail, 3), "case_by_case_s": round(t_cases, 3),
                         **{f"{k}_s": round(v, 3) for k, v in medians.items()},
                         "domain_ratio": round(medians["domain"] / medians["floor"], 2),
                         "http_ratio": round(medians["http"] / medians["floor"], 2)})
    engine.dispose()
    print(f"machine: {machine()}; period {period['start']:%Y-%m-%d} – {period['end']:%Y-%m-%d}, "
          f"{args.rounds} rounds, medians")
    print(f"rollup rows in the period's whole days: {shape['rollup_rows']} (months {shape['month_rows']}), "
          f"cases judged one by one: {shape['one_by_one']} (of them not settled at its end: {shape['inside']})")
    print(f"{'group':<11} {'groups':>6} {'trail floor':>11} {'floor (default)':>15} {'case by case':>12} "
          f"{'floor':>7} {'domain':>7} {'HTTP':>7} {'domain/floor':>12} {'HTTP/floor':>10}")
    for r in rows:
        print(f"{r['group']:<11} {r['groups']:>6} {r['trail_floor_s']:>10.3f}s {r['floor_default_s']:>14.3f}s "
              f"{r['case_by_case_s']:>11.3f}s {r['floor_s']:>6.3f}s {r['domain_s']:>6.3f}s {r['http_s']:>6.3f}s "
              f"{r['domain_ratio']:>12.2f} {r['http_ratio']:>10.2f}")
    intake = intake_cost(url, args.intake) if args.intake > 0 else None
    if intake:
        print(f"intake floor with the evaluation's triggers: {intake['on_per_s']} cases/s, without: "
              f"{intake['off_per_s']} cases/s, ratio {intake['ratio']} (median of rounds "
              f"{intake['ratio_median_of_rounds']}; on {intake['rounds_on']}, off {intake['rounds_off']})")
    save("kpi.json", {"machine": machine(), "rounds": args.rounds, "upgrade_s": t_upgrade and round(t_upgrade, 1),
                      "vacuum_full_s": t_vacuum and round(t_vacuum, 1), "rollup": shape, "rows": rows,
                      "intake": intake})


if __name__ == "__main__":
    main()
