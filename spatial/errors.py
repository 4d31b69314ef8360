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
