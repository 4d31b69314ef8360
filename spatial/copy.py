"""Streaming rows into PostgreSQL with COPY (text format), in bounded chunks."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

CHUNK_BYTES = 16 * 1024 * 1024
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """Escape ``value`` for COPY's text format (most values — codes, numbers — need nothing)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def copy_lines(cursor, table: str, columns: Sequence[str], lines: Iterable[str]) -> int:
    """COPY pre-formatted, tab-separated ``lines`` into ``table``; return the number of rows sent."""
    statement = f'COPY "{table}" ({", ".join(columns)}) FROM STDIN'
    buffer = io.StringIO()
    size = rows = 0
    for line in lines:
        buffer.write(line)
        size += len(line)
        rows += 1
        if size >= CHUNK_BYTES:
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
            buffer = io.StringIO()
            size = 0
    if size:
        buffer.seek(0)
        cursor.copy_expert(statement, buffer)
    return rows


def row_line(values: Iterable[object]) -> str:
    """Format one row for COPY: None as \\N, strings escaped."""
    out = []
    for value in values:
        if value is None:
            out.append(r"\N")
        elif isinstance(value, str):
            out.append(copy_text(value))
        else:
            out.append(str(value))
    return "\t".join(out) + "\n"


def raw_cursor(conn):
    """Return a DB-API cursor on the SQLAlchemy connection ``conn`` (same transaction), for COPY."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:
        raise RuntimeError("the connection is closed")
    return dbapi.cursor()
