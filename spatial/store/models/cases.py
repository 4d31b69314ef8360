"""Incident cases (案件) with their assignment, and the append-only case-event table that drives them.

A case's ``state`` is derived from its events (the last state-changing event wins); the column is kept
in step by the workflow, inside the same transaction as the event it follows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from spatial.geo.srid import WGS84
from spatial.store.models.base import Base, created_at_column, in_list

OPEN_ORIGINAL = "state NOT IN ('closed', 'voided') AND duplicate_of IS NULL"
SOURCES = ("inspector", "hotline", "public", "video", "dispatcher")
STATES = ("reported", "registered", "dispatched", "handled", "closed", "voided", "suspended")
OPEN = "state IN ('reported', 'registered', 'dispatched', 'handled', 'suspended')"
EVENT_KINDS = (
    "report", "register", "dispatch", "handle", "check", "close", "evaluate",
    "void", "return", "extend", "suspend", "resume", "rework", "assist", "remind", "supervise", "link",
    "verify", "accept", "request", "approve", "refuse", "reopen",  # migration 0014 (issue 17 workflow)
    "assist_accept", "assist_handle",  # migration 0021 (issue 17 joint handling)
    "assist_remind", "assist_supervise",  # migration 0022 (an assisting unit's own reminders and orders)
)
ASSISTED = "assist_keys <> '{}'"
UNIT_ROLES = ("assist",)
UNIT_STATES = ("dispatched", "accepted", "handled", "withdrawn")
UNIT_OPEN = "state IN ('dispatched', 'accepted')"


class Case(Base):
    """A reported incident, assigned to its grid, owner, component and deadline when it is created."""

    __tablename__ = "case"
    __table_args__ = (
        CheckConstraint(in_list("source", SOURCES), name="source"),
        CheckConstraint(in_list("state", STATES), name="state"),
        CheckConstraint("ST_IsValid(location) AND NOT ST_IsEmpty(location)", name="location_valid"),
        Index("ix_case_location", "location", postgresql_using="gist"),
        Index("ix_case_category_code_reported_at", "category_code", "reported_at"),
        # Duplicate linking looks only at open originals: small partial indexes keep that probe cheap. Every
        # index here is paid for by each bulk-loaded case (migration 0007 says what each one costs).
        # (location, reported_at): the intake's nearest-original probe within 24 hours reads one index, nearest
        # first and bounded in time (migration 0032); reads of open cases by location alone use its first column.
        Index("ix_case_open_location", "location", "reported_at", postgresql_using="gist",
              postgresql_where=text(OPEN_ORIGINAL)),
        Index("ix_case_open_component_code", "component_code", "reported_at",  # time: migration 0037
              postgresql_where=text(OPEN_ORIGINAL)),
        Index("ix_case_duplicate_of", "duplicate_of", postgresql_where=text("duplicate_of IS NOT NULL")),
        Index("ix_case_component_code", "component_code", postgresql_where=text("component_code IS NOT NULL")),
        Index("ix_case_pending_action", "pending_action", postgresql_where=text("pending_action IS NOT NULL")),
        # The inbox's order (GET /api/v1/inbox, migration 0015): open cases by when their step runs out.
        Index("ix_case_open_due", text("coalesce(step_deadline, deadline)"), "id", postgresql_where=text(OPEN)),
        Index("ix_case_kpi_through", "kpi_through", postgresql_where=text("kpi_through IS NOT NULL")),
        # Joint handling (migration 0021): the cases a department assists on (its handlers' scope).
        Index("ix_case_assist_keys", "assist_keys", postgresql_using="gin", postgresql_where=text(ASSISTED)),
        # The evaluation's rollup (migration 0022): the cases not yet settled at a period's end.
        Index("ix_case_kpi_settles", text("greatest(kpi_through, deadline)")),
        # Monthly partitions (migration 0031, spatial/store/partitions.py): the primary key holds ``reported_at``;
        # the keys that must be unique over every month live in ``case_key`` (below).
        {"postgresql_partition_by": "RANGE (reported_at)"},
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # One case per id (case_key's primary key holds it): session.get(Case, id) as before the partitions.
        return {"primary_key": [cls.__table__.c.id]}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Unique in case_key (uq_case_case_no); the index here serves reads of "case" by number.
    case_no: Mapped[str] = mapped_column(String(20), index=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("event_category.code"))
    state: Mapped[str] = mapped_column(String(12), index=True)
    source: Mapped[str] = mapped_column(String(12))
    description: Mapped[str | None] = mapped_column(Text)
    location = mapped_column(Geometry("POINT", srid=WGS84, spatial_index=False), nullable=False)
    grid_code: Mapped[str] = mapped_column(ForeignKey("grid.code"), index=True)
    # Prefixes of grid_code: area filters use a range on ix_case_grid_code, so these carry no index.
    community_code: Mapped[str] = mapped_column(ForeignKey("grid.code"))
    town_code: Mapped[str] = mapped_column(ForeignKey("grid.code"))
    district_code: Mapped[str] = mapped_column(ForeignKey("grid.code"))
    special_grid_codes: Mapped[list[str]] = mapped_column(ARRAY(String(15)), default=list)
    grid_version_id: Mapped[int] = mapped_column(ForeignKey("grid_version.id"))
    component_code: Mapped[str | None] = mapped_column(ForeignKey("component.code"))
    component_distance_m: Mapped[float | None] = mapped_column(Float)
    # A department key, or GRID_CHIEF for grid-first cases; owner_area_code says whose (grid or town).
    owner_key: Mapped[str] = mapped_column(String(32), index=True)
    owner_area_code: Mapped[str | None] = mapped_column(ForeignKey("grid.code"))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("case_key.id", name="fk_case_duplicate_of_case"))
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    # A digest of the caller's namespace and its Idempotency-Key (spatial/cases/intake.py: stored_key).
    # Unique in case_key (uq_case_idempotency_key): read there (spatial/cases/intake.py).
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, primary_key=True)
    created_at: Mapped[datetime] = created_at_column()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The workflow (spatial/cases/workflow.py, migration 0014): when the current step runs out, and the action
    # waiting for a second person's approval; both kept in step with the event trail, like ``state``.
    step_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_action: Mapped[str | None] = mapped_column(String(12))
    # The evaluation's summary of the trail (spatial/cases/kpi.py, migration 0015): the latest time of each
    # event it reads and the rework count, up to ``kpi_through``; kept by the trigger case_event_kpi.
    kpi_registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kpi_state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kpi_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kpi_handled_state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kpi_voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kpi_suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kpi_handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kpi_reworks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    kpi_through: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Joint handling (migration 0021): the keys of the case's assisting units (``case_unit``), kept in step.
    assist_keys: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list, server_default="{}")


class CaseKey(Base):
    """The keys of a case that must be unique over every month of the partitioned ``case`` (migration 0031):
    its id (what the trails, units, photos and duplicates point at), number and idempotency key. Written by the
    trigger ``case_key_sync`` in the statement that writes the case; a key outlives its case only when the case's
    month was archived (``gridlink db archive``: its number and idempotency key stay taken)."""

    __tablename__ = "case_key"
    __table_args__ = (
        # The names of before (the unique keys were on "case"): refusals are mapped by constraint name.
        UniqueConstraint("case_no", name="uq_case_case_no"),
        UniqueConstraint("idempotency_key", name="uq_case_idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    case_no: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Every event of the case lies between these (migration 0034, kept by the trigger case_event_trail; NULL:
    # not known). Reads of a trail bind them so that they plan only those months (spatial/cases/rows.py).
    trail_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trail_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseOpenMonth(Base):
    """A month (Beijing time, as the partitions of ``case``) that may hold an open case (migration 0036): every
    open case's month is here — added by the triggers ``case_open_month_insert``/``_update`` when a case is
    written open, dropped by ``gridlink db maintain`` once the month holds none. Reads of open cases bound
    ``reported_at`` by these months (spatial/store/partitions.py ``open_span``) so that the others are pruned."""

    __tablename__ = "case_open_month"
    __table_args__ = (CheckConstraint("next > month", name="order"),)

    month: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    next: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the next month's first instant


ORDER_KINDS = "kind IN ('remind', 'supervise')"
ORDER_KEYS = f"NOT ({ORDER_KINDS}) OR ((data ->> 'step') IS NOT NULL AND (data ->> 'deadline') IS NOT NULL)"
ASSIST_ORDER_KINDS = "kind IN ('assist_remind', 'assist_supervise')"
ASSIST_ORDER_KEYS = (f"NOT ({ASSIST_ORDER_KINDS}) OR ((data ->> 'unit') IS NOT NULL"
                     " AND (data ->> 'deadline') IS NOT NULL)")


class CaseEvent(Base):
    """One immutable, timestamped transition of a case, with its actor and note (a trigger refuses edits)."""

    __tablename__ = "case_event"
    __table_args__ = (
        CheckConstraint(in_list("kind", EVENT_KINDS), name="kind"),
        CheckConstraint("state_after IS NULL OR " + in_list("state_after", STATES), name="state_after"),
        Index("ix_case_event_case_id_at", "case_id", "at"),
        # The scheduler's reminders and supervision orders (issue 17 item 3, spatial/cases/scheduler.py): at most
        # one per (case, kind, step, deadline), whatever number of workers run, so none can ever be doubled; and
        # an assisting unit's (migration 0022): one per (case, kind, unit, the unit's deadline). Kept by the
        # trigger case_event_order_once since migration 0028: a partitioned table's unique index must hold the
        # partition key, so the unique indexes uq_case_event_order / uq_case_event_assist_order could not stay.
        CheckConstraint(ORDER_KEYS, name="order_keys"),
        CheckConstraint(ASSIST_ORDER_KEYS, name="assist_order_keys"),
        # The live feed's commit order (migration 0018_case_event_xid, spatial/cases/feed.py).
        Index("ix_case_event_xid", "xid", postgresql_using="brin",
              postgresql_with={"autosummarize": "on", "pages_per_range": 16}),
        # Monthly partitions (migration 0028, spatial/store/partitions.py): the primary key holds ``at``.
        {"postgresql_partition_by": "RANGE (at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_key.id", name="fk_case_event_case_id_case"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # 16 since migration 0021 (assist_accept)
    state_after: Mapped[str | None] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(16))  # NULL before the workflow (migration 0014)
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSONB)
    # The writing transaction's id (pg_current_xact_id()): the feed's commit-safe order; NULL before 0015.
    xid: Mapped[int | None] = mapped_column(BigInteger, server_default=text("(pg_current_xact_id())::text::bigint"))


class CaseUnit(Base):
    """An assisting unit of a joint case (协办, spatial/cases/joint.py): its own state, deadline and times.

    The lead unit is the case's owner and is not a row here. ``state`` is kept in step with the case's event
    trail (``dispatch`` data ``assist``, ``assist_accept``, ``assist_handle``), like ``case.state``.
    """

    __tablename__ = "case_unit"
    __table_args__ = (
        CheckConstraint(in_list("role", UNIT_ROLES), name="role"),
        CheckConstraint(in_list("state", UNIT_STATES), name="state"),
        Index("ix_case_unit_open", "unit_key", "deadline", postgresql_where=text(UNIT_OPEN)),
        Index("ix_case_unit_kpi_settles", text("greatest(deadline, handled_at, dispatched_at)")),
        # Partitioned with its case (migration 0035): by the case's report time, a month per partition.
        {"postgresql_partition_by": "RANGE (reported_at)"},
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # One row per case and unit (every row of a case carries its one reported_at).
        return {"primary_key": [cls.__table__.c.case_id, cls.__table__.c.unit_key]}

    case_id: Mapped[int] = mapped_column(ForeignKey("case_key.id", name="fk_case_unit_case_id_case"), primary_key=True)
    unit_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    unit_area: Mapped[str | None] = mapped_column(String(15))
    role: Mapped[str] = mapped_column(String(8), server_default="assist")
    state: Mapped[str] = mapped_column(String(12))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The case's reported_at (its partition key; written from case_key, moved with the case by case_key_sync).
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)



class KpiRollup(Base):
    """The evaluation's rollup (spatial/cases/kpi.py, migration 0022): per bucket of local report dates (``span``
    'd' a day, 'm' a month starting on ``day``), base grid, unit and part (``lead``: the cases it leads; else
    its assisting rows), the settled judgment of its cases. Kept by triggers on ``case`` and ``case_unit``."""

    __tablename__ = "kpi_rollup"
    # an area's rows of a period by its grid-code range (migration 0030), besides the key's walk by day
    __table_args__ = (CheckConstraint("span IN ('d', 'm')", name="span"),
                      Index("ix_kpi_rollup_span_grid_day", "span", "grid_code", "day"))

    span: Mapped[str] = mapped_column(String(1), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    unit_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    lead: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    reported: Mapped[int] = mapped_column(Integer, server_default="0")
    registered: Mapped[int] = mapped_column(Integer, server_default="0")
    voided: Mapped[int] = mapped_column(Integer, server_default="0")
    suspended: Mapped[int] = mapped_column(Integer, server_default="0")
    due: Mapped[int] = mapped_column(Integer, server_default="0")
    closed: Mapped[int] = mapped_column(Integer, server_default="0")
    closed_on_time: Mapped[int] = mapped_column(Integer, server_default="0")
    handled: Mapped[int] = mapped_column(Integer, server_default="0")
    handled_on_time: Mapped[int] = mapped_column(Integer, server_default="0")
    reworked: Mapped[int] = mapped_column(Integer, server_default="0")
    assisting: Mapped[int] = mapped_column(Integer, server_default="0")
    assist_due: Mapped[int] = mapped_column(Integer, server_default="0")
    assist_handled: Mapped[int] = mapped_column(Integer, server_default="0")
    assist_handled_on_time: Mapped[int] = mapped_column(Integer, server_default="0")

PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


class CasePhoto(Base):
    """A photo stored with a case (issue 20, spatial/cases/photos.py): the cleaned copy (re-encoded without
    EXIF or other metadata) as bytes, what it is, who sent it, and the GPS position the original carried."""

    __tablename__ = "case_photo"
    __table_args__ = (
        # A photo once per case (all rows of a case carry its one reported_at, the partition key).
        UniqueConstraint("case_id", "sha256", "reported_at", name="uq_case_photo_case_id_sha256"),
        CheckConstraint(in_list("media_type", PHOTO_TYPES), name="media_type"),
        CheckConstraint("size = octet_length(data)", name="size"),
        CheckConstraint("(gps_lon IS NULL) = (gps_lat IS NULL) AND (gps_lon IS NULL OR"
                        " (gps_lon BETWEEN -180 AND 180 AND gps_lat BETWEEN -90 AND 90))", name="gps"),
        # Partitioned with its case (migration 0035): by the case's report time, a month per partition.
        {"postgresql_partition_by": "RANGE (reported_at)"},
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"primary_key": [cls.__table__.c.id]}  # one photo per id (its sequence)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_key.id", name="fk_case_photo_case_id_case"))
    created_at: Mapped[datetime] = created_at_column()
    actor: Mapped[str] = mapped_column(String(80))
    role: Mapped[str | None] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # of the original bytes: a retried upload is stored once
    gps_lon: Mapped[float | None] = mapped_column(Float)
    gps_lat: Mapped[float | None] = mapped_column(Float)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    thumb: Mapped[bytes] = mapped_column(LargeBinary)  # at most 480 px on its long side
    # The case's reported_at (its partition key; written from case_key, moved with the case by case_key_sync).
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
