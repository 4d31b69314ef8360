"""OGC API Features as GDAL meets it (issue 24, item 3): ``numberMatched`` on the first page of every
collection (exact: counted beyond the cap within a time budget), a default page size in the OpenAPI
document, and ``application/geo+json`` when a client asks for it. ``ogrinfo -so`` on ``cases`` as an admin
asks for one page, not the whole collection."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from spatial import features
from tests.conftest import TEST_ADMIN, admin_headers
from tests.live import serving

CASES = 23
CAP = 5  # numberMatched is counted up to CAP on every page; beyond, on the first page only


def _report_cases(client: TestClient, n: int = CASES) -> None:
    rows = "".join(f"E010101,{120.01 + i * 0.016:.3f},{31.05 + (i % 3) * 0.05:.2f}\n" for i in range(n))
    reply = client.post("/api/v1/cases/bulk", content=("category,lon,lat\n" + rows).encode(),
                        headers={"Content-Type": "text/csv"})
    assert reply.status_code == 200 and reply.json()["refused"] == 0, reply.text


@pytest.fixture(scope="module")
def capped_client(world_engine: Engine) -> Iterator[TestClient]:
    """The app with the count cap lowered to CAP (GRIDLINK_OGC_COUNT_CAP), so that a few cases are over it."""
    from api.app import create_app

    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRIDLINK_OGC_COUNT_CAP", str(CAP))  # read when the app starts (api/ogc/limits.py)
        app = create_app(url=world_engine.url.render_as_string(hide_password=False))
        with TestClient(app, headers=admin_headers()) as client:
            yield client


@pytest.fixture
def capped(capped_client: TestClient, no_cases: None) -> TestClient:
    return capped_client


def test_number_matched_is_exact_on_the_first_page_beyond_the_cap(capped: TestClient) -> None:
    _report_cases(capped)
    first = capped.get("/ogc/collections/cases/items", params={"limit": 10}).json()
    assert first["numberMatched"] == CASES and first["numberReturned"] == 10
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = capped.get(following).json()
    assert "numberMatched" not in second and second["numberReturned"] == 10  # later pages: not counted again
    narrow = capped.get("/ogc/collections/cases/items", params={"limit": 10, "bbox": "120.0,31.0,120.05,31.2"})
    assert narrow.json()["numberMatched"] == len(narrow.json()["features"]) <= CAP  # under the cap: every page
    for name in features.layers():  # every collection answers a count on its first page
        page = capped.get(f"/ogc/collections/{name}/items", params={"limit": 1}).json()
        assert isinstance(page["numberMatched"], int), name


def test_a_count_over_its_time_budget_is_left_out_and_the_page_budget_kept(world_engine: Engine,
                                                                          capped: TestClient) -> None:
    _report_cases(capped)
    slow = func.pg_sleep(0.02).is_not(None)  # 20 ms a row: the full count of 23 takes ~0.5 s
    query = features.Query(limit=2, condition=slow, count_cap=2, count_ms=100)
    with world_engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 4321"))
        page = features.page(conn, features.layer("cases"), query)
        assert "numberMatched" not in page and page["numberReturned"] == 2
        assert conn.execute(select(func.current_setting("statement_timeout"))).scalar_one() == "4321ms"
        query.count_ms = 5_000
        assert features.page(conn, features.layer("cases"), query)["numberMatched"] == CASES
        assert conn.execute(select(func.current_setting("statement_timeout"))).scalar_one() == "4321ms"


def test_items_answer_geojson_when_asked(client: TestClient) -> None:
    asked = {"Accept": "application/geo+json, application/json"}
    page = client.get("/ogc/collections/grids/items", params={"limit": 2}, headers=asked)
    assert page.headers["content-type"] == "application/geo+json"
    one = page.json()["features"][0]["id"]
    assert client.get(f"/ogc/collections/grids/items/{one}", headers=asked).headers["content-type"] == \
        "application/geo+json"
    assert client.get("/ogc/collections/grids/items", params={"limit": 2}).headers["content-type"].startswith(
        "application/json")  # a client that did not ask keeps pygeoapi's type
    html = client.get("/ogc/collections/grids/items", params={"limit": 2, "f": "html"}, headers=asked)
    assert html.headers["content-type"].startswith("text/html")


def test_the_openapi_document_advertises_the_default_page_size(client: TestClient) -> None:
    doc = client.get("/ogc/openapi", params={"f": "json"}).json()
    limit = next(p for p in doc["paths"]["/collections/cases/items"]["get"]["parameters"]
                 if isinstance(p, dict) and p.get("name") == "limit")
    assert limit["schema"]["default"] == 100 and limit["schema"]["maximum"] == features.MAX_LIMIT


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed")
@pytest.mark.parametrize("count_ms", [1_500, 0])
def test_ogrinfo_summary_of_cases_reads_one_page(world_engine: Engine, capped: TestClient, tmp_path,
                                                 monkeypatch: pytest.MonkeyPatch, count_ms: int) -> None:
    """With the count (the default budget), one page; with it turned off (0), GDAL reads every page: the
    number of requests is what the count saves."""
    _report_cases(capped)
    monkeypatch.setenv("GRIDLINK_OGC_COUNT_CAP", str(CAP))
    monkeypatch.setenv("GRIDLINK_OGC_COUNT_MS", str(count_ms))
    log = tmp_path / "serve.log"
    token = admin_headers()["Authorization"].removeprefix("Bearer ")
    with serving(world_engine.url.render_as_string(hide_password=False), log=log, level="info") as port:
        summary = subprocess.run(
            ["ogrinfo", "-so", "-oo", f"USERPWD={TEST_ADMIN}:{token}", f"OAPIF:http://127.0.0.1:{port}/ogc",
             "cases"], capture_output=True, text=True, timeout=120, check=True).stdout
    assert f"Feature Count: {CASES}" in summary
    pages = re.findall(r'"GET /ogc/collections/cases/items[^"]*" 200', log.read_text())
    # Without numberMatched GDAL 3.6 pages through every case, 10 a request (newer GDALs ask for bigger pages).
    if count_ms:
        assert len(pages) == 1, pages
    else:
        assert len(pages) >= -(-CASES // 10), pages
