"""Query-plan tests on partitioned tables: a month's index is named by PostgreSQL after its partition
(``case_p2026_11_location_idx``), so plans are read by the index of the partitioned table it belongs to
(``ix_case_location``), which is what the tests name (migrations 0028 and 0031)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, text


def root_indexes(conn: Connection, names: Iterable[str]) -> set[str]:
    """Each index of ``names`` as the index of its partitioned table (an index of a plain table as itself)."""
    listed = sorted(set(names))
    if not listed:
        return set()
    return set(conn.execute(text(
        "SELECT coalesce((SELECT c.relname FROM pg_class c WHERE c.oid = pg_partition_root(to_regclass(n))), n)"
        " FROM unnest(CAST(:names AS text[])) n"), {"names": listed}).scalars())


def is_case_month(relation: str) -> bool:
    """Tell whether a plan's relation is the table "case" or one of its months (not case_photo)."""
    return relation == "case" or re.fullmatch(r"case_(?:p\d{4}_\d{2}|default)", relation) is not None


def plan_nodes(node: dict) -> Iterator[dict]:
    """A plan node (EXPLAIN's JSON) and every node below it."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def case_months_in(plan: dict, *, executed: bool = False) -> set[str]:
    """The months of "case" in a plan's nodes (``executed``: only those run at least once)."""
    return {n["Relation Name"] for n in plan_nodes(plan)
            if n.get("Relation Name", "case") != "case" and is_case_month(n["Relation Name"])
            and (not executed or n.get("Actual Loops", 0) > 0)}


def case_months_planned(conn: Connection, sql: str, params: dict) -> set[str]:
    """The months of "case" in a statement's plan (plan-time pruning: the others are not even planned; those
    the executor drops when it starts are counted in "Subplans Removed", not listed)."""
    return case_months_in(conn.execute(text("EXPLAIN (COSTS OFF, FORMAT JSON) " + sql), params).scalar()[0]["Plan"])


def as_text(sent: tuple[str, Any]) -> tuple[str, dict]:
    """A statement as psycopg2 got it (pyformat), for text(): ``%(name)s`` → ``:name``, ``%%`` → ``%``."""
    sql, params = sent
    return re.sub(r"%\((\w+)\)s", r":\1", sql).replace("%%", "%"), dict(params or {})
