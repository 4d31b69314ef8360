"""The next free serial of a district and class, safe when imports and editors run at once.

Every writer that creates components of a series (district + class: the first ten digits of a code) takes a
transaction-scoped advisory lock on that series first, in code order (so two imports never deadlock), and
only then reads the highest serial used — by a component or by the history of a deleted one, so a code is
never given twice. The lock is held until the writer commits: a second import or an editor creating a
component in that series waits, then reads the serials the first one stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

from spatial.errors import ConflictError

LOCK_SPACE = 18  # the first key of pg_advisory_xact_lock(int, int): the registry's series (issue 18)
MAX_SERIAL = 999_999


def lock_series(conn: Connection, series: Iterable[str]) -> None:
    """Lock each series (10 digits: district + class) for this transaction, in order."""
    for one in sorted(set(series)):
        conn.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:series))"),
                     {"space": LOCK_SPACE, "series": one})


def top_serial(conn: Connection, series: str) -> int:
    """The highest serial of ``series`` in use or in history (0 when none); call with the series locked."""
    low, high = series + "000000", series + "999999"
    found = conn.execute(text(
        "SELECT GREATEST((SELECT max(code) FROM component WHERE code BETWEEN :lo AND :hi),"
        " (SELECT max(component_code) FROM component_history WHERE component_code BETWEEN :lo AND :hi))"),
        {"lo": low, "hi": high}).scalar()
    return int(found[10:]) if found else 0


def first_free(conn: Connection, series: str, count: int) -> int:
    """The first of ``count`` free serials of ``series`` in a row after its highest (the series locked by the
    caller); ConflictError when the series has fewer left."""
    top = top_serial(conn, series)
    if top + count > MAX_SERIAL:
        raise ConflictError(f"series {series} has {MAX_SERIAL - top:,} free serials, {count:,} are needed")
    return top + 1


def allocate(conn: Connection, series: str, count: int) -> list[str]:
    """``count`` new codes of ``series`` after its highest serial (the series locked by the caller)."""
    first = first_free(conn, series, count)
    return [f"{series}{serial:06d}" for serial in range(first, first + count)]
