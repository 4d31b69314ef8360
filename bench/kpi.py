"""Benchmark: evaluation (GET /api/v1/kpi) for every base grid and every department over the demo's full year,
against the same aggregation as one hand-written SQL query in the same run (issue 17, "Measure").

    .venv/bin/python -m bench.kpi [--rounds 3]

1. The full demo (a year of cases: ~580,000 cases, ~3.9 million events) in the benchmark's template database
   (shared with bench/intake.py and bench/ogc.py), read, never written (but for bench/intake.py's token).
2. Floor: one hand-written statement computing the same per-group counts (no scope parameters, no names, no
   scores or ranks), run on a raw psycopg2 cursor with the same two planner settings as the product
   (spatial/cases/kpi.py ``_settle``); once more with the server's default settings, for the record.
3. Domain: ``spatial.cases.kpi.evaluate`` as a city-wide account; HTTP: ``GET /api/v1/kpi`` through the app in
   process (FastAPI's TestClient: routing, auth, JSON), with a city-wide partner's token.
   Floor, domain and HTTP alternate in R rounds per group; the table shows medians and the ratio to the floor.
   The floor's counts must equal the product's, group by group.
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
from bench.intake import bench_token, template
from spatial.access.principal import Principal
from spatial.cases.kpi import KpiQuery, evaluate
from spatial.settings import DatabaseSettings

FLOOR = """
SELECT key, count(*) AS reported,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE due AND closed) AS closed,
       count(*) FILTER (WHERE due AND closed AND close_at <= deadline) AS closed_on_time,
       count(*) FILTER (WHERE due AND handled) AS handled,
       count(*) FILTER (WHERE due AND handled AND handle_at <= deadline) AS handled_on_time,
       count(*) FILTER (WHERE due AND reworks > 0) AS reworked
FROM (
  SELECT key, deadline, close_at, handle_at, reworks, last_at = close_at AS closed,
         last_at IN (close_at, handled_state_at) AS handled,
         register_at IS NOT NULL AND last_at IS DISTINCT FROM void_at AND last_at IS DISTINCT FROM suspend_at
           AND (deadline < %(end)s OR last_at = close_at) AS due
  FROM (
    SELECT {key} AS key, c.deadline,
           max(e.at) FILTER (WHERE e.kind = 'register') AS register_at,
           max(e.at) FILTER (WHERE e.state_after IS NOT NULL) AS last_at,
           max(e.at) FILTER (WHERE e.state_after = 'closed') AS close_at,
           max(e.at) FILTER (WHERE e.state_after = 'handled') AS handled_state_at,
           max(e.at) FILTER (WHERE e.state_after = 'voided') AS void_at,
           max(e.at) FILTER (WHERE e.state_after = 'suspended') AS suspend_at,
           max(e.at) FILTER (WHERE e.kind = 'handle') AS handle_at,
           count(*) FILTER (WHERE e.kind = 'rework') AS reworks
    FROM "case" c JOIN case_event e ON e.case_id = c.id AND e.at < %(end)s
    WHERE c.reported_at >= %(start)s AND c.reported_at < %(end)s
    GROUP BY c.id
  ) per_case
) judged
GROUP BY key
"""
KEYS = {"grid": "c.grid_code", "department": "c.owner_key"}
COMPARED = ("reported", "due", "closed", "closed_on_time", "handled", "handled_on_time", "reworked")
CITY = Principal(0, "bench", "admin", "*")


def timed(fn) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def floor(engine, group: str, period: dict, settled: bool = True) -> dict[str, dict[str, int]]:
    """The hand-written aggregation on a raw cursor: counts by group key."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if settled:
            cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cur.execute("SET LOCAL work_mem = '128MB'")
        cur.execute(FLOOR.format(key=KEYS[group]), period)
        names = [d[0] for d in cur.description]
        rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
        raw.rollback()
        return rows
    finally:
        raw.close()


def domain(engine, group: str, period: dict) -> dict[str, dict[str, int]]:
    """``evaluate`` as a city-wide account: counts by group key."""
    with engine.connect() as conn:
        report = evaluate(conn, KpiQuery(group, period["start"], period["end"]), by=CITY)
    return {g["key"]: g for g in report["groups"]}


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from api.app import create_app

    url = template(DatabaseSettings())
    token = bench_token(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        first, last = conn.execute(text('SELECT min(reported_at), max(reported_at) FROM "case"')).one()
    period = {"start": first, "end": last + timedelta(seconds=1)}
    params = {"from": period["start"].isoformat(), "to": period["end"].isoformat()}
    rows: list[dict[str, Any]] = []
    with TestClient(create_app(url=url), headers={"Authorization": f"Bearer {token}"}) as client:
        for group in KEYS:
            t_default, _ = timed(lambda g=group: floor(engine, g, period, settled=False))
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
                for key, counts in expected.items():
                    assert {k: got[key][k] for k in COMPARED} == {k: counts[k] for k in COMPARED}, key
            medians = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"group": group, "groups": len(expected), "floor_default_s": round(t_default, 3),
                         **{f"{k}_s": round(v, 3) for k, v in medians.items()},
                         "domain_ratio": round(medians["domain"] / medians["floor"], 2),
                         "http_ratio": round(medians["http"] / medians["floor"], 2)})
    engine.dispose()
    print(f"machine: {machine()}; period {period['start']:%Y-%m-%d} – {period['end']:%Y-%m-%d}, "
          f"{args.rounds} rounds, medians")
    print(f"{'group':<11} {'groups':>6} {'floor (default)':>15} {'floor':>7} {'domain':>7} {'HTTP':>7} "
          f"{'domain/floor':>12} {'HTTP/floor':>10}")
    for r in rows:
        print(f"{r['group']:<11} {r['groups']:>6} {r['floor_default_s']:>14.3f}s {r['floor_s']:>6.3f}s "
              f"{r['domain_s']:>6.3f}s {r['http_s']:>6.3f}s {r['domain_ratio']:>12.2f} {r['http_ratio']:>10.2f}")
    save("kpi.json", {"machine": machine(), "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
