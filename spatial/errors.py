"""Domain errors: the one table of what can go wrong and how each interface says it.

Every refusal gridlink answers is a ``GridlinkError`` subclass that carries its own HTTP status, RFC 9457
problem type (``slug``) and title, the OGC API exception code of ``/ogc`` and the GeoReport error code of
``/open311`` (the HTTP status, as GeoReport v2 clients expect). ``api/problems.py`` turns any of them into
problem+json, an OGC exception or a GeoReport error by reading these attributes, so a new error is added
here once and every interface answers it alike. ``detail`` is always safe to show to the caller.

| error                        | status | slug                     | OGC code               |
|------------------------------|--------|--------------------------|------------------------|
| InvalidParameterError        | 400    | invalid-parameter        | InvalidParameterValue  |
| FilterTooCostlyError         | 400    | filter-too-costly        | InvalidParameterValue  |
| AuthenticationError          | 401    | unauthorized             | Unauthorized           |
| ForbiddenError               | 403    | forbidden                | Forbidden              |
| NotFoundError                | 404    | not-found                | NotFound               |
| MethodNotAllowedError        | 405    | method-not-allowed       | MethodNotAllowed       |
| ConflictError                | 409    | conflict                 | Conflict               |
| IdempotencyConflictError     | 409    | idempotency-conflict     | Conflict               |
| IllegalTransitionError       | 409    | illegal-transition       | Conflict               |
| PhotoLimitError              | 409    | photo-limit              | Conflict               |
| StaleTeamError               | 409    | stale-team               | Conflict               |
| RevisionMismatchError        | 412    | precondition-failed      | PreconditionFailed     |
| PayloadTooLargeError         | 413    | too-large                | PayloadTooLarge        |
| UnsupportedMediaTypeError    | 415    | unsupported-media-type   | UnsupportedMediaType   |
| UnsupportedPhotoError        | 415    | unsupported-photo        | UnsupportedMediaType   |
| OutsideCoverageError         | 422    | outside-coverage         | InvalidParameterValue  |
| UnknownCategoryError         | 422    | unknown-category         | InvalidParameterValue  |
| ComponentError               | 422    | component                | InvalidParameterValue  |
| InvalidGeometryError         | 422    | invalid-geometry         | InvalidParameterValue  |
| InvalidTextError             | 422    | invalid-text             | InvalidParameterValue  |
| ActionDataError              | 422    | invalid-action-data      | InvalidParameterValue  |
| InvalidPhotoError            | 422    | invalid-photo            | InvalidParameterValue  |
| GridImportRefusedError       | 422    | grid-import-refused      | InvalidParameterValue  |
| PlanRefusedError             | 422    | plan-refused             | InvalidParameterValue  |
| SurveyFileError              | 422    | survey-file              | InvalidParameterValue  |
| PreconditionRequiredError    | 428    | precondition-required    | PreconditionRequired   |
| TooManyRequestsError         | 429    | too-many-requests        | TooManyRequests        |
| UnavailableError             | 503    | unavailable              | ServiceUnavailable     |
| QueryBudgetError             | 503    | query-budget             | ServiceUnavailable     |

Every error is the caller's to fix (4xx) except the two 503s, which say "not now, retry after"
(``extra["retry_after"]``). A ``GridlinkError`` that no subclass describes is a 400 ``bad-request``. One
translation is made on the way out, documented in api/problems.py: ``/ogc`` answers a 422 as 400
``InvalidParameterValue``, as OGC API - Features Part 4 answers invalid content.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GridlinkError(Exception):
    """Base of every domain error; ``detail`` is safe to show to the caller, ``extra`` goes into the reply.

    A subclass declares what it is in its class statement, read by every interface (api/problems.py):
    ``class NotFoundError(GridlinkError, status=404, slug="not-found", title="Not found", ogc_code="NotFound")``.
    ``ogc_code`` may be left out: a subclass keeps its parent's (``InvalidParameterValue`` for the base).
    """

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    ogc_code: ClassVar[str] = "InvalidParameterValue"

    def __init_subclass__(cls, *, status: int, slug: str, title: str, ogc_code: str | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status, cls.slug, cls.title = status, slug, title
        if ogc_code is not None:
            cls.ogc_code = ogc_code

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def georeport_code(self) -> int:
        """The ``code`` of a GeoReport v2 error: the HTTP status."""
        return self.status


class InvalidParameterError(GridlinkError, status=400, slug="invalid-parameter", title="Invalid parameter"):
    """A query parameter or field has a value the domain cannot use."""


class AuthenticationError(GridlinkError, status=401, slug="unauthorized", title="Authentication required",
                          ogc_code="Unauthorized"):
    """No valid credentials were given."""


class ForbiddenError(GridlinkError, status=403, slug="forbidden", title="Not allowed here", ogc_code="Forbidden"):
    """The caller is known but may not do this here."""


class NotFoundError(GridlinkError, status=404, slug="not-found", title="Not found", ogc_code="NotFound"):
    """The thing asked for does not exist."""


class MethodNotAllowedError(GridlinkError, status=405, slug="method-not-allowed", title="Method not allowed",
                            ogc_code="MethodNotAllowed"):
    """The resource exists but does not take this method (e.g. a read-only collection)."""


class ConflictError(GridlinkError, status=409, slug="conflict", title="Conflict with the stored state",
                    ogc_code="Conflict"):
    """The write conflicts with what is stored (a code taken, open cases waiting, a shrinking grid)."""


class IdempotencyConflictError(ConflictError, status=409, slug="idempotency-conflict", title="Idempotency-Key reused"):
    """An Idempotency-Key was reused with a different request."""


class RevisionMismatchError(GridlinkError, status=412, slug="precondition-failed", title="Precondition failed",
                            ogc_code="PreconditionFailed"):
    """``If-Match`` names a revision other than the stored one: someone else changed the item."""


class PayloadTooLargeError(GridlinkError, status=413, slug="too-large", title="Payload too large",
                           ogc_code="PayloadTooLarge"):
    """The body is larger than the endpoint takes."""


class UnsupportedMediaTypeError(GridlinkError, status=415, slug="unsupported-media-type",
                                title="Unsupported media type", ogc_code="UnsupportedMediaType"):
    """The request body is not of a media type the endpoint reads."""


class OutsideCoverageError(GridlinkError, status=422, slug="outside-coverage", title="Location outside every grid"):
    """The point lies outside every grid; ``extra`` names the nearest grid and its distance."""


class UnknownCategoryError(GridlinkError, status=422, slug="unknown-category", title="Unknown event category"):
    """The category code is not a leaf of the category table."""


class ComponentError(GridlinkError, status=422, slug="component", title="Component cannot take this case"):
    """The named component is unknown, retired, or in another district than the report."""


class InvalidGeometryError(GridlinkError, status=422, slug="invalid-geometry", title="Invalid geometry"):
    """A geometry is not of the expected type, or its coordinates are out of range."""


class PreconditionRequiredError(GridlinkError, status=428, slug="precondition-required", title="Precondition required",
                                ogc_code="PreconditionRequired"):
    """A write that must name the revision it read (``If-Match``) did not."""


class TooManyRequestsError(GridlinkError, status=429, slug="too-many-requests", title="Too many requests",
                           ogc_code="TooManyRequests"):
    """A client sent requests faster than the channel takes them; ``extra["retry_after"]`` in seconds."""


# -- Issue 23 (hardening). Each area adds its refusals under its own heading, so that parallel work merges.

# -- public & trust (Open311 public view, duplicates per source, idempotency scope)

# -- edits & bulk (grid edit scope, bulk history window, bulk admission)

# -- OGC cost (CQL2 limits, time budget)

class FilterTooCostlyError(InvalidParameterError, status=400, slug="filter-too-costly", title="Filter too costly"):
    """A CQL2 filter beyond the cost bounds of /ogc (spatial/features/cql2.py): too many vertices, predicates
    or terms, or a predicate no index can serve on a large collection."""


class UnavailableError(GridlinkError, status=503, slug="unavailable", title="Service temporarily unavailable",
                       ogc_code="ServiceUnavailable"):
    """The server cannot take the request now (the database is away or too slow); ``extra["retry_after"]``."""


class QueryBudgetError(UnavailableError, status=503, slug="query-budget", title="Query over its time budget"):
    """A statement serving the request ran past the time budget of its path (api/ogc/limits.py)."""

# -- accounts & headers (login throttling, account lifecycle, passwords)

# -- hostile input (NUL, control characters, calendar edges)

class InvalidTextError(GridlinkError, status=422, slug="invalid-text", title="Text that cannot be stored"):
    """A text field holds a character outside XML 1.0 (NUL, other C0 controls, U+FFFE/FFFF, surrogates:
    ``spatial.text``), which PostgreSQL or a GeoReport XML reply cannot carry; ``parameter`` names the field."""

# -- Issue 17 (the workflow core: transition table, actions, approvals, inbox)

class IllegalTransitionError(ConflictError, status=409, slug="illegal-transition",
                             title="Action not allowed in the case's state"):
    """The action is not allowed in the case's state (spatial/cases/workflow.py ``TABLE``); ``extra["allowed"]``
    lists the actions the caller may take now."""


class ActionDataError(GridlinkError, status=422, slug="invalid-action-data", title="What the action needs is wrong"):
    """An action's body lacks what the action needs (a reason, a check result, an extension's amount) or names
    an unknown unit; ``parameter`` names the field."""


# -- issue 19 (grid planning: imports, plans, time travel)

class GridImportRefusedError(GridlinkError, status=422, slug="grid-import-refused", title="Grid file refused"):
    """An imported file of grids has problems no documented repair resolves; ``extra["report"]`` lists them
    (overlaps, gaps, children outside their parent, bad or duplicate codes) with their polygons."""


class PlanRefusedError(GridlinkError, status=422, slug="plan-refused", title="Plan would break the grids"):
    """A plan would leave a gap or an overlap, or a grid outside its parent; ``extra`` says where."""


# -- Issue 18 (component registry: survey import, search, export)

class SurveyFileError(GridlinkError, status=422, slug="survey-file", title="Survey file cannot be imported"):
    """A survey file as a whole cannot be imported (unreadable or truncated, no CRS, a projected survey read as
    degrees, an encoding it does not name, columns that map to nothing); nothing was stored. ``extra`` may name
    the likely CRS or encoding, or the unmapped columns."""


# -- issue 19 (grid planning gaps: a team edit based on a team that changed since)

class StaleTeamError(ConflictError, status=409, slug="stale-team",
                     title="The grid's team changed since the plan read it"):
    """A plan's team edit was based on members that are no longer the grid's (another plan or edit changed
    them meanwhile); ``extra`` names the ``grid`` and what ``changed`` (members ``added`` and ``removed``)."""


# -- Issue 20 (photos with a case, the pages' APIs)

class UnsupportedPhotoError(UnsupportedMediaTypeError, status=415, slug="unsupported-photo",
                            title="Not a photo gridlink stores"):
    """An uploaded file is not, by its content, a JPEG, PNG or WebP image (whatever its name or declared type)."""


class InvalidPhotoError(GridlinkError, status=422, slug="invalid-photo", title="Photo cannot be read"):
    """An uploaded image is truncated or corrupt, empty, or has more pixels than the server decodes."""


class PhotoLimitError(ConflictError, status=409, slug="photo-limit", title="The case takes no more photos"):
    """The case already holds as many photos as a case may, or is closed or voided."""
