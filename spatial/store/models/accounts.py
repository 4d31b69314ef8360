"""Accounts, roles and scopes, and revocable API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Double, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.store.models.base import Base, created_at_column, in_list

ROLES = ("admin", "dispatcher", "inspector", "grid_chief", "handler", "owner", "planner", "viewer", "partner")


class Account(Base):
    """A person or partner system. One role, one scope: an area code of any level or a department key."""

    __tablename__ = "account"
    __table_args__ = (CheckConstraint(in_list("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A bearer token (also an Open311 ``api_key``); only its SHA-256 digest is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One write: who (login or channel), with which role, did what to which target, when, from where.
    Append-only (migration 0013); written in the write's own transaction (spatial/access/audit.py). Partitioned
    by month of ``at`` (migration 0028, spatial/store/partitions.py): the primary key holds the partition key."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_actor_at", "actor", "at"),
                      {"postgresql_partition_by": "RANGE (at)"})

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, server_default=func.now())
    actor: Mapped[str] = mapped_column(String(80))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(80))
    client: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict | None] = mapped_column(JSONB)


class RateCounter(Base):
    """A shared rate limit's count (``GRIDLINK_API_LIMITS=database``, spatial/access/limits.py): a login's or an
    address's failed logins in a row (``login:…``, ``client:…``) or an address's public-submission tokens
    (``public:…``), and when it last changed. UNLOGGED (migration 0029): emptied by a crash, never replicated."""

    __tablename__ = "rate_counter"
    __table_args__ = (Index("ix_rate_counter_at", "at"), {"prefixes": ["UNLOGGED"]})

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
