"""Hot and set-based SQL statements, kept as .sql files and loaded once.

A statement may include a shared fragment with ``{{name}}`` (the text of ``name.sql``), and a constant
of ``spatial.codes`` with ``{{NAME}}`` (upper case: ``CONSTANTS``): SQL and Python share one definition.
Hot statements run as server-side prepared statements (``run_prepared``): planned once per connection,
not per call.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection, TextClause, text

from spatial.codes import SPECIAL_KINDS_SQL

_INCLUDE = re.compile(r"\{\{(\w+)\}\}")
CONSTANTS = {"SPECIAL_KINDS": SPECIAL_KINDS_SQL}
_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def source(name: str) -> str:
    """Return the text of ``spatial/store/sql/<name>.sql`` with its ``{{fragments}}`` included."""
    body = resources.files("spatial.store.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda m: CONSTANTS.get(m.group(1)) or source(m.group(1)), body)


@cache
def statement(name: str) -> TextClause:
    """Return the statement ``name`` as a bound-parameter text clause."""
    return text(source(name))


@cache
def positional(name: str) -> tuple[str, tuple[str, ...]]:
    """Return the statement with ``:name`` binds turned into ``$1…$n``, and the names in that order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    return _BIND.sub(number, _COMMENT.sub("", source(name))), tuple(order)


UNPREPARED = "gridlink_unprepared"  # connection info key: behind PgBouncer (spatial/store/db.py: make_engine)


def run_prepared(conn: Connection, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Execute statement ``name`` as a prepared statement on this connection; return rows as dicts. Behind
    PgBouncer in transaction mode a statement prepared on one server connection is unknown on the next: there
    it runs unprepared."""
    if conn.connection.info.get(UNPREPARED):
        return [dict(row) for row in conn.execute(statement(name), params).mappings()]
    sql, order = positional(name)
    prepared = conn.connection.info.setdefault("gridlink_prepared", set())
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:
        raise RuntimeError("the connection is closed")
    cursor = dbapi.cursor()
    if name not in prepared:
        if not prepared:
            # Plan once per connection: custom plans would re-plan these large statements on every call.
            cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE gridlink_{name} AS {sql}")
        prepared.add(name)
    placeholders = ", ".join(["%s"] * len(order))
    cursor.execute(f"EXECUTE gridlink_{name}({placeholders})", [params[key] for key in order])
    columns = [column[0] for column in cursor.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
