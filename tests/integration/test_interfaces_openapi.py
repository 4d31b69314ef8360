"""The REST API's OpenAPI document explains itself (issue 24, item 2): it validates, declares the security
schemes /docs' Authorize button uses, and every operation carries examples — which are checked against the
server: the body examples are sent and accepted, the GET examples have the keys real replies have."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from tests.conftest import TEST_ADMIN, TEST_PASSWORD


@pytest.fixture(scope="module")
def doc(world_client: TestClient) -> dict[str, Any]:
    reply = world_client.get("/openapi.json")
    assert reply.status_code == 200
    return reply.json()


def _operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _example(operation: dict[str, Any], status: str) -> Any:
    content = operation["responses"][status].get("content", {})
    return next(iter(media["example"] for media in content.values()))


def test_the_document_validates(doc: dict[str, Any]) -> None:
    validate(doc)  # OpenAPI 3.1 (openapi-spec-validator); raises on the first error
    assert len(list(_operations(doc))) >= 40


def test_every_operation_carries_an_example(doc: dict[str, Any]) -> None:
    lacking = []
    for method, path, operation in _operations(doc):
        body = operation.get("requestBody", {}).get("content", {})
        # A file upload's bytes have no example to show (its schema says binary; the description says which files).
        bodies = [media for media, entry in body.items()
                  if "example" not in entry and entry.get("schema", {}).get("format") != "binary"]
        success = [status for status in operation["responses"] if status.startswith("2")]
        replies = [status for status in success if operation["responses"][status].get("content")
                   and not all("example" in e for e in operation["responses"][status]["content"].values())]
        bare_delete = success == ["204"] and not body and method == "delete"  # nothing to show either way
        if (bodies or replies or not success or (success == ["204"] and not body)) and not bare_delete:
            lacking.append((method, path, bodies, replies))
        for status, reply in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert all("example" in entry for entry in reply.get("content", {}).values()), (method, path, status)
    assert lacking == []


def test_refusals_are_documented_as_problem_documents(doc: dict[str, Any]) -> None:
    case_list = doc["paths"]["/api/v1/cases"]["get"]["responses"]
    for status in ("401", "403", "422"):
        assert list(case_list[status]["content"]) == ["application/problem+json"]
        assert _example(doc["paths"]["/api/v1/cases"]["get"], status)["status"] == int(status)
    assert "HTTPValidationError" not in json.dumps(doc)  # FastAPI's 422 shape is not what gridlink answers
    open311 = doc["paths"]["/open311/v2/requests.{fmt}"]["post"]["responses"]
    assert _example(doc["paths"]["/open311/v2/requests.{fmt}"]["post"], "400")[0]["code"] == 400
    assert "422" not in open311


def test_the_security_schemes_match_what_the_routes_ask(doc: dict[str, Any], world_client: TestClient) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    anonymous = TestClient(world_client.app)
    for method, path in (("get", "/api/v1/cases"), ("get", "/api/v1/inbox"), ("get", "/api/v1/kpi"),
                         ("get", "/api/v1/plans"), ("get", "/api/v1/components")):
        assert doc["paths"][path][method]["security"] == [{"bearer": []}, {"oauth2": []}]
        assert anonymous.request(method, path).status_code == 401
    for path, real in (("/api/v1/stats", None), ("/api/v1/health", None), ("/tiles/{layer}.json", "/tiles/grids.json")):
        assert "security" not in doc["paths"][path]["get"]
        assert anonymous.get(real or path).status_code == 200


def test_the_password_flow_answers_as_swagger_ui_expects(world_client: TestClient) -> None:
    anonymous = TestClient(world_client.app)
    token = anonymous.post("/api/v1/auth/token", data={"username": TEST_ADMIN, "password": TEST_PASSWORD}).json()
    assert token["token_type"] == "bearer"
    assert anonymous.get("/api/v1/cases", headers={"Authorization": f"Bearer {token['access_token']}"}
                         ).status_code == 200


def _request_example(doc: dict[str, Any], method: str, path: str, media: str) -> Any:
    return doc["paths"][path][method]["requestBody"]["content"][media]["example"]


def test_the_body_examples_are_accepted(doc: dict[str, Any], client: TestClient) -> None:
    report = _request_example(doc, "post", "/api/v1/cases", "application/json")
    assert client.post("/api/v1/cases", json=report).status_code == 201
    csv_batch = _request_example(doc, "post", "/api/v1/cases/bulk", "text/csv")
    reply = client.post("/api/v1/cases/bulk", content=csv_batch.encode(), headers={"Content-Type": "text/csv"})
    expected = _example(doc["paths"]["/api/v1/cases/bulk"]["post"], "200")
    assert reply.status_code == 200
    assert [r["status"] for r in reply.json()["results"]] == [r["status"] for r in expected["results"]]
    geojson = _request_example(doc, "post", "/api/v1/cases/bulk", "application/geo+json")
    reply = client.post("/api/v1/cases/bulk", content=json.dumps(geojson),
                        headers={"Content-Type": "application/geo+json"})
    assert reply.status_code == 200 and reply.json()["received"] == len(geojson["features"])
    assert reply.json()["results"][0]["status"] in ("created", "duplicate")
    form = _request_example(doc, "post", "/open311/v2/requests.{fmt}", "application/x-www-form-urlencoded")
    assert TestClient(client.app).post("/open311/v2/requests.json", data=form).status_code == 201
    plan = _request_example(doc, "post", "/api/v1/plans", "application/json")
    created = client.post("/api/v1/plans", json=plan)
    assert created.status_code == 201 and created.json().keys() == _example(
        doc["paths"]["/api/v1/plans"]["post"], "201").keys()
    edit = _request_example(doc, "post", "/api/v1/plans/{plan_id}/edits", "application/json")
    assert client.post(f"/api/v1/plans/{created.json()['id']}/edits", json=edit).status_code == 200
    assert client.post(f"/api/v1/plans/{created.json()['id']}/cancel").status_code in (200, 409)


@pytest.mark.parametrize(("path", "real"), [
    ("/api/v1/locate", "/api/v1/locate?lon=120.06&lat=31.17"), ("/api/v1/areas", "/api/v1/areas?level=4"),
    ("/api/v1/stats", None), ("/api/v1/health", None), ("/api/v1/cases", None), ("/api/v1/inbox", None),
    ("/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}"), ("/api/v1/kpi", "/api/v1/kpi?group=town"),
    ("/api/v1/components", None), ("/api/v1/grids/{code}/history", "/api/v1/grids/320506001001001/history"),
    ("/open311/v2/discovery.{fmt}", "/open311/v2/discovery.json"),
    ("/open311/v2/services/{service_code}.{fmt}", "/open311/v2/services/E010101.json"),
    ("/open311/v2/requests.{fmt}", "/open311/v2/requests.json"), ("/tiles/{layer}.json", "/tiles/grids.json"),
])
def test_the_get_examples_have_the_keys_of_real_replies(doc: dict[str, Any], client: TestClient, path: str,
                                                         real: str | None) -> None:
    report = _request_example(doc, "post", "/api/v1/cases", "application/json")
    case_id = client.post("/api/v1/cases", json=report).json()["id"]
    reply = client.get((real or path).replace("{case_id}", str(case_id)))
    assert reply.status_code == 200, reply.text
    example, answer = _example(doc["paths"][path]["get"], "200"), reply.json()
    if isinstance(answer, list):
        example, answer = example[0], answer[0]
    assert set(example) == set(answer)
    for key in ("features", "cases", "groups", "versions"):
        if answer.get(key):
            assert set(example[key][0]) == set(answer[key][0])
