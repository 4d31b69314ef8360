"""Urban components (部件) and their append-only change history."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.geo.srid import WGS84
from spatial.store.models.base import Base, created_at_column, in_list

STATUSES = ("intact", "damaged", "missing", "abandoned", "removed")
HISTORY_ACTIONS = ("create", "update", "status", "delete")
# The registry's sort keys (spatial/components/registry.py): NULL sorts as the lowest value. SQL constants, so
# that the indexes on them serve the search (a bound value would not match an index expression).
CHANGED_KEY = "coalesce(changed_at, '1970-01-01 00:00:00+00'::timestamptz)"
NAME_KEY = "coalesce(name, '')"


class Component(Base):
    """A surveyed, coded component: 16 digits = 6-digit district + 4-digit class + 6-digit serial."""

    __tablename__ = "component"
    __table_args__ = (
        CheckConstraint(
            "code ~ '^[0-9]{16}$' AND substr(code, 7, 4) = class_code AND left(code, 6) = district_code",
            name="code",
        ),
        CheckConstraint(in_list("status", STATUSES), name="status"),
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
        CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'LINESTRING', 'MULTILINESTRING', 'POLYGON', 'MULTIPOLYGON')",
            name="geom_type",
        ),
        Index("ix_component_geom", "geom", postgresql_using="gist"),
        # The registry table's sorts, in the order its search reads them (migration 0027, registry._keys).
        Index("ix_component_owner_code", "owner_key", "code"),
        Index("ix_component_owner_changed", "owner_key", text(CHANGED_KEY), "code"),
        Index("ix_component_owner_name", "owner_key", text(NAME_KEY), "code"),
        Index("ix_component_changed", text(CHANGED_KEY), "code"),
        Index("ix_component_name", text(NAME_KEY), "code"),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    class_code: Mapped[str] = mapped_column(ForeignKey("component_class.code"), index=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("grid.code"))
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("grid.code"), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    manager_key: Mapped[str] = mapped_column(ForeignKey("department.key"))
    owner_key: Mapped[str] = mapped_column(ForeignKey("department.key"))
    maintainer_key: Mapped[str] = mapped_column(ForeignKey("department.key"))
    status: Mapped[str] = mapped_column(String(12), default="intact")
    surveyed_on: Mapped[date | None] = mapped_column(Date)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    # Optimistic concurrency for edits (ETag / If-Match): bumped on every change.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    geom = mapped_column(Geometry("GEOMETRY", srid=WGS84, spatial_index=False), nullable=False)


class ComponentHistory(Base):
    """One change of one component; rows are never updated or deleted (a trigger refuses)."""

    __tablename__ = "component_history"
    __table_args__ = (CheckConstraint(in_list("action", HISTORY_ACTIONS), name="action"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # No foreign key: the history of a deleted component stays (migration 0009).
    component_code: Mapped[str] = mapped_column(String(16), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(8))
    status_from: Mapped[str | None] = mapped_column(String(12))
    status_to: Mapped[str | None] = mapped_column(String(12))
    changes: Mapped[dict | None] = mapped_column(JSONB)


UPLOAD_STATES = ("running", "done", "failed")


class ComponentUploadJob(Base):
    """A survey upload imported in the background (spatial/components/jobs.py), readable from any server
    process; the upload and its rejects file stay on ``host``'s disk in ``folder``."""

    __tablename__ = "component_upload_jobs"
    __table_args__ = (CheckConstraint(in_list("state", UPLOAD_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    login: Mapped[str] = mapped_column(String(64))
    owner_key: Mapped[str] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(Text)
    options: Mapped[dict] = mapped_column(JSONB)
    host: Mapped[str] = mapped_column(Text)
    folder: Mapped[str] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8))
    rows_read: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rows_total: Mapped[int | None] = mapped_column(BigInteger)
    report: Mapped[dict | None] = mapped_column(JSONB)
    problem: Mapped[dict | None] = mapped_column(JSONB)
    rejects: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = created_at_column()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
