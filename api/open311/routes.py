"""Open311 GeoReport v2 at ``/open311/v2/`` (http://wiki.open311.org/GeoReport_v2), JSON and XML.

Every path ends in ``.json`` or ``.xml``, which picks the reply's format; any other extension is a 404.
A service is a leaf event category (``service_code`` is its code), a service request is a case, its token
the case number. Requests are created through ``spatial.cases.intake.create_case`` like every other report, from
a form-encoded body (as the GeoReport spec has it) or a JSON object, and honour ``Idempotency-Key``.

Errors: the project answers errors as RFC 9457 problem+json, with two documented exceptions: pygeoapi's
OGC error format, and this API. GeoReport clients are written against GeoReport's own error shape, so
here every refusal is ``[{"code": 400, "description": "…"}]`` for ``.json`` paths and
``<errors><error><code>…</code><description>…</description></error></errors>`` for ``.xml`` paths, with
the status a domain error carries (``api.problems.georeport_error``). A GET that matches no resource gets a
GeoReport 404 too; a method a resource does not take still gets the application's problem+json 405, and an
oversized body its problem+json 413 (both answered before any route runs).

The request list follows the spec: ``service_request_id`` overrides every other filter, a date range spans
at most 90 days (the last 90 days by default), at most 1000 requests come back, newest first (a
non-standard ``limit`` asks for fewer).

Who reads what (``spatial.cases.open311``): a GET with an ``api_key`` (any account's token, as GeoReport
passes keys) or with the API's own credentials (``Authorization`` header, web session) sees exactly the
cases REST shows that account (403 outside its scope, as REST); a GET without sees only requests that came
in through the public channel, coarsely located, and nothing else exists for it (404). An unknown, expired
or revoked key is refused (401), never read as the public.

Partner keys: ``api_key`` is a bearer token (``gridlink token create LOGIN``) of a ``partner``, ``dispatcher``
or ``admin`` account; a request carrying a valid one is recorded as coming from the hotline (source
``hotline``, actor ``open311:`` plus the account's login), an unknown, expired or revoked key is refused
(401), a key of another role 403. A request without a key is a public report. ``email`` is accepted and not
stored: cases keep a reporter's name and phone only. Reporters' names and phones never appear in replies.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import client_address, optional_principal
from api.deps import ConnectionDep, EngineDep, IdempotencyKey, ReferenceDep
from api.middleware import BodyTooLarge
from api.open311.fields import read_submission, text_field, to_report
from api.open311.format import check_format, render, render_error
from api.problems import RETRY_AFTER_SECONDS, database_unavailable, georeport_error
from spatial.access.accounts import principal_for, resolve_token
from spatial.access.principal import Principal
from spatial.cases.intake import create_case
from spatial.cases.open311 import (
    created_reply,
    get_request,
    list_requests,
    list_services,
    parse_filter,
    request_token,
    service_definition,
)
from spatial.errors import (
    ForbiddenError,
    GridlinkError,
    NotFoundError,
    TooManyRequestsError,
)

log = logging.getLogger("gridlink.api")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2025-06-01T00:00:00+08:00"  # when the endpoint list below last changed
CONTACT = "网格化联动指挥中心 (grid governance command centre): ask its administrator"
KEY_SERVICE = "Partner systems get an api_key from the command centre's administrator (a partner account)."
PARTNER_ROLES = ("partner", "dispatcher", "admin")  # accounts whose tokens may serve as api_key


class GeoReportRoute(APIRoute):
    """A route that answers every refusal in the GeoReport error format of the requested extension."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that errors never reach the problem+json handlers."""
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except BodyTooLarge:
                raise  # the body-size middleware answers it
            except GridlinkError as exc:
                return georeport_error(exc, _extension(request.url.path))
            except Exception as exc:
                status, description = _status_and_description(exc, request.url.path)
                response = render_error(_extension(request.url.path), status, description)
                if status == 503:
                    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return response

        return answer


def _extension(path: str) -> str:
    """Return the extension of the path's last segment (the reply format asked for), or ''."""
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1] if "." in last else ""


def _status_and_description(exc: Exception, path: str) -> tuple[int, str]:
    """Return the HTTP status and a description safe to show, for an error a route raised that is not a domain
    error (those carry their own: ``georeport_error``)."""
    if isinstance(exc, RequestValidationError):
        return 400, "; ".join(f"{e.get('loc', ('',))[-1]}: {e.get('msg', '')}" for e in exc.errors())
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    if database_unavailable(exc):
        log.warning("database unavailable on %s: %s", path, type(exc).__name__)
        return 503, "the service is temporarily unavailable; retry shortly (with the same Idempotency-Key)"
    log.exception("unhandled error on %s", path)
    return 500, "internal server error (it was logged)"


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=GeoReportRoute)


def reply_format(fmt: str) -> str:
    """Return the format the path's extension names (json or xml); 404 for any other."""
    return check_format(fmt)


def reader(request: Request, api_key: str | None = None) -> Principal | None:
    """Who reads: the account of ``api_key`` or of the request's credentials (401 for a bad one); None for
    the public."""
    if api_key:
        return resolve_token(request.app.state.engine, api_key, request.app.state.principals)
    return optional_principal(request)


FormatDep = Annotated[str, Depends(reply_format)]
SubmissionDep = Annotated[dict[str, Any], Depends(read_submission)]
ReaderDep = Annotated[Principal | None, Depends(reader)]


def discovery_document(base_url: str) -> dict[str, Any]:
    """Return the GeoReport discovery document, with the endpoint's URL built from the request's base URL."""
    endpoint = {"specification": SPECIFICATION, "url": base_url.rstrip("/") + router.prefix,
                "changeset": CHANGESET, "type": "production", "formats": ["application/json", "text/xml"]}
    return {"changeset": CHANGESET, "contact": CONTACT, "key_service": KEY_SERVICE, "endpoints": [endpoint]}


@router.get("/discovery.{fmt}", summary="GeoReport discovery: where the API is and what it speaks")
def discovery(fmt: FormatDep, request: Request) -> Response:
    """Return the discovery document."""
    return render(fmt, "discovery", discovery_document(request.app.state.api_settings.base_url()))


@router.get("/services.{fmt}", summary="Services: the leaf event categories")
def services(fmt: FormatDep, conn: ConnectionDep, ref: ReferenceDep) -> Response:
    """Return every service (leaf event category) with its name, group and keywords."""
    return render(fmt, "services", list_services(conn, ref))


@router.get("/services/{service_code}.{fmt}", summary="A service definition: the extra fields a service takes")
def service(fmt: FormatDep, service_code: str, ref: ReferenceDep) -> Response:
    """Return the definition of one service (component categories take a component code)."""
    return render(fmt, "service_definition", service_definition(ref, service_code))


def _limit_public(request: Request) -> None:
    """Refuse a public submission over its client's rate (429 with Retry-After, via the GeoReport route)."""
    wait = request.app.state.public_limiter.take(request.client.host if request.client else "unknown")
    if wait:
        raise TooManyRequestsError(f"too many public requests from this address; retry in {math.ceil(wait)} s",
                                   retry_after=math.ceil(wait))


@router.post("/requests.{fmt}", status_code=201, summary="Create a service request (form-encoded or JSON)")
def create(fmt: FormatDep, fields: SubmissionDep, request: Request, engine: EngineDep, ref: ReferenceDep,
           idempotency_key: IdempotencyKey = None) -> Response:
    """Create a case from a GeoReport request; a retry with the same Idempotency-Key gets the first one (200)."""
    api_key = text_field(fields, "api_key", 256) or request.query_params.get("api_key") or None
    if not api_key:
        _limit_public(request)
    with engine.begin() as conn:  # one transaction: a refusal leaves nothing stored
        actor, partner = "open311:public", None
        if api_key:  # who submits is decided before the fields are checked (RFC 9110 §13.2.1)
            partner = principal_for(conn, api_key, request.app.state.principals)
            if partner.role not in PARTNER_ROLES:
                raise ForbiddenError(f"an api_key of a {partner.role} account cannot submit requests")
            actor = f"open311:{partner.login}"
        report = to_report(fields, api_key)
        case, created = create_case(conn, ref, report, actor=actor, idempotency_key=idempotency_key, by=partner,
                                    client=client_address(request))
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return render(fmt, "service_requests", [created_reply(case, public=partner is None)],
                  status=201 if created else 200, headers=headers)


@router.get("/requests.{fmt}", summary="Service requests, newest first, with GeoReport filters")
def requests(fmt: FormatDep, who: ReaderDep, conn: ConnectionDep, ref: ReferenceDep,
             service_request_id: str | None = None, service_code: str | None = None, start_date: str | None = None,
             end_date: str | None = None, status: str | None = None, limit: str | None = None) -> Response:
    """Return the requests the caller may read in the date window (the last 90 days by default), at most 1000."""
    params = {"service_request_id": service_request_id, "service_code": service_code, "start_date": start_date,
              "end_date": end_date, "status": status, "limit": limit}
    found = list_requests(conn, ref, parse_filter(params, datetime.now(UTC)), by=who)
    return render(fmt, "service_requests", found)


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request")
def request_by_id(fmt: FormatDep, service_request_id: str, who: ReaderDep, conn: ConnectionDep,
                  ref: ReferenceDep) -> Response:
    """Return a one-element list holding the request."""
    return render(fmt, "service_requests", get_request(conn, ref, service_request_id, by=who))


@router.get("/tokens/{token}.{fmt}", summary="The service request id of a token (a case number)")
def token_lookup(fmt: FormatDep, token: str, who: ReaderDep, conn: ConnectionDep) -> Response:
    """Return ``[{"service_request_id", "token"}]``."""
    return render(fmt, "service_requests", request_token(conn, token, by=who))


@router.get("/{path:path}", include_in_schema=False)
def unknown(path: str) -> Response:
    """Answer any other GET under ``/open311/v2/`` with a GeoReport 404 (registered last: it matches all)."""
    raise NotFoundError(f"no GeoReport resource at {path!r}", path=path)
