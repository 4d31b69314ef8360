"""The case's models: one input model per report, one reply model per case (SPEC "Public contracts").

``CaseCreate`` is a report, whichever way it comes in: the body of ``POST /api/v1/cases`` (the route and the
lean path of api/fast_intake.py), a GeoReport request (api/open311/fields.py builds one) and each row of a
bulk file (``BulkRow``: the report plus its row number and report time). It is strict: unknown fields and
NaN are refused. The report models are pydantic dataclasses with slots: a 200,000-row batch holds one per
row, and a slotted instance is one object where a ``BaseModel`` is three (bulk parsing measured a third
faster).

``CasePublic`` is a case as the public contract shows it: the reply of ``POST /api/v1/cases`` and
``GET /api/v1/cases/{id}``, an item of the case list (``CasesPublic``), and what the Open311 view reads.
It is a ``TypedDict`` shaped once (``spatial.cases.public.case_public``) and written by one serializer
(``case_json``, a ``TypeAdapter``), so that the lean intake path and the route answer byte for byte alike
without validating what the domain has just built.

The domain may use pydantic, never HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import AfterValidator, ConfigDict, Field, PlainSerializer, TypeAdapter, WithJsonSchema, model_validator
from pydantic.dataclasses import dataclass

from spatial.codes import COMPONENT_CODE_PATTERN
from spatial.geo.coords import coordinate_problem
from spatial.grids.locate import AreaPublic
from spatial.reference.calendar import LOCAL, moment_problem
from spatial.text import text_problem

Source = Literal["inspector", "hotline", "public", "video", "dispatcher"]
CATEGORY_PATTERN = r"^E[0-9]{2,14}$"
MAX_DESCRIPTION = 2000


def _storable(value: str) -> str:
    """``value`` if every character can be stored and sent as XML (spatial.text); ValueError otherwise."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _in_calendar(value: datetime) -> datetime:
    """``value`` if it lies inside the calendar's years (spatial.reference.calendar); ValueError otherwise."""
    problem = moment_problem(value, LOCAL)
    if problem:
        raise ValueError(problem)
    return value


# When a row was reported: a case number, a deadline and a 24 h duplicate window are counted from it.
ReportTime = Annotated[datetime, AfterValidator(_in_calendar)]
# Free text of a report: no NUL (PostgreSQL refuses it) and nothing XML 1.0 cannot hold (GeoReport XML).
Text = Annotated[str, AfterValidator(_storable)]


@dataclass(config=ConfigDict(extra="forbid"), slots=True)
class PointGeometry:
    """A GeoJSON Point in EPSG:4326: ``{"type": "Point", "coordinates": [lon, lat]}``."""

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3)

    @model_validator(mode="before")
    @classmethod
    def _only_points(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type") not in (None, "Point"):
            raise ValueError(f"location must be a GeoJSON Point, not {value.get('type')!r}")
        return value

    @model_validator(mode="after")
    def _in_range(self) -> PointGeometry:
        problem = coordinate_problem(self.coordinates[0], self.coordinates[1])
        if problem:
            raise ValueError(problem)
        return self

    @property
    def lon(self) -> float:
        """Return the longitude."""
        return self.coordinates[0]

    @property
    def lat(self) -> float:
        """Return the latitude."""
        return self.coordinates[1]


@dataclass(config=ConfigDict(extra="forbid"), slots=True)
class Reporter:
    """Who reported (shown only to admins and dispatchers)."""

    name: Text | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9][0-9 -]{2,30}$")


@dataclass(config=ConfigDict(extra="forbid", allow_inf_nan=False), slots=True, kw_only=True)
class CaseCreate:
    """A report to turn into a case (SPEC ``POST /api/v1/cases``)."""

    category: str = Field(pattern=CATEGORY_PATTERN, description="leaf event category code, e.g. E010101")
    location: PointGeometry | None = Field(default=None, description="required unless component_code is given")
    description: Text | None = Field(default=None, max_length=MAX_DESCRIPTION)
    source: Source | None = Field(default=None, description="the channel; default and limits follow the account: "
                                  "inspectors and grid chiefs report as inspector, partners as hotline "
                                  "(default) or public, others name any (default inspector)")
    component_code: str | None = Field(default=None, pattern=COMPONENT_CODE_PATTERN)
    reporter: Reporter | None = None

    @model_validator(mode="after")
    def _where(self) -> CaseCreate:
        if self.location is None and self.component_code is None:
            raise ValueError("location is required unless component_code is given")
        return self

    @property
    def lon(self) -> float | None:
        """Return the longitude of the location, if the report has one."""
        return self.location.lon if self.location else None

    @property
    def lat(self) -> float | None:
        """Return the latitude of the location, if the report has one."""
        return self.location.lat if self.location else None

    @property
    def reporter_name(self) -> str | None:
        """Return the reporter's name, if given."""
        return self.reporter.name if self.reporter else None

    @property
    def reporter_phone(self) -> str | None:
        """Return the reporter's phone number, if given."""
        return self.reporter.phone if self.reporter else None


@dataclass(config=ConfigDict(extra="forbid", allow_inf_nan=False), slots=True, kw_only=True)
class BulkRow(CaseCreate):
    """One row of a bulk file: a report with its place, the row's 1-based number as the caller counts
    (feature index or CSV data line) and when it was reported (None: when the batch arrives)."""

    row: int = Field(ge=1)
    location: PointGeometry  # a row always has its place (the file's geometry or lon/lat columns)
    source: Source = "hotline"  # a batch comes from the hotline unless its rows say otherwise
    reported_at: ReportTime | None = None


# Validators of the reports as a whole, for callers that validate raw input themselves (the lean intake path
# reads JSON bytes; bulk files validate row by row).
CASE_CREATE: TypeAdapter[CaseCreate] = TypeAdapter(CaseCreate)
BULK_ROW: TypeAdapter[BulkRow] = TypeAdapter(BulkRow)


# A moment as the contract writes it: ISO 8601 with the offset it has (Python's isoformat: "+00:00", never "Z").
Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
                      WithJsonSchema({"type": "string", "format": "date-time"})]


class PointPublic(TypedDict):
    """The case's place as a GeoJSON Point (EPSG:4326)."""

    type: Literal["Point"]
    coordinates: list[float]


class OwnerPublic(TypedDict):
    """Who handles the case: a department, a component owner, a grid chief or a town sub-centre."""

    key: str
    name: str
    area: str | None  # the area a grid chief or town sub-centre acts for


class ComponentPublic(TypedDict):
    """The component the case is bound to, and how far the report was from it."""

    code: str
    class_code: str | None
    distance_m: float | None


class ReporterPublic(TypedDict):
    """Who reported (only for admins and dispatchers)."""

    name: str | None
    phone: str | None


class CaseEvent(TypedDict):
    """One immutable event of a case's history."""

    at: Timestamp
    kind: str
    state: str | None
    actor: str
    note: str | None
    data: dict[str, Any] | None
    id: NotRequired[int]  # the event's id (a request's id is what ``approve`` decides on)
    role: NotRequired[str | None]  # the role the actor acted in (None before the workflow, migration 0014)


class AssistUnitPublic(TypedDict):
    """An assisting unit of a joint case (协办, spatial/cases/joint.py) as stored in ``case_unit``."""

    key: str
    area: str | None
    role: str
    state: str  # dispatched, accepted, handled, withdrawn
    deadline: Timestamp | None
    dispatched_at: Timestamp
    accepted_at: Timestamp | None
    handled_at: Timestamp | None


class TimeLeftPublic(TypedDict):
    """What is left of an open case's time limits, counted as its category counts them: working time on the
    working calendar (``working_hours`` / ``working_days``) or clock time (``clock_hours``); negative when
    overdue; None without that deadline."""

    counted: Literal["working", "clock"]
    deadline_s: int | None
    step_deadline_s: int | None


class WorkflowPublic(TypedDict):
    """Where a case stands in the workflow (spatial/cases/workflow.py): the revision its ETag names, the step
    deadline, the action waiting for approval, and the actions the reader may take now."""

    revision: int
    step_deadline: Timestamp | None
    pending_action: str | None
    allowed_actions: list[str]
    assist: NotRequired[list[AssistUnitPublic]]  # a joint case's assisting units (协办)
    time_left: NotRequired[TimeLeftPublic]  # an open case's deadlines on its category's clock, at reading time


class CasePublic(TypedDict):
    """A case as the public contract shows it (SPEC "Public contracts", ``POST /api/v1/cases``)."""

    id: int
    case_no: str
    state: str
    category: str
    source: str
    description: str | None
    location: PointPublic
    grid: AreaPublic
    community: AreaPublic
    town: AreaPublic
    district: AreaPublic
    special_grids: list[AreaPublic]
    owner: OwnerPublic
    component: ComponentPublic | None
    deadline: Timestamp | None
    duplicate_of: int | None
    reported_at: Timestamp
    closed_at: Timestamp | None
    reporter: NotRequired[ReporterPublic]  # only for the roles that see personal data
    history: NotRequired[list[CaseEvent]]  # one case read by id
    workflow: NotRequired[WorkflowPublic]  # one case read by id, by an account


class CasesPublic(TypedDict):
    """A page of the case list, newest first, and the cursor of the next page (None at the end)."""

    cases: list[CasePublic]
    next: int | None


CASE_PUBLIC: TypeAdapter[CasePublic] = TypeAdapter(CasePublic)
CASES_PUBLIC: TypeAdapter[CasesPublic] = TypeAdapter(CasesPublic)


def case_json(case: CasePublic) -> bytes:
    """Return a case as the UTF-8 JSON every path answers with (compact, non-ASCII as is)."""
    return CASE_PUBLIC.dump_json(case)


def cases_json(page: CasesPublic) -> bytes:
    """Return a page of the case list as UTF-8 JSON."""
    return CASES_PUBLIC.dump_json(page)
