"""Keyset cursors (spatial/features/cursors.py): opaque, round-trip exactly, refuse what was not issued."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import postgresql

from spatial.errors import InvalidParameterError
from spatial.features.cursors import after, decode_cursor, encode_cursor
from spatial.store.models import Case, Component

K = Case.__table__.c
C = Component.__table__.c


@pytest.mark.parametrize(("keys", "values"), [
    ([(K.id, True)], [42]),
    ([(K.reported_at, False), (K.id, False)], [datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC), 7]),
    ([(C.class_code, True), (C.code, True)], ["0118", "3205060118000001"]),
    ([(K.case_no, True), (K.id, True)], ["结案-1", 1]),
])
def test_cursors_round_trip(keys, values) -> None:
    cursor = encode_cursor(values)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe, unpadded
    assert decode_cursor(cursor, keys) == values


TWO_KEYS = [(K.reported_at, False), (K.id, False)]


@pytest.mark.parametrize(("cursor", "keys"), [
    ("", TWO_KEYS),                                   # empty
    ("not base64 at all!", TWO_KEYS),                 # not base64
    ("eyJhIjogMX0", TWO_KEYS),                        # JSON, but an object
    (encode_cursor([1, 2]), [(K.id, True)]),          # another query's cursor (more keys)
    (encode_cursor([5]), TWO_KEYS),                   # another query's cursor (fewer keys)
    (encode_cursor(["yesterday", 3]), TWO_KEYS),      # a time that is not one
    # Forged values of the wrong shape (issue 23, finding 9): each would reach PostgreSQL as a value it
    # cannot compare with the key's column.
    (encode_cursor([[], 1]), [(C.class_code, True), (C.code, True)]),          # a list for text
    (encode_cursor([{"a": 1}, 1]), [(K.case_no, True), (K.id, True)]),         # an object for text
    (encode_cursor(["2026-03-01T08:30:00+00:00", "7"]), TWO_KEYS),              # text for a number
    (encode_cursor(["2026-03-01T08:30:00+00:00", None]), TWO_KEYS),             # null for a number
    (encode_cursor(["2026-03-01T08:30:00+00:00", True]), TWO_KEYS),             # a boolean for a number
    (encode_cursor(["2026-03-01T08:30:00+00:00", 2**70]), TWO_KEYS),           # beyond bigint
    (encode_cursor(["2026-03-01T08:30:00+00:00", 1.5e308 * 10]), TWO_KEYS),    # Infinity
    (encode_cursor([20260301, 7]), TWO_KEYS),                                  # a number for a time
    (encode_cursor([7, 7]), [(K.case_no, True), (K.id, True)]),                # a number for text
    (base64.urlsafe_b64encode(b"[" * 10_000 + b"]" * 10_000).decode(), TWO_KEYS),  # deeply nested JSON
])
def test_foreign_cursors_are_refused(cursor: str, keys) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        decode_cursor(cursor, keys)
    assert refused.value.extra == {"parameter": "cursor"}


def _sql(condition) -> str:
    return str(condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def test_after_expands_the_sort_order() -> None:
    assert _sql(after([(K.id, True)], [5])) == '"case".id > 5'
    assert _sql(after([(K.state, False), (K.id, False)], ["reported", 9])) == (
        "\"case\".state < 'reported' OR \"case\".state = 'reported' AND \"case\".id < 9")
