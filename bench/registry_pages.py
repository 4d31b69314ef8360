"""Benchmark: the registry table's pages (``GET /api/v1/components``) on 680,000 components, as an owner.

    .venv/bin/python -m bench.registry_pages [--repeat 7] [--reuse] [--keep]

Issue 21's target: "registry table pages under 200 ms server time on 680,000 components (filtered and sorted)".

1. A scratch copy of the full-demo template (bench/intake.py builds it; run that once first) holds Wuzhong's
   680,000 components, migrated to head (the indexes of the registry's pages included). ``--reuse`` keeps a
   scratch copy from an earlier run (for working on the queries), ``--keep`` leaves it for the next.
2. The app runs in this process (Starlette's TestClient: the whole request — authentication, the query, the
   GeoJSON reply — without a network), signed in as the water company's owner account (``WATER``: 194,000
   components, the largest owner); its search is then always filtered by its own key (issue 21 item 4).
3. For each filter / sort combination the page the registry page asks for first (100 rows) and a deep keyset
   page (the cursor of the row half-way through the filter's rows) are each timed ``--repeat`` times, the
   median kept. Reference measured in the same run: ``GET /api/v1/components/{code}``, one component by its
   primary key through the same client (the floor of any request that reads the registry).
Prints one table (ms, and the ratio to the reference); writes bench/results/registry_pages.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import Connection, and_, create_engine, select, text, true

from bench import machine, save
from bench.intake import TEMPLATE, fresh_copy
from spatial.components import registry
from spatial.settings import DatabaseSettings
from spatial.store.cursors import encode_cursor
from spatial.store.db import database_url
from spatial.store.models.components import Component

SCRATCH = "gridlink_bench_registry_pages"
OWNER, LOGIN = "WATER", "bench.water"
TARGET_MS = 200.0


def scratch(settings: DatabaseSettings, reuse: bool) -> str:
    """The scratch copy of the demo template, migrated to head; its URL."""
    from alembic import command

    from migrations import alembic_config

    admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
    admin.dispose()
    if TEMPLATE not in names:
        raise SystemExit(f"no {TEMPLATE}: run `python -m bench.intake` once to build the full-demo template")
    url = database_url(settings, SCRATCH) if reuse and SCRATCH in names else fresh_copy(settings, SCRATCH)
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE component"))
    engine.dispose()
    return url


def token(url: str) -> str:
    """A bearer token of the owner account the pages are read as."""
    from spatial.access.accounts import add_user, create_token

    engine = create_engine(url)
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM account WHERE login = :l"), {"l": LOGIN}).scalar():
            add_user(conn, LOGIN, role="owner", scope=OWNER, password="bench water password 21")
        value = create_token(conn, LOGIN, ttl=None)[0]
    engine.dispose()
    return value


def cases(conn: Connection) -> list[tuple[str, dict[str, str]]]:
    """The filter / sort combinations: names and query parameters, values drawn from the data."""
    klass = conn.execute(text("SELECT class_code FROM component WHERE owner_key = :o GROUP BY 1 ORDER BY count(*)"
                              " DESC LIMIT 1"), {"o": OWNER}).scalar_one()
    town = conn.execute(text("SELECT left(grid_code, 9) FROM component WHERE owner_key = :o GROUP BY 1"
                             " ORDER BY count(*) DESC LIMIT 1"), {"o": OWNER}).scalar_one()
    community = conn.execute(text("SELECT left(grid_code, 12) FROM component WHERE owner_key = :o GROUP BY 1"
                                  " ORDER BY count(*) DESC LIMIT 1"), {"o": OWNER}).scalar_one()
    since = conn.execute(text("SELECT percentile_disc(0.9) WITHIN GROUP (ORDER BY changed_at) FROM component"
                              " WHERE owner_key = :o"), {"o": OWNER}).scalar_one()
    return [
        ("all, by code", {"sort": "code"}),
        ("all, newest change first", {"sort": "-changed_at"}),
        ("all, by name", {"sort": "name"}),
        ("all, by code descending", {"sort": "-code"}),
        ("status damaged, by code", {"status": "damaged", "sort": "code"}),
        ("status missing, newest first", {"status": "missing", "sort": "-changed_at"}),
        (f"class {klass}, by name", {"class": klass, "sort": "name"}),
        (f"town {town}, newest first", {"area": town, "sort": "-changed_at"}),
        (f"community {community}, by code", {"area": community, "sort": "code"}),
        ("changed since p90, newest first", {"changed_since": since.isoformat(), "sort": "-changed_at"}),
        ("text 井盖, by code", {"text": "井盖", "sort": "code"}),
        (f"class {klass} + intact + town, by name", {"class": klass, "status": "intact", "area": town,
                                                     "sort": "name"}),
    ]


def deep_cursor(conn: Connection, params: dict[str, str]) -> tuple[str | None, int]:
    """The cursor after the row half-way through the rows ``params`` select (as the API would have issued it
    after walking there), and how many rows that is."""
    from datetime import datetime

    f = registry.ComponentFilter(owner=OWNER, class_code=params.get("class"), status=params.get("status"),
                                 area=params.get("area"), text=params.get("text"),
                                 changed_since=datetime.fromisoformat(params["changed_since"])
                                 if "changed_since" in params else None, sort=params["sort"])
    where = and_(true(), *registry.where_clauses(f))
    rows = conn.execute(select(Component.code).where(where).with_only_columns(text("count(*)"))).scalar_one()
    if rows < 2:
        return None, rows
    keys = registry._keys(f.sort)  # the search's own keys, so the cursor is exactly one it issues
    order = [k.asc() if up else k.desc() for k, up in keys]
    last = conn.execute(select(*[k for k, _ in keys]).where(where).order_by(*order).offset(rows // 2).limit(1)).one()
    return encode_cursor(list(last)), rows


def median_ms(client: Any, url: str, params: dict[str, str], headers: dict[str, str], repeat: int) -> float:
    """The median of ``repeat`` timed requests (after one untimed, which warms the caches as a reader would)."""
    client.get(url, params=params, headers=headers).raise_for_status()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        reply = client.get(url, params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        reply.raise_for_status()
    return statistics.median(times)


def run(url: str, repeat: int) -> dict[str, Any]:
    """Time every case's first and deep page against the primary-key reference."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    headers = {"Authorization": f"Bearer {token(url)}"}
    engine = create_engine(url)
    with engine.connect() as conn:
        combos = [(name, params, *deep_cursor(conn, params)) for name, params in cases(conn)]
        some = conn.execute(text("SELECT code FROM component WHERE owner_key = :o ORDER BY code OFFSET 1000"
                                 " LIMIT 1"), {"o": OWNER}).scalar_one()
        total = conn.execute(text("SELECT count(*) FROM component")).scalar_one()
    engine.dispose()
    result: dict[str, Any] = {"machine": machine(), "components": total, "owner": OWNER, "repeat": repeat,
                              "target_ms": TARGET_MS, "cases": []}
    with TestClient(create_app(url=url)) as client:
        reference = median_ms(client, f"/api/v1/components/{some}", {}, headers, repeat)
        result["reference_ms"] = reference
        for name, params, cursor, rows in combos:
            first = median_ms(client, "/api/v1/components", {**params, "limit": "100"}, headers, repeat)
            deep = (median_ms(client, "/api/v1/components", {**params, "limit": "100", "cursor": cursor}, headers,
                              repeat) if cursor else None)
            result["cases"].append({"case": name, "rows": rows, "first_ms": first, "deep_ms": deep,
                                    "first_ratio": first / reference, "deep_ratio": deep / reference if deep else None})
            print(f"{name}: {rows:,} rows, first {first:.1f} ms, deep {deep or 0:.1f} ms", flush=True)
    worst = max(max(c["first_ms"], c["deep_ms"] or 0) for c in result["cases"])
    result["worst_ms"], result["under_target"] = worst, worst < TARGET_MS
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"\n{result['machine']}; {result['components']:,} components; owner {result['owner']};"
          f" median of {result['repeat']}; reference GET one component {result['reference_ms']:.1f} ms")
    print(f"{'case':44} {'rows':>9} {'first ms':>9} {'×ref':>6} {'deep ms':>9} {'×ref':>6}")
    for c in result["cases"]:
        deep = f"{c['deep_ms']:9.1f} {c['deep_ratio']:6.1f}" if c["deep_ms"] else f"{'—':>9} {'—':>6}"
        print(f"{c['case']:44} {c['rows']:9,} {c['first_ms']:9.1f} {c['first_ratio']:6.1f} {deep}")
    print(f"worst page {result['worst_ms']:.1f} ms: {'under' if result['under_target'] else 'OVER'}"
          f" the {result['target_ms']:.0f} ms target")


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="timed requests per page (the median is kept)")
    parser.add_argument("--reuse", action="store_true", help="reuse the scratch copy of an earlier run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    settings = DatabaseSettings()
    url = scratch(settings, args.reuse)
    result = run(url, args.repeat)
    _print(result)
    save("registry_pages.json", result)
    if not args.keep:
        admin = create_engine(database_url(settings, "postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
