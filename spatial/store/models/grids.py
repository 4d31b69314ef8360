"""Grids (单元网格): the four nested levels, special grids, their versions and their teams.

A grid's identity (code, level, name, parent) lives in ``grid``; its shape lives in ``grid_geometry``, one
row per version with ``valid_from`` / ``valid_to``, so that "which grid held this point on date D" is a
query, and a case keeps the grid version it was assigned under.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.codes import GRID_KINDS, SPECIAL_CODE_SQL, SPECIAL_KINDS, SPECIAL_KINDS_SQL
from spatial.geo.srid import WGS84
from spatial.store.models.base import Base, created_at_column, in_list

TEAM_ROLES = ("chief", "inspector", "police", "supervisor", "volunteer", "mediator")

_CODE_RULE = (
    "(level = 1 AND kind = 'district' AND parent_code IS NULL AND code ~ '^[0-9]{6}$')"
    " OR (level = 2 AND kind = 'town' AND code ~ '^[0-9]{9}$' AND parent_code = left(code, 6))"
    " OR (level = 3 AND kind = 'community' AND code ~ '^[0-9]{12}$' AND parent_code = left(code, 9))"
    " OR (level = 4 AND kind = 'base' AND code ~ '^[0-9]{15}$' AND parent_code = left(code, 12))"
    " OR (level IS NULL AND " + in_list("kind", SPECIAL_KINDS) + f" AND code ~ '{SPECIAL_CODE_SQL}'"
    " AND parent_code = left(code, 6))"
)


class GridVersion(Base):
    """One committed change of grid boundaries, effective from ``effective_at``."""

    __tablename__ = "grid_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    author: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class Grid(Base):
    """A grid's identity: district, town, community, base grid (levels 1–4) or special grid (no level).

    A child's code extends its parent's code by three digits (GB/T 2260 county code + 3 + 3 + 3); a special
    grid's code is its district code, a kind letter (E enterprise, P park, S scenic, C commercial) and a
    4-digit serial, and its parent is the district.
    """

    __tablename__ = "grid"
    __table_args__ = (
        CheckConstraint(_CODE_RULE, name="code_extends_parent"),
        CheckConstraint(in_list("kind", GRID_KINDS), name="kind"),
    )

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    level: Mapped[int | None] = mapped_column(SmallInteger, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("grid.code"), index=True)
    created_at: Mapped[datetime] = created_at_column()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GridGeometry(Base):
    """The shape of one grid in one version; the current shape has ``valid_to IS NULL``."""

    __tablename__ = "grid_geometry"
    __table_args__ = (
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_range"),
        CheckConstraint(in_list("kind", GRID_KINDS), name="kind"),
        Index("ix_grid_geometry_geom", "geom", postgresql_using="gist"),
        Index(
            "ix_grid_geometry_current_geom", "geom",
            postgresql_using="gist", postgresql_where=text("valid_to IS NULL"),
        ),
        Index(
            "uq_grid_geometry_current", "grid_code",
            unique=True, postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_grid_geometry_kind_current", "kind", postgresql_where=text("valid_to IS NULL")),
        # Assignment probes only current base grids, or only current special grids (migration 0006).
        Index("ix_grid_geometry_current_base_geom", "geom", postgresql_using="gist",
              postgresql_where=text("valid_to IS NULL AND kind = 'base'")),
        Index("ix_grid_geometry_current_special_geom", "geom", postgresql_using="gist",
              postgresql_where=text(f"valid_to IS NULL AND kind IN {SPECIAL_KINDS_SQL}")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_code: Mapped[str] = mapped_column(ForeignKey("grid.code"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("grid_version.id"), index=True)
    # Denormalised from grid.kind so that the spatial index can be filtered without a join.
    kind: Mapped[str] = mapped_column(String(16))
    geom = mapped_column(
        Geometry("MULTIPOLYGON", srid=WGS84, spatial_index=False), nullable=False
    )
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The grid's name during this version (migration 0022: a rename is a new row; a row inserted without a
    # name takes grid.name, by trigger), so that time travel answers the name valid then.
    name: Mapped[str] = mapped_column(Text)


class TeamMember(Base):
    """A member of a grid's "4+N" team: chief, inspector, police officer, supervisor, volunteers, mediators."""

    __tablename__ = "team_member"
    __table_args__ = (CheckConstraint(in_list("role", TEAM_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_code: Mapped[str] = mapped_column(ForeignKey("grid.code"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))


PLAN_STATES = ("draft", "scheduled", "committed", "discarded")
PLAN_SOURCES = ("plan", "import", "ogc", "rollback")
PLAN_OPS = ("create", "reshape", "retire", "recode")


class GridPlan(Base):
    """A planner's set of grid changes (issue 19), held apart from the live grids until it is committed.

    A draft belongs to its ``owner`` and stays inside the ``scope`` the owner had when it was opened. A
    commit stores the edits as one ``grid_version`` effective from ``effective_at`` (a future time makes the
    plan ``scheduled`` until the scheduler applies it then, migration 0019); a rollback is a new plan
    (``rollback_of``). Imports are plans too (``source = 'import'``, ``report``: the repairs and the topology
    report), and so are the OGC Part 4 edits of base grids (``source = 'ogc'``, committed at once).
    """

    __tablename__ = "grid_plan"
    __table_args__ = (
        CheckConstraint(in_list("state", PLAN_STATES), name="state"),
        CheckConstraint(in_list("source", PLAN_SOURCES), name="source"),
        CheckConstraint("(state = 'committed') = (version_id IS NOT NULL)", name="committed_version"),
        CheckConstraint("state <> 'scheduled' OR effective_at IS NOT NULL", name="scheduled_time"),
        Index("ix_grid_plan_scheduled", "effective_at", postgresql_where=text("state = 'scheduled'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(80), index=True)
    scope: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = created_at_column()
    effective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("grid_version.id"))
    rollback_of: Mapped[int | None] = mapped_column(ForeignKey("grid_plan.id"))
    report = mapped_column(JSONB)


class GridPlanEdit(Base):
    """What a plan does to one grid: its planned shape, name and code (one row per grid per plan).

    ``op``: ``create`` a new grid, ``reshape`` an existing one (new shape and/or name), ``retire`` it, or
    ``recode`` it (the grid is retired and ``new_code`` created with its shape: codes are never reused).
    ``based_on``: the grid's version when the edit was made — a commit refuses a plan whose grids changed since.
    """

    __tablename__ = "grid_plan_edit"
    __table_args__ = (
        CheckConstraint(in_list("op", PLAN_OPS), name="op"),
        CheckConstraint("geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))", name="geom_valid"),
        Index("uq_grid_plan_edit_plan_id_code", "plan_id", "code", unique=True),
        Index("ix_grid_plan_edit_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plan.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(15))
    new_code: Mapped[str | None] = mapped_column(String(15))
    level: Mapped[int | None] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(String(15))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=WGS84, spatial_index=False))
    based_on: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
