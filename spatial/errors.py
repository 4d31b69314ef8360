"""Domain errors. ``api/problems.py`` maps each to an RFC 9457 problem type and status, in one table."""

from __future__ import annotations


class GridlinkError(Exception):
    """Base of every domain error; ``detail`` is safe to show to the caller."""

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidParameterError(GridlinkError):
    """A query parameter or field has a value the domain cannot use."""


class NotFoundError(GridlinkError):
    """The thing asked for does not exist."""


class OutsideCoverageError(GridlinkError):
    """The point lies outside every grid; ``extra`` names the nearest grid and its distance."""


class UnknownCategoryError(GridlinkError):
    """The category code is not a leaf of the category table."""


class ComponentError(GridlinkError):
    """The named component is unknown, retired, or in another district than the report."""


class IdempotencyConflictError(GridlinkError):
    """An Idempotency-Key was reused with a different request."""


class InvalidGeometryError(GridlinkError):
    """A geometry is not of the expected type, or its coordinates are out of range."""
