"""Declarative base with a naming convention, so that Alembic names every constraint the same way."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every gridlink table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime]:
    """Return a ``created_at timestamptz NOT NULL DEFAULT now()`` column."""
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def in_list(column: str, values: tuple[str, ...]) -> str:
    """Return SQL text for ``column IN ('a', 'b', …)`` over code-defined values (never user input)."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"
