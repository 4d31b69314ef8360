"""OGC API Features Part 4 create without a code (issue 24, item 4): the server gives the next free code of
the component's district and class (the registry's generator, spatial/components/serials.py) and answers
it in ``Location`` and the body. OWSLib creates the component on a live server and reads it back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from owslib.ogcapi.features import Features
from owslib.util import Authentication
from sqlalchemy import Engine, text

from tests.conftest import TEST_ADMIN, admin_headers
from tests.live import serving

SERIES = "3205060101"  # 测试区 (320506) + class 0101 (water manhole covers): the world holds …0001 and …0002


def _feature(lon: float, name: str, **props: str) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, 31.12]},
            "properties": {"class_code": "0101", "name": name, **props}}


@pytest.fixture(scope="module")
def server(world_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(world_engine.url.render_as_string(hide_password=False),
                 log=tmp_path_factory.mktemp("serve") / "serve.log") as port:
        yield f"http://127.0.0.1:{port}/ogc"


@pytest.fixture
def fresh_series(world_engine: Engine) -> Iterator[int]:
    """The highest serial of SERIES in use or in history before the test; what the test creates is removed."""
    query = ("SELECT GREATEST((SELECT max(code) FROM component WHERE code LIKE :s),"
             " (SELECT max(component_code) FROM component_history WHERE component_code LIKE :s))")
    with world_engine.connect() as conn:
        top = conn.execute(text(query), {"s": SERIES + "%"}).scalar_one()
    yield int(top[10:])
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM component WHERE code LIKE :s AND code > :top"),
                     {"s": SERIES + "%", "top": top})


def test_owslib_creates_a_component_without_a_code_and_reads_the_code_back(server: str, fresh_series: int) -> None:
    token = admin_headers()["Authorization"].removeprefix("Bearer ")
    api = Features(server, auth=Authentication(TEST_ADMIN, token))  # HTTP Basic, the token as password
    assert api.collection_item_create("components", _feature(120.021, "新井盖")) is True
    location = api.response_headers["Location"]
    code = location.rsplit("/", 1)[-1]
    assert code == f"{SERIES}{fresh_series + 1:06d}"  # the next free serial of the district and class
    stored = api.collection_item("components", code)
    assert stored["id"] == code and stored["properties"]["code"] == code
    assert stored["properties"]["district_code"] == "320506" and stored["properties"]["name"] == "新井盖"
    api.collection_item_create("components", _feature(120.022, "又一个井盖", district_code="320506"))
    assert api.response_headers["Location"].endswith(f"{SERIES}{fresh_series + 2:06d}")


def test_the_reply_carries_the_code_in_location_and_body(server: str, fresh_series: int) -> None:
    with httpx.Client(headers=admin_headers()) as http:
        reply = http.post(f"{server}/collections/components/items", content=json.dumps(_feature(120.023, "井盖")),
                          headers={"Content-Type": "application/geo+json"})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert reply.headers["location"].endswith("/" + body["id"]) and body["properties"]["code"] == body["id"]
    assert body["id"] == f"{SERIES}{fresh_series + 1:06d}" and reply.headers["etag"]


def test_creators_at_once_get_distinct_codes(server: str, fresh_series: int) -> None:
    def create(n: int) -> str:
        with httpx.Client(headers=admin_headers(), timeout=30) as http:
            reply = http.post(f"{server}/collections/components/items",
                              content=json.dumps(_feature(120.024 + n / 10_000, f"井盖{n}")),
                              headers={"Content-Type": "application/geo+json"})
        assert reply.status_code == 201, reply.text
        return reply.json()["id"]

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(create, range(6)))
    assert codes == [f"{SERIES}{fresh_series + n:06d}" for n in range(1, 7)]


@pytest.mark.parametrize(("props", "geometry", "status", "says"), [
    ({}, [120.02, 31.12], 400, "class_code"),  # no class: no series to draw from
    ({"class_code": "01"}, [120.02, 31.12], 400, "class_code"),
    ({"class_code": "0101"}, [100.0, 20.0], 400, "outside every district"),
    ({"class_code": "0101", "district_code": "32x"}, [120.02, 31.12], 400, "district_code"),
    ({"class_code": "9999"}, [120.02, 31.12], 400, "class"),  # the generated code is checked like any other
])
def test_a_create_that_cannot_be_given_a_code_is_refused(server: str, fresh_series: int, props: dict,
                                                          geometry: list, status: int, says: str) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": geometry}, "properties": props}
    with httpx.Client(headers=admin_headers()) as http:
        reply = http.post(f"{server}/collections/components/items", content=json.dumps(feature),
                          headers={"Content-Type": "application/geo+json"})
    assert reply.status_code == status and says in reply.json()["description"], reply.text
