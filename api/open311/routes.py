"""Open311 GeoReport v2 at ``/open311/v2/`` (http://wiki.open311.org/GeoReport_v2), JSON and XML.

Every path ends in ``.json`` or ``.xml``, which picks the reply's format; any other extension is a 404.
A service is a leaf event category (``service_code`` is its code), a service request is a case, its token
the case number. Requests are created through ``spatial.cases.intake.create_case`` like every other report, from
a form-encoded body (as the GeoReport spec has it) or a JSON object, and honour ``Idempotency-Key``.

Errors: the project answers errors as RFC 9457 problem+json, with two documented exceptions: pygeoapi's
OGC error format, and this API. GeoReport clients are written against GeoReport's own error shape, so
here every refusal is ``[{"code": 400, "description": "…"}]`` for ``.json`` paths and
``<errors><error><code>…</code><description>…</description></error></errors>`` for ``.xml`` paths, with
the HTTP status of ``api.problems.PROBLEM_TABLE`` for domain errors. A GET that matches no resource gets a
GeoReport 404 too; a method a resource does not take still gets the application's problem+json 405, and an
oversized body its problem+json 413 (both answered before any route runs).

The request list follows the spec: ``service_request_id`` overrides every other filter, a date range spans
at most 90 days (the last 90 days by default), at most 1000 requests come back, newest first (a
non-standard ``limit`` asks for fewer).

Partner keys: ``api_key`` is a bearer token (``gridlink token create LOGIN``) of a ``partner``, ``dispatcher``
or ``admin`` account; a request carrying a valid one is recorded as coming from the hotline (source
``hotline``, actor ``open311:`` plus the account's login), an unknown, expired or revoked key is refused
(401), a key of another role 403. A request without a key is a public report. ``email`` is accepted and not
stored: cases keep a reporter's name and phone only. Reporters' names and phones never appear in replies.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import client_address
from api.deps import ConnectionDep, EngineDep, ReferenceDep
from api.middleware import BodyTooLarge
from api.open311.format import check_format, render, render_error
from api.problems import PROBLEM_TABLE, RETRY_AFTER_SECONDS, database_unavailable
from api.rate_limit import RateLimiter
from api.routes.cases import IdempotencyKey
from api.schemas import Reporter, check_lon_lat
from spatial.access.accounts import principal_for
from spatial.cases.intake import CaseInput, create_case
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
    InvalidParameterError,
    NotFoundError,
    TooManyRequestsError,
    UnsupportedMediaTypeError,
)

log = logging.getLogger("gridlink.api")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2025-06-01T00:00:00+08:00"  # when the endpoint list below last changed
CONTACT = "网格化联动指挥中心 (grid governance command centre): ask its administrator"
KEY_SERVICE = "Partner systems get an api_key from the command centre's administrator (a partner account)."
FORM_MEDIA = "application/x-www-form-urlencoded"
COMPONENT_FIELD = "attribute[component_code]"
MAX_DESCRIPTION = 2000
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
            except Exception as exc:
                status, description = _status_and_description(exc, request.url.path)
                response = render_error(_extension(request.url.path), status, description)
                if status == 503:
                    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                if isinstance(exc, GridlinkError) and "retry_after" in exc.extra:
                    response.headers["Retry-After"] = str(exc.extra["retry_after"])
                return response

        return answer


def _extension(path: str) -> str:
    """Return the extension of the path's last segment (the reply format asked for), or ''."""
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1] if "." in last else ""


def _status_and_description(exc: Exception, path: str) -> tuple[int, str]:
    """Return the HTTP status and a description safe to show, for any error raised by a route."""
    if isinstance(exc, TooManyRequestsError):
        return 429, exc.detail
    if isinstance(exc, GridlinkError):
        status = next((PROBLEM_TABLE[cls][0] for cls in type(exc).__mro__ if cls in PROBLEM_TABLE), 400)
        return status, exc.detail
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


FormatDep = Annotated[str, Depends(reply_format)]


async def read_submission(request: Request) -> dict[str, Any]:
    """Return the fields of a POSTed request: a form-encoded body, or a JSON object."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if media == FORM_MEDIA:
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise InvalidParameterError("the form must be UTF-8 encoded", parameter="body") from exc
    if media == "application/json":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise InvalidParameterError(f"the body is not valid JSON: {exc}", parameter="body") from exc
        if not isinstance(data, dict):
            raise InvalidParameterError("the JSON body must be an object of GeoReport fields", parameter="body")
        attributes = data.pop("attribute", None)  # {"attribute": {"component_code": …}} as well as the flat key
        if isinstance(attributes, dict):
            data.update({f"attribute[{key}]": value for key, value in attributes.items()})
        return data
    raise UnsupportedMediaTypeError(
        f"send the request as {FORM_MEDIA} or application/json, not {media or 'no content type'!r}",
        media_type=media)


SubmissionDep = Annotated[dict[str, Any], Depends(read_submission)]


def _text(fields: dict[str, Any], name: str, max_length: int) -> str | None:
    """Return field ``name`` as stripped text (None when absent or blank); refuse non-text and overlong."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidParameterError(f"{name} must be text", parameter=name)
    value = str(value).strip()
    if len(value) > max_length:
        raise InvalidParameterError(f"{name} is longer than {max_length} characters", parameter=name)
    return value or None


def _degrees(fields: dict[str, Any], name: str) -> float | None:
    """Return field ``name`` as finite decimal degrees, or None when absent or blank."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidParameterError(f"{name} must be a decimal number of degrees", parameter=name)
    try:
        number = float(value)
    except ValueError:
        raise InvalidParameterError(f"{name} must be a decimal number of degrees, not {value!r}",
                                    parameter=name) from None
    if not math.isfinite(number):
        raise InvalidParameterError(f"{name} must be a finite number, not {value!r}", parameter=name)
    return number


def _position(fields: dict[str, Any]) -> tuple[float | None, float | None]:
    """Return (lon, lat) from the ``long`` and ``lat`` fields, both or neither; refuse unusable ones."""
    lat, lon = _degrees(fields, "lat"), _degrees(fields, "long")
    if lat is None and lon is None:
        return None, None
    if lat is None or lon is None:
        missing = "lat" if lat is None else "long"
        raise InvalidParameterError(f"{missing} is missing: give both lat and long", parameter=missing)
    try:
        check_lon_lat(lon, lat)
    except ValueError as exc:
        field = "lat" if not -90 <= lat <= 90 else "long"
        raise InvalidParameterError(f"{field}: {exc}", parameter=field) from exc
    return lon, lat


def _full_name(first: str | None, last: str | None) -> str | None:
    """Join first and last name: family name first for Chinese names (张 + 三 → 张三)."""
    if not (first and last):
        return first or last
    chinese = any("\u2e80" <= char <= "\u9fff" for char in first + last)
    return f"{last}{first}" if chinese else f"{first} {last}"


def _reporter(fields: dict[str, Any]) -> Reporter:
    """Return the reporter's name and phone, checked as the REST API checks them."""
    name = _full_name(_text(fields, "first_name", 64), _text(fields, "last_name", 64))
    try:
        return Reporter(name=name, phone=_text(fields, "phone", 32))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "phone" if error["loc"] and error["loc"][0] == "phone" else "first_name"
        raise InvalidParameterError(f"{field}: {error['msg']}", parameter=field) from None


def _description(fields: dict[str, Any]) -> str | None:
    """Return the description, with the citizen's address_string kept as its suffix."""
    description = _text(fields, "description", MAX_DESCRIPTION)
    address = _text(fields, "address_string", 500)
    if address:
        description = f"{description}（地址：{address}）" if description else f"地址：{address}"
    if description and len(description) > MAX_DESCRIPTION:
        raise InvalidParameterError(f"description and address_string together exceed {MAX_DESCRIPTION} characters",
                                    parameter="description")
    return description


def to_input(fields: dict[str, Any], api_key: str | None) -> CaseInput:
    """Convert GeoReport request fields into the domain's input; refuse what cannot become a case."""
    code = _text(fields, "service_code", 16)
    if code is None:
        raise InvalidParameterError("service_code is required", parameter="service_code")
    lon, lat = _position(fields)
    component = _text(fields, COMPONENT_FIELD, 16)
    if component is not None and not (component.isascii() and component.isdigit() and len(component) == 16):
        raise InvalidParameterError(f"{COMPONENT_FIELD} must be a 16-digit component code", parameter=COMPONENT_FIELD)
    if lat is None and component is None:
        raise InvalidParameterError(f"lat and long are required unless {COMPONENT_FIELD} is given", parameter="lat")
    reporter = _reporter(fields)
    return CaseInput(category=code, lon=lon, lat=lat, description=_description(fields),
                     source="hotline" if api_key else "public", component_code=component,
                     reporter_name=reporter.name, reporter_phone=reporter.phone)


def discovery_document(base_url: str) -> dict[str, Any]:
    """Return the GeoReport discovery document, with the endpoint's URL built from the request's base URL."""
    endpoint = {"specification": SPECIFICATION, "url": base_url.rstrip("/") + router.prefix,
                "changeset": CHANGESET, "type": "production", "formats": ["application/json", "text/xml"]}
    return {"changeset": CHANGESET, "contact": CONTACT, "key_service": KEY_SERVICE, "endpoints": [endpoint]}


@router.get("/discovery.{fmt}", summary="GeoReport discovery: where the API is and what it speaks")
def discovery(fmt: FormatDep, request: Request) -> Response:
    """Return the discovery document."""
    return render(fmt, "discovery", discovery_document(str(request.base_url)))


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
    state = request.app.state
    limiter = getattr(state, "public_limiter", None)
    if limiter is None:
        settings = state.api_settings
        limiter = state.public_limiter = RateLimiter(settings.public_per_minute, settings.public_burst)
    wait = limiter.take(request.client.host if request.client else "unknown")
    if wait:
        raise TooManyRequestsError(f"too many public requests from this address; retry in {math.ceil(wait)} s",
                                   retry_after=math.ceil(wait))


@router.post("/requests.{fmt}", status_code=201, summary="Create a service request (form-encoded or JSON)")
def create(fmt: FormatDep, fields: SubmissionDep, request: Request, engine: EngineDep, ref: ReferenceDep,
           idempotency_key: IdempotencyKey = None) -> Response:
    """Create a case from a GeoReport request; a retry with the same Idempotency-Key gets the first one (200)."""
    api_key = _text(fields, "api_key", 256) or request.query_params.get("api_key") or None
    if not api_key:
        _limit_public(request)
    report = to_input(fields, api_key)
    with engine.begin() as conn:  # one transaction: a refusal leaves nothing stored
        actor, partner = "open311:public", None
        if api_key:
            partner = principal_for(conn, api_key, request.app.state.principals)
            if partner.role not in PARTNER_ROLES:
                raise ForbiddenError(f"an api_key of a {partner.role} account cannot submit requests")
            actor = f"open311:{partner.login}"
        case, created = create_case(conn, ref, report, actor, idempotency_key, by=partner,
                                    client=client_address(request))
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return render(fmt, "service_requests", [created_reply(case)], status=201 if created else 200, headers=headers)


@router.get("/requests.{fmt}", summary="Service requests, newest first, with GeoReport filters")
def requests(fmt: FormatDep, conn: ConnectionDep, ref: ReferenceDep, service_request_id: str | None = None,
             service_code: str | None = None, start_date: str | None = None, end_date: str | None = None,
             status: str | None = None, limit: str | None = None) -> Response:
    """Return requests in the date window (the last 90 days by default), at most 1000."""
    params = {"service_request_id": service_request_id, "service_code": service_code, "start_date": start_date,
              "end_date": end_date, "status": status, "limit": limit}
    return render(fmt, "service_requests", list_requests(conn, ref, parse_filter(params, datetime.now(UTC))))


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request")
def request_by_id(fmt: FormatDep, service_request_id: str, conn: ConnectionDep, ref: ReferenceDep) -> Response:
    """Return a one-element list holding the request."""
    return render(fmt, "service_requests", get_request(conn, ref, service_request_id))


@router.get("/tokens/{token}.{fmt}", summary="The service request id of a token (a case number)")
def token_lookup(fmt: FormatDep, token: str, conn: ConnectionDep) -> Response:
    """Return ``[{"service_request_id", "token"}]``."""
    return render(fmt, "service_requests", request_token(conn, token))


@router.get("/{path:path}", include_in_schema=False)
def unknown(path: str) -> Response:
    """Answer any other GET under ``/open311/v2/`` with a GeoReport 404 (registered last: it matches all)."""
    raise NotFoundError(f"no GeoReport resource at {path!r}", path=path)
