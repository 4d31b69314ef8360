"""GeoReport v2 request fields: a submitted service request (form-encoded or JSON) read, checked and turned
into the report every channel makes (``spatial.cases.schemas.CaseCreate``). Every refusal is an
``InvalidParameterError`` naming the GeoReport field (an unknown service code: the domain's unknown-category
error), answered by the GeoReport route in GeoReport's error format."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import ValidationError

from spatial.cases.assignment.rules import unknown_category
from spatial.cases.schemas import MAX_DESCRIPTION, CaseCreate, PointGeometry, Reporter
from spatial.codes import COMPONENT_CODE
from spatial.errors import InvalidParameterError, InvalidTextError, UnsupportedMediaTypeError
from spatial.geo.coords import coordinate_problem
from spatial.text import text_problem

FORM_MEDIA = "application/x-www-form-urlencoded"
COMPONENT_FIELD = "attribute[component_code]"


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
        except RecursionError:  # nested deeper than the parser's stack (issue 23: [[[…]]] 10,000 deep)
            raise InvalidParameterError("the body is nested too deeply to be GeoReport fields",
                                        parameter="body") from None
        if not isinstance(data, dict):
            raise InvalidParameterError("the JSON body must be an object of GeoReport fields", parameter="body")
        attributes = data.pop("attribute", None)  # {"attribute": {"component_code": …}} as well as the flat key
        if isinstance(attributes, dict):
            data.update({f"attribute[{key}]": value for key, value in attributes.items()})
        return data
    raise UnsupportedMediaTypeError(
        f"send the request as {FORM_MEDIA} or application/json, not {media or 'no content type'!r}",
        media_type=media)


def text_field(fields: dict[str, Any], name: str, max_length: int) -> str | None:
    """Return field ``name`` as stripped text (None when absent or blank); refuse non-text, overlong and text
    holding characters that cannot be stored or sent as XML (422, as the REST API refuses them)."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidParameterError(f"{name} must be text", parameter=name)
    value = str(value).strip()
    problem = text_problem(value)
    if problem:
        raise InvalidTextError(f"{name} {problem}", parameter=name)
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
    problem = coordinate_problem(lon, lat)
    if problem:
        field = "lat" if not -90 <= lat <= 90 else "long"
        raise InvalidParameterError(f"{field}: {problem}", parameter=field)
    return lon, lat


def _full_name(first: str | None, last: str | None) -> str | None:
    """Join first and last name: family name first for Chinese names (张 + 三 → 张三)."""
    if not (first and last):
        return first or last
    chinese = any("\u2e80" <= char <= "\u9fff" for char in first + last)
    return f"{last}{first}" if chinese else f"{first} {last}"


def _reporter(fields: dict[str, Any]) -> Reporter:
    """Return the reporter's name and phone, checked as the REST API checks them."""
    name = _full_name(text_field(fields, "first_name", 64), text_field(fields, "last_name", 64))
    try:
        return Reporter(name=name, phone=text_field(fields, "phone", 32))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "phone" if error["loc"] and error["loc"][0] == "phone" else "first_name"
        raise InvalidParameterError(f"{field}: {error['msg']}", parameter=field) from None


def _description(fields: dict[str, Any]) -> str | None:
    """Return the description, with the citizen's address_string kept as its suffix."""
    description = text_field(fields, "description", MAX_DESCRIPTION)
    address = text_field(fields, "address_string", 500)
    if address:
        description = f"{description}（地址：{address}）" if description else f"地址：{address}"
    if description and len(description) > MAX_DESCRIPTION:
        raise InvalidParameterError(f"description and address_string together exceed {MAX_DESCRIPTION} characters",
                                    parameter="description")
    return description


def to_report(fields: dict[str, Any], api_key: str | None) -> CaseCreate:
    """Turn GeoReport request fields into the report; refuse what cannot become a case, naming the field."""
    code = text_field(fields, "service_code", 16)
    if code is None:
        raise InvalidParameterError("service_code is required", parameter="service_code")
    lon, lat = _position(fields)
    component = text_field(fields, COMPONENT_FIELD, 16)
    if component is not None and not COMPONENT_CODE.fullmatch(component):
        raise InvalidParameterError(f"{COMPONENT_FIELD} must be a 16-digit component code", parameter=COMPONENT_FIELD)
    if lat is None and component is None:
        raise InvalidParameterError(f"lat and long are required unless {COMPONENT_FIELD} is given", parameter="lat")
    reporter = _reporter(fields)
    location = PointGeometry(type="Point", coordinates=[lon, lat]) if lon is not None and lat is not None else None
    try:
        return CaseCreate(category=code, location=location, description=_description(fields),
                          source="hotline" if api_key else "public", component_code=component, reporter=reporter)
    except ValidationError as exc:
        # The other fields were checked above, in GeoReport's words. A service code not even shaped like a
        # category code is an unknown category, as the category table would have said.
        error = exc.errors()[0]
        if error["loc"] == ("category",):
            raise unknown_category(code) from None
        raise InvalidParameterError(f"{error['loc'][0] if error['loc'] else 'body'}: {error['msg']}",
                                    parameter="body") from None
