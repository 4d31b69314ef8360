"""Hot and set-based SQL statements, kept as .sql files and loaded once."""

from __future__ import annotations

from functools import cache
from importlib import resources

from sqlalchemy import TextClause, text


@cache
def statement(name: str) -> TextClause:
    """Return the statement in ``spatial/sql/<name>.sql`` as a bound-parameter text clause."""
    return text(resources.files("spatial.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8"))
