"""Reading credentials (api/auth.py) and authenticating before the body is read, without a database."""

from __future__ import annotations

import base64
from typing import Annotated

import pytest
from fastapi import APIRouter, Body, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import problems
from api.auth import AuthenticatedRoute, PrincipalDep, header_token
from spatial.access.accounts import PrincipalCache
from spatial.access.principal import Principal


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc123", "abc123"),
    ("bearer abc123", "abc123"),                      # the scheme is case-insensitive (RFC 9110 §11.1)
    ("BEARER  abc123 ", "abc123"),
    (_basic("token:abc123"), "abc123"),               # QGIS: any user name, the token as password
    (_basic(":abc123"), "abc123"),
    (_basic("user:pa:ss"), "pa:ss"),                  # a colon in the password stays
    (_basic("abc123"), None),                         # no colon: no password
    (_basic("token:"), None),
    ("Basic !!!not-base64", None),
    ("Basic " + base64.b64encode(b"t:\xff\xfe").decode(), None),  # not UTF-8
    ("Bearer", None), ("Bearer ", None), ("Basic", None),
    ("Token abc123", None), ("Digest abc123", None), ("abc123", None),
    ("", None),
])
def test_header_token(header: str, token: str | None) -> None:
    assert header_token(header) == token


class Thing(BaseModel):
    """A body to validate."""

    size: int


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    # No database: the one known token is in the principal cache, which is asked first.
    app.state.principals, app.state.secret, app.state.engine = PrincipalCache(), b"secret", None
    app.state.principals.put("known", Principal(1, "someone", "admin", "*"))
    early = APIRouter(route_class=AuthenticatedRoute)

    @early.post("/early")
    def early_route(thing: Annotated[Thing, Body()], principal: PrincipalDep) -> dict[str, object]:
        return {"size": thing.size, "login": principal.login}

    @early.post("/public")
    def public_route(thing: Annotated[Thing, Body()]) -> dict[str, int]:
        return {"size": thing.size}

    plain = APIRouter()

    @plain.post("/late")
    def late_route(thing: Annotated[Thing, Body()], principal: PrincipalDep) -> dict[str, int]:
        return {"size": thing.size}

    app.include_router(early)
    app.include_router(plain)
    return app


@pytest.mark.parametrize("body", [b"{not json", b'{"size": "big"}', b"[]"])
def test_an_authenticated_route_asks_who_before_it_reads_the_body(body: bytes) -> None:
    json_headers = {"Content-Type": "application/json"}
    with TestClient(_app()) as client:
        anonymous = client.post("/early", content=body, headers=json_headers)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
        known = client.post("/early", content=body, headers={**json_headers, "Authorization": "Bearer known"})
        assert known.status_code == 422
        assert client.post("/public", content=body, headers=json_headers).status_code == 422
    # Why the route class exists: FastAPI decodes a JSON body before it runs dependencies.
    with TestClient(_app()) as client:
        assert client.post("/late", content=b"{not json", headers=json_headers).status_code == 422


def test_an_authenticated_route_still_serves() -> None:
    with TestClient(_app()) as client:
        reply = client.post("/early", json={"size": 3}, headers={"Authorization": "Bearer known"})
        assert reply.status_code == 200 and reply.json() == {"size": 3, "login": "someone"}
        assert client.post("/public", json={"size": 4}).json() == {"size": 4}
