"""Hostile input (issue 23, findings 9 and 10): whatever a caller sends, the answer is a precise 4xx — a
problem document, an OGC exception under ``/ogc``, a GeoReport error under ``/open311`` — never a 500, and a
refused write stores nothing.

The first tests pin each finding; ``test_the_corpus`` then drives a table of hostile values (control
characters, NUL, oversized and deeply nested values, huge numbers, NaN, calendar edges, wrong types) into
every parameter of every route the OpenAPI documents list (FastAPI's for REST and Open311, pygeoapi's for
``/ogc``) plus the tiles, through every interface, as an administrator (who may reach every route).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import admin_headers


@pytest.fixture(scope="module")
def hostile(world_engine: Engine) -> Iterator[TestClient]:
    """The app on the world as an administrator, answering server errors as responses (not raising them)."""
    from api.app import create_app

    app = create_app(url=world_engine.url.render_as_string(hide_password=False))
    with TestClient(app, headers=admin_headers(), raise_server_exceptions=False) as client:
        yield client


def _refused(reply, *statuses: int) -> None:
    assert reply.status_code in statuses, (reply.status_code, reply.text[:300])


# -- finding 9: NUL bytes in query parameters, path ids and JSON strings ------------------------------------

NUL_IN_PARAMETERS = [
    ("GET", "/api/v1/cases?state=%00"),
    ("GET", "/api/v1/cases?category=E01%00"),
    ("GET", "/api/v1/locate?lon=120.1%00&lat=31.1"),
    ("GET", "/api/v1/cases/1%00"),
    ("GET", "/open311/v2/tokens/2024%00.json"),
    ("GET", "/open311/v2/tokens/2024%00.xml"),
    ("GET", "/open311/v2/requests.json?service_code=E%00"),
    ("GET", "/ogc/collections/grids/items/320506001001001%00"),
    ("GET", "/ogc/collections/grids/items?name=%00"),
    ("GET", "/ogc/collections/grids/items?filter=name%20%3D%20%27a%00%27"),
    ("GET", "/tiles/cases.json?state=%00"),
]


@pytest.mark.parametrize(("method", "url"), NUL_IN_PARAMETERS)
def test_nul_in_parameters_and_path_ids_is_a_400(hostile: TestClient, method: str, url: str) -> None:
    reply = hostile.request(method, url)
    _refused(reply, 400, 404, 422)
    if url.startswith("/ogc"):
        assert reply.json()["code"] in ("InvalidParameterValue", "NotFound", "InvalidQuery")
    elif url.startswith("/open311"):
        body = reply.json() if url.endswith(".json") else None
        assert body is None or body[0]["code"] == reply.status_code
        if url.endswith(".xml"):
            ET.fromstring(reply.content)
    else:
        assert reply.headers["content-type"] == "application/problem+json"
