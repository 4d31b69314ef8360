"""Query-plan tests on partitioned tables: a month's index is named by PostgreSQL after its partition
(``case_p2026_11_location_idx``), so plans are read by the index of the partitioned table it belongs to
(``ix_case_location``), which is what the tests name (migrations 0028 and 0031)."""

from __future__ import annotations

import re
from collections.abc import Iterable

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
