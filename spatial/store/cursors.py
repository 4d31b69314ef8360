"""Keyset cursors: a page ends at its last row's sort keys; the next page starts after them.

The cursor is opaque to clients (URL-safe base64 of the keys as JSON), so a page after 100,000 items costs
what the first one does, and a cursor that was not issued for the query is refused: each value must be of
its key's type (``column_value``, which also types the values of property filters), or a forged cursor
would reach PostgreSQL as a value it cannot compare.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_

from spatial.errors import InvalidParameterError


def after(keys: list[tuple[Any, bool]], values: list[Any]) -> Any:
    """Rows after ``values`` in the order of ``keys`` (expanded: a < b or (a = b and …))."""
    alternatives = []
    for i, (column, ascending) in enumerate(keys):
        equal = [keys[j][0] == values[j] for j in range(i)]
        step = column > values[i] if ascending else column < values[i]
        alternatives.append(and_(*equal, step))
    return or_(*alternatives)


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor for the keys of a page's last row."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: list[tuple[Any, bool]]) -> list[Any]:
    """The key values of ``cursor`` for ``keys`` (times back to datetimes); InvalidParameterError for a cursor
    that this server did not issue for a query with these keys."""
    refusal = InvalidParameterError("cursor is not one this server issued for this query", parameter="cursor")
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError) as exc:
        raise refusal from exc
    if not isinstance(values, list) or len(values) != len(keys):
        raise refusal
    try:
        return [column_value(key, value, "cursor", text=False) for value, (key, _) in zip(values, keys, strict=True)]
    except InvalidParameterError as exc:
        raise refusal from exc


BIGINT = 2**63  # PostgreSQL's widest integer: a key or filter value beyond it matches nothing anyway


def column_value(column: Any, value: Any, parameter: str, *, text: bool = True) -> Any:
    """``value`` (query text or a JSON value) as the Python type of ``column``: an ISO 8601 time or date, a
    finite number within PostgreSQL's range (given as text too, unless ``text`` is False), or text;
    InvalidParameterError naming ``parameter`` otherwise. (Passed on unchecked, such a value was a 500:
    PostgreSQL refused it while running the query.)"""
    python = python_type_of(column)
    try:
        if python in (datetime, date):
            if not isinstance(value, str):
                raise TypeError(value)
            return python.fromisoformat(value.replace("Z", "+00:00") if python is datetime else value)
        if python in (int, float):
            accepted = (str, int, float) if text else (int, float)
            if isinstance(value, bool) or not isinstance(value, accepted):
                raise TypeError(value)
            number = python(value)
            if not math.isfinite(number) or not -BIGINT <= number < BIGINT:
                raise ValueError(value)
            return number
        if python is str and not isinstance(value, str):
            raise TypeError(value)
    except (ValueError, TypeError, OverflowError) as exc:
        kind = {datetime: "an ISO 8601 date-time", date: "an ISO 8601 date", int: "a whole number",
                float: "a number", str: "text"}.get(python or str, "a value of its type")
        raise InvalidParameterError(f"{parameter} must be {kind}", parameter=parameter) from exc
    return value


def python_type_of(column: Any) -> type | None:
    """The Python type of ``column``'s values, or None for types without one (geometry, JSON)."""
    try:
        return column.type.python_type
    except (AttributeError, NotImplementedError):
        return None
