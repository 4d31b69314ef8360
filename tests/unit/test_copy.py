"""COPY text-format escaping (pure)."""

from __future__ import annotations

import pytest

from spatial.store.copy import copy_text, row_line


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain 文本", "plain 文本"), ("a\tb", "a\\tb"), ("line\nbreak", "line\\nbreak"), ("back\\slash", "back\\\\slash"),
     ("cr\r", "cr\\r")],
)
def test_copy_text(value: str, expected: str) -> None:
    assert copy_text(value) == expected


def test_row_line() -> None:
    assert row_line(("x\ty", None, 3, 1.5)) == "x\\ty\t\\N\t3\t1.5\n"


def test_columns_format_as_rows_do() -> None:
    from datetime import date

    from spatial.store.copy import column_lines, column_text

    rows = [("x\ty", None, 3, 1.5), ("back\\slash 文本", "cr\r\nlf", 0, date(2026, 12, 3))]
    columns = [column_text(values) for values in zip(*rows, strict=True)]
    assert column_lines(columns) == [row_line(row) for row in rows]
