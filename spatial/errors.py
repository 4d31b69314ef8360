"""Domain errors: the one table of what can go wrong and how each interface says it.

Every refusal gridlink answers is a ``GridlinkError`` subclass that carries its own HTTP status, RFC 9457
problem type (``slug``) and title, the OGC API exception code of ``/ogc`` and the GeoReport error code of
``/open311`` (the HTTP status, as GeoReport v2 clients expect). ``api/problems.py`` turns any of them into
problem+json, an OGC exception or a GeoReport error by reading these attributes, so a new error is added
here once and every interface answers it alike. ``detail`` is always safe to show to the caller.

| error                        | status | slug                     | OGC code               |
|------------------------------|--------|--------------------------|------------------------|
| InvalidParameterError        | 400    | invalid-parameter        | InvalidParameterValue  |
| AuthenticationError          | 401    | unauthorized             | Unauthorized           |
| ForbiddenError               | 403    | forbidden                | Forbidden              |
| NotFoundError                | 404    | not-found                | NotFound               |
| MethodNotAllowedError        | 405    | method-not-allowed       | MethodNotAllowed       |
| ConflictError                | 409    | conflict                 | Conflict               |
| IdempotencyConflictError     | 409    | idempotency-conflict     | Conflict               |
| RevisionMismatchError        | 412    | precondition-failed      | PreconditionFailed     |
| PayloadTooLargeError         | 413    | too-large                | PayloadTooLarge        |
| UnsupportedMediaTypeError    | 415    | unsupported-media-type   | UnsupportedMediaType   |
| OutsideCoverageError         | 422    | outside-coverage         | InvalidParameterValue  |
| UnknownCategoryError         | 422    | unknown-category         | InvalidParameterValue  |
| ComponentError               | 422    | component                | InvalidParameterValue  |
| InvalidGeometryError         | 422    | invalid-geometry         | InvalidParameterValue  |
| PreconditionRequiredError    | 428    | precondition-required    | PreconditionRequired   |
| TooManyRequestsError         | 429    | too-many-requests        | TooManyRequests        |

A ``GridlinkError`` that no subclass describes is a 400 ``bad-request``.
"""

from __future__ import annotations


class GridlinkError(Exception):
    """Base of every domain error; ``detail`` is safe to show to the caller, ``extra`` goes into the reply."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    ogc_code = "InvalidParameterValue"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def georeport_code(self) -> int:
        """The ``code`` of a GeoReport v2 error: the HTTP status."""
        return self.status


class InvalidParameterError(GridlinkError):
    """A query parameter or field has a value the domain cannot use."""

    status, slug, title = 400, "invalid-parameter", "Invalid parameter"


class AuthenticationError(GridlinkError):
    """No valid credentials were given."""

    status, slug, title, ogc_code = 401, "unauthorized", "Authentication required", "Unauthorized"


class ForbiddenError(GridlinkError):
    """The caller is known but may not do this here."""

    status, slug, title, ogc_code = 403, "forbidden", "Not allowed here", "Forbidden"


class NotFoundError(GridlinkError):
    """The thing asked for does not exist."""

    status, slug, title, ogc_code = 404, "not-found", "Not found", "NotFound"


class MethodNotAllowedError(GridlinkError):
    """The resource exists but does not take this method (e.g. a read-only collection)."""

    status, slug, title, ogc_code = 405, "method-not-allowed", "Method not allowed", "MethodNotAllowed"


class ConflictError(GridlinkError):
    """The write conflicts with what is stored (a code taken, open cases waiting, a shrinking grid)."""

    status, slug, title, ogc_code = 409, "conflict", "Conflict with the stored state", "Conflict"


class IdempotencyConflictError(ConflictError):
    """An Idempotency-Key was reused with a different request."""

    status, slug, title = 409, "idempotency-conflict", "Idempotency-Key reused"


class RevisionMismatchError(GridlinkError):
    """``If-Match`` names a revision other than the stored one: someone else changed the item."""

    status, slug, title, ogc_code = 412, "precondition-failed", "Precondition failed", "PreconditionFailed"


class PayloadTooLargeError(GridlinkError):
    """The body is larger than the endpoint takes."""

    status, slug, title, ogc_code = 413, "too-large", "Payload too large", "PayloadTooLarge"


class UnsupportedMediaTypeError(GridlinkError):
    """The request body is not of a media type the endpoint reads."""

    status, slug, title, ogc_code = 415, "unsupported-media-type", "Unsupported media type", "UnsupportedMediaType"


class OutsideCoverageError(GridlinkError):
    """The point lies outside every grid; ``extra`` names the nearest grid and its distance."""

    status, slug, title = 422, "outside-coverage", "Location outside every grid"


class UnknownCategoryError(GridlinkError):
    """The category code is not a leaf of the category table."""

    status, slug, title = 422, "unknown-category", "Unknown event category"


class ComponentError(GridlinkError):
    """The named component is unknown, retired, or in another district than the report."""

    status, slug, title = 422, "component", "Component cannot take this case"


class InvalidGeometryError(GridlinkError):
    """A geometry is not of the expected type, or its coordinates are out of range."""

    status, slug, title = 422, "invalid-geometry", "Invalid geometry"


class PreconditionRequiredError(GridlinkError):
    """A write that must name the revision it read (``If-Match``) did not."""

    status, slug, title, ogc_code = 428, "precondition-required", "Precondition required", "PreconditionRequired"


class TooManyRequestsError(GridlinkError):
    """A client sent requests faster than the channel takes them; ``extra["retry_after"]`` in seconds."""

    status, slug, title, ogc_code = 429, "too-many-requests", "Too many requests", "TooManyRequests"
