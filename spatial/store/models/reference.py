"""Reference tables loaded from CSV: departments, component classes, event categories, holidays, metadata."""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.store.models.base import Base, in_list

DEPARTMENT_KINDS = ("bureau", "utility", "enforcement", "locality", "owner", "maintainer")
GEOMETRY_KINDS = ("point", "line", "polygon")
GRADES = ("A", "B", "C")
TIME_UNITS = ("working_hours", "working_days", "clock_hours")
FLOWS = ("grid_first", "department", "component", "enforcement")
# Handler / manager / enforcer columns name a department key or one of these roles.
ROLE_KEYS = ("COMPONENT_OWNER", "TOWN")


class Department(Base):
    """A responsible unit: bureau, utility, enforcement bureau, town sub-centre, asset owner or maintainer."""

    __tablename__ = "department"
    __table_args__ = (CheckConstraint(in_list("kind", DEPARTMENT_KINDS), name="kind"),)

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    handles: Mapped[str | None] = mapped_column(Text)


class ComponentClass(Base):
    """A component class (GB/T 30428.2-style 4-digit code: 2-digit major + 2-digit minor)."""

    __tablename__ = "component_class"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{4}$' AND left(code, 2) = major_code", name="code"),
        CheckConstraint(in_list("geometry_kind", GEOMETRY_KINDS), name="geometry_kind"),
    )

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    major_code: Mapped[str] = mapped_column(String(2))
    major_name: Mapped[str] = mapped_column(Text)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    geometry_kind: Mapped[str] = mapped_column(String(8))
    default_owner: Mapped[str] = mapped_column(ForeignKey("department.key"))
    demo_weight: Mapped[float] = mapped_column(Numeric(8, 5), default=0)


class EventCategory(Base):
    """A node of the event category hierarchy; leaves carry grade, time limit, flow and responsible units."""

    __tablename__ = "event_category"
    __table_args__ = (
        CheckConstraint("grade IS NULL OR " + in_list("grade", GRADES), name="grade"),
        CheckConstraint("time_unit IS NULL OR " + in_list("time_unit", TIME_UNITS), name="time_unit"),
        CheckConstraint("flow IS NULL OR " + in_list("flow", FLOWS), name="flow"),
        CheckConstraint(
            "time_limit IS NULL OR (time_limit > 0 AND grade IS NOT NULL AND time_unit IS NOT NULL "
            "AND flow IS NOT NULL AND handler IS NOT NULL)",
            name="leaf_complete",
        ),
        CheckConstraint(
            "(parent_code IS NULL AND level = 1) OR (parent_code IS NOT NULL AND level > 1 "
            "AND left(code, length(parent_code)) = parent_code)",
            name="extends_parent",
        ),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("event_category.code"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    grade: Mapped[str | None] = mapped_column(String(1))
    handler: Mapped[str | None] = mapped_column(String(32))
    manager: Mapped[str | None] = mapped_column(String(32))
    enforcer: Mapped[str | None] = mapped_column(String(32))
    time_limit: Mapped[int | None] = mapped_column(SmallInteger)
    time_unit: Mapped[str | None] = mapped_column(String(16))
    flow: Mapped[str | None] = mapped_column(String(16))
    closure: Mapped[str | None] = mapped_column(Text)
    component_classes: Mapped[list[str] | None] = mapped_column(ARRAY(String(4)))


class Holiday(Base):
    """A day that departs from the Monday–Friday working week: a holiday, or a swapped working day (调休)."""

    __tablename__ = "holiday"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(Text)


class Meta(Base):
    """Small key/value facts about the dataset (e.g. which demo built it, with which seed)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB)


class RowCount(Base):
    """The exact number of rows of a large table, kept by triggers (migration 0008)."""

    __tablename__ = "row_count"

    table_name: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class TileGeneration(Base):
    """A counter per tile layer group, bumped by triggers whenever its tables change (migration 0010)."""

    __tablename__ = "tile_generation"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class TileCaseShard(Base):
    """Case-change counter of one database backend; their sum is the case tiles' generation (migration 0011)."""

    __tablename__ = "tile_case_shard"

    pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger)
