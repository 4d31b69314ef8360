"""The map's API on the small demo: GeoJSON by level and bbox, counts, and problem+json refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app


@pytest.fixture(scope="module")
def client(small_demo) -> Iterator[TestClient]:
    url = small_demo.url.render_as_string(hide_password=False)
    with TestClient(create_app(url=url)) as test_client:
        yield test_client


def test_index_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'lang="zh-CN"' in page.text
    assert 'src="/static/console/console.js"' in page.text  # the landing page is the console (issue 20)
    assert client.get("/static/vendor/maplibre-gl/maplibre-gl.mjs").status_code == 200


@pytest.mark.parametrize(("level", "kind", "count"), [("1", "district", 9), ("3", "community", 50),
                                                      ("4", "base", 100), ("special", None, 13)])
def test_areas_by_level(client: TestClient, level: str, kind: str | None, count: int) -> None:
    reply = client.get("/api/v1/areas", params={"level": level})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/geo+json")
    features = reply.json()["features"]
    assert len(features) == count
    if kind:
        assert {f["properties"]["kind"] for f in features} == {kind}
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in features)


def test_bbox_narrows_the_answer(client: TestClient) -> None:
    everything = client.get("/api/v1/areas", params={"level": "4"}).json()["features"]
    window = client.get("/api/v1/areas", params={"level": "4", "bbox": "120.55,31.2,120.65,31.3"}).json()
    assert 0 < len(window["features"]) < len(everything)


def test_stats(client: TestClient) -> None:
    stats = client.get("/api/v1/stats").json()
    assert stats["districts"] == 9 and stats["grids"] == 100 and stats["special_grids"] == 13


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"level": "9"}, "level must be"), ({"level": "4", "bbox": "1,2,3"}, "four numbers"),
     ({"level": "4", "bbox": "10,10,5,5"}, "minLon < maxLon"), ({}, "failed validation")],
)
def test_bad_parameters_get_problem_json(client: TestClient, params: dict, fragment: str) -> None:
    reply = client.get("/api/v1/areas", params=params)
    assert reply.status_code in (400, 422)
    assert reply.headers["content-type"] == "application/problem+json"
    body = reply.json()
    assert body["status"] == reply.status_code and fragment in body["detail"] + str(body.get("errors", ""))


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    reply = client.get("/api/v1/nothing-here")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
