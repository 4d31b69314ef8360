"""The lean intake layer (api/fast_intake.py) answers plain intake itself and exactly as the route would;
everything else reaches the FastAPI route. The whole contract of POST /api/v1/cases (test_api_cases.py)
runs through it too."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import api.routes.cases
from spatial.cases.schemas import CASE_PUBLIC, case_json
from tests.world import case_count

GOOD = {"category": "E010101", "location": {"type": "Point", "coordinates": [120.06, 31.17]},
        "description": "路边暴露垃圾", "source": "inspector"}


@pytest.fixture
def route_calls(monkeypatch) -> list[str | None]:
    """Record each time the FastAPI route's domain call runs (with its Idempotency-Key)."""
    calls: list[str | None] = []
    real = api.routes.cases.create_case

    def recorded(conn, ref, report, *, idempotency_key=None, **rest):
        calls.append(idempotency_key)
        return real(conn, ref, report, idempotency_key=idempotency_key, **rest)

    monkeypatch.setattr(api.routes.cases, "create_case", recorded)
    return calls


def test_plain_intake_never_reaches_the_route(client: TestClient, route_calls, world_engine) -> None:
    reply = client.post("/api/v1/cases", json=GOOD)
    assert reply.status_code == 201 and route_calls == []
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["location"] == f"/api/v1/cases/{reply.json()['id']}"
    assert case_count(world_engine) == 1


def test_the_layer_and_the_route_answer_alike(client: TestClient, route_calls) -> None:
    lean = client.post("/api/v1/cases", json=GOOD)
    keyed = client.post("/api/v1/cases", json={**GOOD, "category": "E010102"}, headers={"Idempotency-Key": "k-1"})
    assert route_calls == ["k-1"]
    assert (lean.status_code, keyed.status_code) == (201, 201)
    a, b = lean.json(), keyed.json()
    assert a.keys() == b.keys()
    same = ("state", "source", "description", "location", "grid", "community", "town", "district",
            "special_grids", "owner", "component", "duplicate_of", "closed_at")
    assert {k: a[k] for k in same} == {k: b[k] for k in same}
    assert client.get(f"/api/v1/cases/{a['id']}").json()["case_no"] == a["case_no"]


def test_bodies_that_do_not_validate_are_worded_by_the_route(client: TestClient, route_calls) -> None:
    reply = client.post("/api/v1/cases", json={**GOOD, "source": "pigeon"})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["errors"][0]["loc"] == ["body", "source"]  # FastAPI's wording, from the route
    broken = client.post("/api/v1/cases", content=b'{"category": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.headers["content-type"] == "application/problem+json"
    assert route_calls == []  # refused before the domain call


def test_domain_refusals_are_the_apps_problems(client: TestClient, world_engine) -> None:
    outside = client.post("/api/v1/cases", json={**GOOD, "location": {"type": "Point", "coordinates": [121.5, 31.1]}})
    body = outside.json()
    assert outside.status_code == 422 and outside.headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/outside-coverage") and body["instance"] == "/api/v1/cases"
    assert "nearest_grid" in body
    assert case_count(world_engine) == 0


def test_the_size_limit_still_applies_to_a_streamed_body(client: TestClient, world_engine) -> None:
    def chunks():
        yield b'{"category": "E010101", "description": "'
        for _ in range(2_000):
            yield b"x" * 1_000
        yield b'"}'

    reply = client.post("/api/v1/cases", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and reply.headers["content-type"] == "application/problem+json"
    assert case_count(world_engine) == 0


def test_the_layer_and_the_route_write_the_reply_alike(client: TestClient, route_calls) -> None:
    """Both paths write the reply model with its one serializer: compact UTF-8 JSON, times as ISO 8601 with
    their offset, ``reporter`` and ``history`` absent."""
    lean = client.post("/api/v1/cases", json=GOOD)
    keyed = client.post("/api/v1/cases", json={**GOOD, "category": "E010102"}, headers={"Idempotency-Key": "k-2"})
    assert route_calls == ["k-2"]
    for reply in (lean, keyed):
        assert reply.content == case_json(CASE_PUBLIC.validate_python(reply.json()))
        assert '"description":"路边暴露垃圾"'.encode() in reply.content  # UTF-8 as is, no \\u escapes
        assert "reporter" not in reply.json() and "history" not in reply.json()
