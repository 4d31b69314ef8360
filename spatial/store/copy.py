"""Streaming rows into PostgreSQL with COPY (text format)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

CHUNK_CHARS = 256 * 1024  # characters handed to the driver per read
_SPECIAL = re.compile(r"[\\\t\n\r]")  # what COPY's text format escapes
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """Escape ``value`` for COPY's text format (most values — codes, numbers — need nothing)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


class _LineStream:
    """A read-only text file over an iterator of lines: COPY pulls the next chunk while the server is
    still working on the previous one, so producing lines and loading them overlap."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.rows = 0

    def read(self, size: int = -1) -> str:
        parts, length = [], 0
        for line in self._lines:
            parts.append(line)
            length += len(line)
            self.rows += 1
            if 0 <= size <= length:
                break
        return "".join(parts)


def copy_lines(cursor, table: str, columns: Sequence[str], lines: Iterable[str]) -> int:
    """COPY tab-separated ``lines`` (each ending in a newline; a generator is consumed as COPY goes)
    into ``table`` in one statement; return the number of rows sent."""
    stream = _LineStream(lines)
    cursor.copy_expert(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN', stream, size=CHUNK_CHARS)
    return stream.rows


def copy_value(value: object) -> str:
    """One COPY field: None as \\N, strings escaped, anything else as ``str``."""
    if value is None:
        return r"\N"
    if isinstance(value, str):
        return copy_text(value)
    return str(value)


def row_line(values: Iterable[object]) -> str:
    """Format one row for COPY: None as \\N, strings escaped."""
    return "\t".join(copy_value(value) for value in values) + "\n"


def column_text(values: Iterable[object]) -> list[str]:
    """One column's COPY fields (as ``copy_value``, in one comprehension: no call per value)."""
    return [r"\N" if v is None else ((v.translate(_ESCAPES) if _SPECIAL.search(v) else v) if isinstance(v, str)
                                     else str(v)) for v in values]


def column_lines(columns: Sequence[Sequence[str]]) -> list[str]:
    """Lines for COPY from columns already formatted by ``column_text`` (all of one length)."""
    return ["\t".join(fields) + "\n" for fields in zip(*columns, strict=True)]


def raw_cursor(conn):
    """Return a DB-API cursor on the SQLAlchemy connection ``conn`` (same transaction), for COPY."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:
        raise RuntimeError("the connection is closed")
    return dbapi.cursor()
