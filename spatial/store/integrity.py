"""Bulk loads without per-row foreign-key triggers, and the set-based check that replaces them.

PostgreSQL checks a foreign key with a trigger per inserted row. For a bulk load (the demo, a hotline
batch) that is most of the cost. When the role may (superuser), a load runs with
``session_replication_role = replica`` — which skips those triggers — and then checks every key of the
loaded rows with one anti-join per key, in the same transaction: one dangling row aborts the whole load.
Elsewhere the triggers stay on and nothing changes.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from spatial.store.sql import statement


class ForeignKeyError(RuntimeError):
    """Loaded rows point at rows that do not exist; the load must be rolled back."""


def skip_row_triggers(conn: Connection) -> bool:
    """Skip per-row FK triggers until the end of the transaction, when allowed; tell whether it did."""
    if not conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
        return False
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    return True


def restore_row_triggers(conn: Connection) -> None:
    """Turn per-row triggers back on for the rest of the transaction."""
    conn.execute(text("SET LOCAL session_replication_role = origin"))


def check_foreign_keys(conn: Connection, tables: tuple[str, ...], *, scope: dict[str, str] | None = None,
                       params: dict[str, object] | None = None, lock: bool = False) -> None:
    """Raise ForeignKeyError when a row of ``tables`` points at a missing parent.

    ``scope`` narrows the rows checked per table with a SQL condition on alias ``c`` (code-defined, with
    ``params`` bound), e.g. ``{"case": "c.id >= :first"}`` for the rows a batch just added. With ``lock``, the
    parent rows the checked rows point at are first locked ``FOR KEY SHARE`` until the transaction ends — what
    the skipped per-row triggers would have done — so that no one deletes or re-keys them before the commit
    (for loads into tables others use meanwhile).
    """
    keys = conn.execute(statement("foreign_key_violations"), {"tables": [f'"{t}"' for t in tables]}).all()
    scoped: dict[str, str] = {}  # a scoped child → a temporary table of the distinct keys its rows hold
    for child in sorted({k[0] for k in keys}):
        narrow = (scope or {}).get(child.strip('"'))
        if narrow is None:
            continue
        # the scope is read once (not once per key and again per lock): its distinct key tuples, a few hundred
        columns = sorted({c for k in keys if k[0] == child for c in k[2]})
        name = f"fk_scope_{len(scoped)}"
        conn.execute(text(f"DROP TABLE IF EXISTS pg_temp.{name}"))
        conn.execute(text(f"CREATE TEMP TABLE {name} AS SELECT DISTINCT {', '.join(columns)} FROM {child} c"
                          f" WHERE {narrow}"), params or {})
        scoped[child] = name
    for child, parent, child_columns, parent_columns in keys:
        # Identifiers come from the catalogue, never from input.
        join = " AND ".join(f"p.{pc} = c.{cc}" for cc, pc in zip(child_columns, parent_columns, strict=True))
        present = " AND ".join(f"c.{cc} IS NOT NULL" for cc in child_columns)
        rows = scoped.get(child, child)
        if lock:
            conn.execute(text(f"SELECT 1 FROM {parent} p WHERE EXISTS (SELECT 1 FROM {rows} c WHERE {join})"
                              " FOR KEY SHARE OF p"))
        broken = conn.execute(text(
            f"SELECT count(*) FROM {rows} c WHERE {present} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {join})"
        )).scalar()
        if broken:
            what = "distinct keys in the rows checked" if child in scoped else "rows"
            raise ForeignKeyError(f"{broken} {what} of {child} point at missing rows of {parent} ({child_columns})")
    for name in scoped.values():  # on a refusal the caller rolls back, and the tables go with it
        conn.execute(text(f"DROP TABLE pg_temp.{name}"))
