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
