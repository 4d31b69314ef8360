"""Keyset cursors: a page ends at its last row's sort keys; the next page starts after them.

The cursor is opaque to clients (URL-safe base64 of the keys as JSON), so a page after 100,000 items costs
what the first one does, and a cursor that was not issued for the query is refused.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
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
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError("wrong length")
        return [datetime.fromisoformat(v) if key.type.python_type is datetime else v
                for v, (key, _) in zip(values, keys, strict=True)]
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError("cursor is not one this server issued for this query",
                                    parameter="cursor") from exc
