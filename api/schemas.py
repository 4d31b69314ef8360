"""Request and response schemas of the REST API (strict: unknown fields and NaN are refused)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spatial.geo.coords import coordinate_problem

Source = Literal["inspector", "hotline", "public", "video", "dispatcher"]


def check_lon_lat(lon: float, lat: float) -> None:
    """Raise ValueError when (lon, lat) is not a usable position (see ``spatial.geo.coords``)."""
    problem = coordinate_problem(lon, lat)
    if problem:
        raise ValueError(problem)


class PointGeometry(BaseModel):
    """A GeoJSON Point in EPSG:4326: ``{"type": "Point", "coordinates": [lon, lat]}``."""

    model_config = ConfigDict(extra="forbid")

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
        check_lon_lat(self.coordinates[0], self.coordinates[1])
        return self

    @property
    def lon(self) -> float:
        """Return the longitude."""
        return self.coordinates[0]

    @property
    def lat(self) -> float:
        """Return the latitude."""
        return self.coordinates[1]


class Reporter(BaseModel):
    """Who reported (shown only to admins and dispatchers)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9][0-9 -]{2,30}$")


class CaseCreate(BaseModel):
    """A report to turn into a case (SPEC ``POST /api/v1/cases``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    category: str = Field(pattern=r"^E[0-9]{2,14}$", description="leaf event category code, e.g. E010101")
    location: PointGeometry | None = Field(default=None, description="required unless component_code is given")
    description: str | None = Field(default=None, max_length=2000)
    source: Source = "inspector"
    component_code: str | None = Field(default=None, pattern=r"^[0-9]{16}$")
    reporter: Reporter | None = None

    @model_validator(mode="after")
    def _where(self) -> CaseCreate:
        if self.location is None and self.component_code is None:
            raise ValueError("location is required unless component_code is given")
        return self
