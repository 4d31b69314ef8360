"""OGC API Features Part 4 on /ogc: create (POST), replace (PUT), update (PATCH, a JSON merge patch of the
feature, RFC 7396) and delete (DELETE) components, special grids and base grids (spatial/components/edits.py,
spatial/grids/special_edits.py, spatial/grids/edits.py — base grids partition their community, so a base-grid
edit grows, splits or merges grids and never leaves a gap or an overlap). Districts, towns and communities
are read-only here.

Every write needs a bearer token (``Authorization: Bearer …``); who may edit what is the rule of
spatial/access/scope.py. Optimistic concurrency: a GET of an item answers an ``ETag`` (a component's
revision, a grid's version); PUT, PATCH and DELETE must send it back in ``If-Match`` — without it 428, with a
stale one 412 — so two editors never overwrite each other unseen.

Who you are and what you may do is decided before the preconditions and the body (RFC 9110 §13.2.1: a
precondition is evaluated only when the request would otherwise succeed), in this order: a read-only
collection 405 → no valid token 401 → a role that may not edit the collection 403 → for PUT, PATCH and
DELETE, an item the caller may not edit 403 (an unknown one 404) → no ``If-Match`` 428 → a body too large
413 or not a feature 400 → the edit, whose domain function asks the same rules again in its transaction and
compares ``If-Match`` (412). Errors use the OGC exception format of the rest of /ogc (api/problems.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import Engine, text
from starlette.requests import Request
from starlette.responses import Response

from api.auth import client_address, request_token
from api.problems import ogc_errors
from spatial import features
from spatial.access.accounts import principal_for
from spatial.access.audit import Actor, record
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_collection
from spatial.components import edits
from spatial.errors import (
    AuthenticationError,
    InvalidParameterError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    PreconditionRequiredError,
)
from spatial.grids import edits as base
from spatial.grids import special_edits as grids

# Collection → the property that is its items' ETag.
ETAG_PROPERTY = {"components": "revision", "special-grids": "version_id", "grids": "version_id"}
EDITABLE = tuple(ETAG_PROPERTY)
# Collection → who may edit one of its stored items (NotFoundError for an unknown item, ForbiddenError).
CHECK_EDITOR = {"components": edits.check_editor, "special-grids": grids.check_editor, "grids": base.check_editor}
MAX_BODY = 2_000_000


def _etag(revision: int) -> str:
    return f'"{revision}"'


def _if_match(request: Request) -> int | None:
    value = request.headers.get("if-match", "").strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


@ogc_errors
async def write(engine: Engine, request: Request, action: str) -> Response:
    """Serve one Part 4 write (``create``, ``put``, ``patch`` or ``delete``), checks in the order of the module
    docstring."""
    collection = request.path_params["collection"]
    if collection not in EDITABLE:
        raise MethodNotAllowedError(f"collection {collection!r} is read-only here")
    token = request_token(request)
    if token is None:
        raise AuthenticationError("editing needs a bearer token: POST /api/v1/auth/token")
    principal = await asyncio.to_thread(_authorise, engine, request, token, action)
    expected = _if_match(request)
    if action != "create" and expected is None:
        raise PreconditionRequiredError("send If-Match with the ETag of the item you read (GET)")
    body = await request.body() if action != "delete" else b""
    if len(body) > MAX_BODY:
        raise PayloadTooLargeError(f"a feature may not exceed {MAX_BODY:,} bytes")
    return await asyncio.to_thread(_apply, engine, request, principal, action, body, expected)


def _authorise(engine: Engine, request: Request, token: str, action: str) -> Principal:
    """The caller's account, once it may edit the collection and, for a stored item, this item."""
    collection = request.path_params["collection"]
    with engine.connect() as conn:
        principal = principal_for(conn, token, request.app.state.principals)
        check_edit_collection(principal, collection)
        if action != "create":
            CHECK_EDITOR[collection](conn, principal, request.path_params["item"])
    return principal


def _apply(engine: Engine, request: Request, principal: Principal, action: str, body: bytes,
           expected: int | None) -> Response:
    collection = request.path_params["collection"]
    with engine.begin() as conn:  # the edit, its checks and its audit row: all or nothing
        if action == "patch":  # a JSON merge patch (RFC 7396) of the current feature, then a replace
            body = json.dumps(_patched(conn, collection, request.path_params["item"], body)).encode()
        response = _dispatch(conn, principal, request, collection, "put" if action == "patch" else action, body,
                             expected)
        target = request.path_params.get("item") or response.headers["location"].rsplit("/", 1)[-1]
        kind = {"special-grids": "special_grid", "grids": "base_grid"}.get(collection, "component")
        record(conn, Actor.of(principal, client_address(request)), f"{kind}.{action}",
               target=target, detail={"etag": response.headers.get("etag"), "if_match": expected})
        return response


def _dispatch(conn, principal, request: Request, collection: str, action: str, body: bytes,
              expected: int | None) -> Response:
    if collection == "special-grids":
        return _special_grid(conn, principal, request, action, body, expected or 0)
    if collection == "grids":
        return _base_grid(conn, principal, request, action, body, expected or 0)
    if action == "delete":
        edits.delete(conn, principal, request.path_params["item"], expected_revision=expected or 0)
        return Response(status_code=204)
    feature = _json(body)
    if action == "create":  # without a code: the next free one of its district and class (issue 24)
        item = edits.parse_feature(conn, edits.assign_code(conn, feature))
        return _created(conn, request, item.code, edits.create(conn, principal, item))
    item = edits.parse_feature(conn, feature, request.path_params["item"])
    revision = edits.replace(conn, principal, item, expected_revision=expected or 0)
    return Response(status_code=204, headers={"ETag": _etag(revision)})


def _special_grid(conn, principal, request: Request, action: str, body: bytes, expected: int) -> Response:
    if action == "delete":
        grids.retire(conn, principal, request.path_params["item"], expected=expected)
        return Response(status_code=204)
    code, name, shape = grids.parse_feature(conn, _json(body), request.path_params.get("item"))
    if action == "create":
        return _created(conn, request, code, grids.create(conn, principal, code=code, name=name, multi=shape))
    version = grids.replace(conn, principal, code=code, name=name, multi=shape, expected=expected)
    return Response(status_code=204, headers={"ETag": _etag(version)})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: members of ``patch`` replace those of ``target``, ``null`` removes one, objects merge."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _patched(conn, collection: str, code: str, body: bytes) -> dict[str, Any]:
    patch = _json(body)
    if not isinstance(patch, dict):
        raise InvalidParameterError("a PATCH body is a JSON merge patch (RFC 7396) of the feature: an object",
                                    parameter="body")
    current = features.one(conn, features.layer(collection), code)
    if collection == "components":  # the note is editable but not shown in the collection's properties
        current["properties"]["note"] = conn.execute(text("SELECT note FROM component WHERE code = :c"),
                                                     {"c": code}).scalar()
    return merge_patch(current, patch)


def _base_grid(conn, principal, request: Request, action: str, body: bytes, expected: int) -> Response:
    # Base grids partition their community: spatial/grids/edits.py keeps it whole (grow, split, merge).
    if action == "delete":
        base.merge(conn, principal, request.path_params["item"], expected=expected)
        return Response(status_code=204)
    code, name, shape = base.parse_feature(_json(body), request.path_params.get("item"))
    if action == "create":
        return _created(conn, request, code, base.create(conn, principal, code=code, name=name, multi=shape))
    version = base.replace(conn, principal, code=code, name=name, multi=shape, expected=expected)
    return Response(status_code=204, headers={"ETag": _etag(version)})


def _created(conn, request: Request, code: str, tag: int) -> Response:
    """201 with the new item's URL in ``Location`` and the item, as stored, in the body (its code, assigned
    or given, among its properties)."""
    location = f"{str(request.url).split('?')[0].rstrip('/')}/{code}"
    item = features.one(conn, features.layer(request.path_params["collection"]), code)
    return Response(json.dumps(item, ensure_ascii=False), status_code=201, media_type="application/geo+json",
                    headers={"Location": location, "ETag": _etag(tag)})


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: [[[…]]] nested 10,000 deep
        raise InvalidParameterError("the body must be a GeoJSON Feature (JSON)", parameter="body") from exc


def with_etag(request: Request, response: Response) -> Response:
    """Give a component item its ETag (its revision), and answer 304 to a matching If-None-Match."""
    if request.path_params.get("collection") not in EDITABLE or response.status_code != 200:
        return response
    if "json" not in response.headers.get("content-type", ""):
        return response
    name = ETAG_PROPERTY[request.path_params["collection"]]
    revision = (json.loads(bytes(response.body)).get("properties") or {}).get(name)
    if revision is None:
        return response
    tag = _etag(int(revision))
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return response
