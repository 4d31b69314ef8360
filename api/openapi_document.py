"""The REST API's OpenAPI document, made self-explaining (issue 24, item 2).

FastAPI's generated document is kept and completed:

- **Security schemes**: ``bearer`` (``Authorization: Bearer <token>``), ``oauth2`` (the password flow at
  ``/api/v1/auth/token``, so the Authorize button of ``/docs`` logs in with a login and password) and, for
  ``/open311``, GeoReport's ``api_key``. An operation that needs an account (``api.auth.needs_account``)
  requires one of them and documents its 401 and 403 problem documents; one that reads optional credentials
  lists them next to anonymous access (``{}``).
- **Bodies FastAPI cannot see** (the routes read them themselves): the bulk batch (GeoJSON or CSV), the
  Open311 form, uploads, merge patches — ``api.openapi_examples.BODIES``.
- **Examples** on every operation (``api.openapi_examples.EXAMPLES``): request bodies and success replies; and
  refusals as they really are: FastAPI's 422 ``HTTPValidationError`` is replaced by the RFC 9457 problem
  document gridlink answers (``api/problems.py``), GeoReport error lists under ``/open311``.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.auth import needs_account, optional_principal
from api.openapi_examples import BODIES, EXAMPLES, GEOREPORT_ERRORS, PROBLEMS, SCHEMAS
from api.problems import PROBLEM_JSON

TOKEN_URL = "/api/v1/auth/token"
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": f"A token from POST {TOKEN_URL} or "
                                                                  "`gridlink token create`."},
    "oauth2": {"type": "oauth2", "description": "Login and password, exchanged for a bearer token.",
               "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}}},
    "open311_key": {"type": "apiKey", "in": "query", "name": "api_key",
                    "description": "GeoReport v2's api_key: a partner account's token."},
}
ACCOUNT: list[dict[str, list[str]]] = [{"bearer": []}, {"oauth2": []}]
OPTIONAL_ACCOUNT = [{}, *ACCOUNT]
OPEN311 = [{}, {"open311_key": []}, *ACCOUNT]


def install(app: FastAPI) -> None:
    """Serve ``document(app)`` at ``app.openapi_url`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document of ``app``, with security schemes, bodies, examples and problem documents."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update(copy.deepcopy(SCHEMAS))
    components["schemas"].pop("HTTPValidationError", None)
    components["schemas"].pop("ValidationError", None)
    components["securitySchemes"] = SECURITY_SCHEMES
    # The routes as get_openapi walks them: FastAPI keeps included routers whole, each route under its prefix.
    for context in routing.iter_route_contexts(app.routes):
        route, path = context.original_route, context.path_format
        if not isinstance(route, APIRoute) or not route.include_in_schema or not path or path not in doc["paths"]:
            continue
        for method in sorted(set(context.methods or ()) - {"HEAD", "OPTIONS"}):
            key = (method.lower(), path)
            operation = doc["paths"][path][key[0]]
            _secure(operation, route, path)
            _refusals(operation, path)
            if key in BODIES:
                operation["requestBody"] = copy.deepcopy(BODIES[key])
            _examples(operation, EXAMPLES.get(key, {}))
    return doc


def _secure(operation: dict[str, Any], route: APIRoute, path: str) -> None:
    if path.startswith("/open311/"):
        operation["security"] = OPEN311
    elif needs_account(route.dependant):
        operation["security"] = ACCOUNT
        for status in (401, 403):
            operation["responses"][str(status)] = _problem_reply(status)
    elif any(d.call is optional_principal for d in route.dependant.dependencies):
        operation["security"] = OPTIONAL_ACCOUNT
        operation["responses"]["401"] = _problem_reply(401)


def _refusals(operation: dict[str, Any], path: str) -> None:
    responses = operation["responses"]
    responses.pop("422", None)
    if path.startswith("/open311/"):
        for status, errors in GEOREPORT_ERRORS.items():
            responses[str(status)] = {"description": "GeoReport error list", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/GeoReportError"}, "example": errors}}}
        return
    responses["422"] = _problem_reply(422, "outside" if path in ("/api/v1/cases", "/api/v1/locate") else 422)


def _problem_reply(status: int, example: int | str | None = None) -> dict[str, Any]:
    return {"description": {401: "No valid credentials", 403: "The account may not do this",
                            422: "The request is not valid (problem document)"}.get(status, "Refused"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"},
                                       "example": PROBLEMS[example or status]}}}


def _examples(operation: dict[str, Any], examples: dict[str, Any]) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    for media, value in examples.get("request", {}).items():
        content.setdefault(media, {"schema": {"type": "object"}})["example"] = value
    for status, value in examples.get("responses", {}).items():
        reply = operation["responses"].setdefault(str(status), {"description": "Successful Response"})
        if value is None:  # 204: nothing to show
            reply.pop("content", None)
            continue
        media = reply.setdefault("content", {"application/json": {"schema": {}}})
        for entry in media.values():
            entry["example"] = value
