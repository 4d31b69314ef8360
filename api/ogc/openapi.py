"""The OGC API's OpenAPI 3.0 document, made self-contained.

pygeoapi's document points at response, parameter and schema definitions on schemas.opengis.net and
raw.githubusercontent.com. Governance-centre networks are often closed, and a validator or client that
cannot fetch them cannot read the document, so each remote ``$ref`` is replaced by a local one to an
equivalent definition under ``components`` (written from the OGC API Features Part 1 and CQL2 texts: the
response descriptions and media types, the parameters' names and places, links and exceptions).
``tests/integration/test_ogc.py`` validates the result with openapi-spec-validator, offline.
"""

from __future__ import annotations

import copy
from typing import Any

_GEOJSON = {"application/geo+json": {"schema": {"type": "object"}}}
_JSON = {"application/json": {"schema": {"type": "object"}}}
_EXCEPTION = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}

RESPONSES: dict[str, dict[str, Any]] = {
    "LandingPage": {"description": "The landing page: links to the API definition, conformance and collections.",
                    "content": _JSON},
    "Collection": {"description": "Information about the feature collection.", "content": _JSON},
    "Features": {"description": "A page of features (GeoJSON FeatureCollection) with its paging links.",
                 "content": _GEOJSON},
    "Feature": {"description": "One feature (GeoJSON Feature).", "content": _GEOJSON},
    "InvalidParameter": {"description": "A query parameter has an invalid value.", "content": _EXCEPTION},
    "NotFound": {"description": "The requested resource does not exist on the server.", "content": _EXCEPTION},
    "ServerError": {"description": "A server error occurred.", "content": _EXCEPTION},
}
PARAMETERS: dict[str, dict[str, Any]] = {
    "datetime": {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
                 "description": "An instant or an interval (RFC 3339, '..' for an open end).",
                 "schema": {"type": "string"}},
    "featureId": {"name": "featureId", "in": "path", "required": True, "description": "The id of a feature.",
                  "schema": {"type": "string"}},
    "sortby": {"name": "sortby", "in": "query", "required": False, "style": "form", "explode": False,
               "description": "Comma-separated properties, each with an optional + or - prefix.",
               "schema": {"type": "array", "items": {"type": "string", "pattern": "[+|-]?[A-Za-z_].*"}}},
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "link": {"type": "object", "required": ["href"],
             "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                            "hreflang": {"type": "string"}, "title": {"type": "string"},
                            "length": {"type": "integer"}}},
    "cql2": {"description": "A CQL2 expression (JSON encoding).", "type": "object"},
    "exception": {"type": "object", "required": ["type"],
                  "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                 "status": {"type": "integer"}, "detail": {"type": "string"},
                                 "instance": {"type": "string"}}},
}


def _local(ref: str) -> str:
    """The local reference standing for remote reference ``ref``."""
    fragment = ref.partition("#")[2]
    name = fragment.rsplit("/", 1)[-1] if fragment else ref.rsplit("/", 1)[-1].split(".")[0]
    if "/responses/" in fragment and name in RESPONSES:
        return f"#/components/responses/{name}"
    if ("/parameters/" in fragment or "/parameters/" in ref) and name in PARAMETERS:
        return f"#/components/parameters/{name}"
    if name in SCHEMAS:
        return f"#/components/schemas/{name}"
    if ref.endswith("cql2.json"):
        return "#/components/schemas/cql2"
    raise ValueError(f"no local definition stands for {ref}")


def self_contained(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose every ``$ref`` is local (see the module docstring)."""
    out = copy.deepcopy(document)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                node["$ref"] = _local(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    _add_patch(out)
    components = out.setdefault("components", {})
    for section, definitions in (("responses", RESPONSES), ("parameters", PARAMETERS), ("schemas", SCHEMAS)):
        target = components.setdefault(section, {})
        for name, definition in definitions.items():
            target.setdefault(name, copy.deepcopy(definition))
    return out


def _add_patch(document: dict[str, Any]) -> None:
    """Part 4 "update": pygeoapi documents PUT but not PATCH; ours takes a JSON merge patch (RFC 7396) of the
    feature, with the same parameters, answers and If-Match rule as PUT."""
    for path, operations in document.get("paths", {}).items():
        post = operations.get("post")
        operation = str(post.get("operationId", "")) if post is not None else ""
        if operation.startswith("getCQL2") and "OrAdd" not in operation:
            # CQL2 JSON searches by POST are not served (POST on items creates; CQL2 text runs through GET).
            del operations["post"]
        put = operations.get("put")
        if put is None or "patch" in operations:
            continue
        patch = copy.deepcopy(put)
        patch["summary"] = "Update a feature with a JSON merge patch (RFC 7396)"
        patch["description"] = ("Members of the body replace those of the feature, null removes one; send the "
                                "item's ETag in If-Match.")
        patch["operationId"] = str(put.get("operationId", path)).replace("update", "patch").replace("put", "patch")
        if patch["operationId"] == put.get("operationId"):
            patch["operationId"] += "Patch"
        patch["requestBody"] = {"required": True, "content": {
            media: {"schema": {"type": "object"}} for media in ("application/merge-patch+json", "application/json")}}
        operations["patch"] = patch
