"""Hot queries can use their GiST indexes (EXPLAIN (FORMAT JSON)). Sequential scans are disabled so that the
tiny test tables cannot hide a predicate the index cannot serve."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from sqlalchemy import select, text

from spatial.cases.assignment.rules import AssignmentInput, batch_params, report_params
from spatial.cases.read import _area_clause
from spatial.reference.cache import ReferenceCache
from spatial.store.models import Case
from spatial.store.sql import statement
from tests.plans import root_indexes


def _plan_indexes(conn, sql, params) -> set[str]:
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    compiled = sql.bindparams(**params).compile(conn, compile_kwargs={"literal_binds": False})
    raw = conn.connection.dbapi_connection.cursor()
    raw.execute("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params)
    plan = raw.fetchone()[0]
    found: set[str] = set()

    def walk(node) -> None:
        if "Index Name" in node:
            found.add(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"])
    return root_indexes(conn, found)  # the months of "case" (migration 0031) by the indexes of the parent


def test_locate_uses_the_current_geometry_index(small_demo) -> None:
    with small_demo.connect() as conn, conn.begin():
        used = _plan_indexes(conn, statement("locate"), {"lon": 120.6, "lat": 31.25})
    assert "ix_grid_geometry_current_geom" in used


def _manhole_report(engine) -> AssignmentInput:
    with engine.connect() as conn:
        ref = ReferenceCache.load(conn)
    # a time inside the demo's cases (its last days): "case" is partitioned by month, and a report of today
    # would plan only today's month, empty in the demo (any scan of an empty month is as good as an index)
    return AssignmentInput(ref.categories["E010401"], 120.6, 31.25, datetime(2026, 11, 12, 2, 0, tzinfo=UTC))


def test_batch_assignment_uses_gist_for_grids_components_and_duplicates(small_demo) -> None:
    params = batch_params([_manhole_report(small_demo)])
    with small_demo.connect() as conn, conn.begin():
        used = _plan_indexes(conn, statement("assign"), params)
    assert {"ix_grid_geometry_current_base_geom", "ix_component_geom"} <= used
    assert "ix_case_open_location" in used


def test_single_intake_uses_gist(small_demo) -> None:
    params = {**report_params(_manhole_report(small_demo)), "source": "inspector", "description": None,
              "actor": "test", "deadline": datetime.now(UTC), "reporter_name": None, "reporter_phone": None,
              "idempotency_key": None}
    with small_demo.connect() as conn, conn.begin():
        used = _plan_indexes(conn, statement("intake"), params)
    assert {"ix_grid_geometry_current_base_geom", "ix_component_geom"} <= used


def test_case_list_by_town_uses_the_grid_code_index(small_demo) -> None:
    query = select(Case.id).where(_area_clause("320506100")).order_by(Case.id.desc()).limit(50)
    with small_demo.connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        compiled = query.compile(conn)
        raw = conn.connection.dbapi_connection.cursor()
        raw.execute("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params)
        plan = json.dumps(raw.fetchone()[0])
        used = root_indexes(conn, re.findall(r'"Index Name": "([^"]+)"', plan))
    assert "ix_case_grid_code" in used


def test_nearest_grid_uses_knn(small_demo) -> None:
    with small_demo.connect() as conn, conn.begin():
        used = _plan_indexes(conn, statement("nearest_grid"), {"lon": 122.0, "lat": 31.0})
    assert used & {"ix_grid_geometry_current_geom", "ix_grid_geometry_geom"}
