"""The cases API over HTTP on the known-answer world: contract, bad input, idempotency, listing."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from tests.world import case_count, grid_code

GOOD = {"category": "E010101", "location": {"type": "Point", "coordinates": [120.06, 31.17]},
        "description": "路边暴露垃圾", "source": "inspector"}


def test_create_and_read_the_contract(client: TestClient) -> None:
    reply = client.post("/api/v1/cases", json=GOOD)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    for key in ("id", "case_no", "state", "category", "grid", "community", "town", "district", "owner",
                "component", "deadline", "duplicate_of"):
        assert key in body
    assert body["grid"] == {"code": grid_code(1, 1, 2), "name": "测试1-1第2网格", "level": 4}
    assert body["owner"]["key"] == "GRID_CHIEF" and body["component"] is None
    assert reply.headers["location"] == f"/api/v1/cases/{body['id']}"
    again = client.get(f"/api/v1/cases/{body['id']}").json()
    assert again["case_no"] == body["case_no"] and again["history"][0]["kind"] == "report"
    assert again["reporter"] == {"name": None, "phone": None}  # the tests' client is an admin


def test_locate(client: TestClient) -> None:
    found = client.get("/api/v1/locate", params={"lon": 120.06, "lat": 31.17}).json()
    assert found["grid"]["code"] == grid_code(1, 1, 2)
    outside = client.get("/api/v1/locate", params={"lon": 121.0, "lat": 31.17})
    assert outside.status_code == 422
    assert outside.headers["content-type"] == "application/problem+json"
    assert outside.json()["nearest_grid"]["code"] == grid_code(2, 1, 4)


def _with(**changes) -> dict:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (_with(location={"type": "Point", "coordinates": [31.17, 120.06]}), 422, "look swapped"),
        (_with(location={"type": "Point", "coordinates": [190, 31.1]}), 422, "out of range"),
        (_with(location={"type": "LineString", "coordinates": [[120, 31], [120.1, 31.1]]}), 422, "not 'LineString'"),
        (_with(location={"type": "Point", "coordinates": [120.06]}), 422, "at least 2"),
        (_with(category="E999999"), 422, "unknown event category"),
        (_with(category="not-a-code"), 422, "pattern"),
        (_with(component_code="3205069999000001"), 422, "unknown component"),
        (_with(component_code="3205060101000002"), 422, "removed"),
        (_with(component_code="3205070118000001"), 422, "belongs to district 320507"),
        ({"category": "E010101"}, 422, "location is required"),
        (_with(source="pigeon"), 422, "source"),
        (_with(unexpected=1), 422, "unexpected"),
        (_with(location={"type": "Point", "coordinates": [121.5, 31.1]}), 422, "outside every grid"),
    ],
)
def test_bad_input_is_refused_precisely(client: TestClient, world_engine, body, status, fragment) -> None:
    reply = client.post("/api/v1/cases", json=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert fragment in reply.text
    assert case_count(world_engine) == 0


def test_nan_and_wrong_content_type_and_size(client: TestClient, world_engine) -> None:
    nan = '{"category": "E010101", "location": {"type": "Point", "coordinates": [NaN, 31.1]}}'
    reply = client.post("/api/v1/cases", content=nan, headers={"content-type": "application/json"})
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    form = client.post("/api/v1/cases", data={"category": "E010101"})
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    huge = client.post("/api/v1/cases", content=b"{" + b" " * 2_000_000 + b"}",
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.headers["content-type"] == "application/problem+json"
    broken = client.post("/api/v1/cases", content=b'{"category": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert case_count(world_engine) == 0


def test_idempotency_over_http(client: TestClient, world_engine) -> None:
    first = client.post("/api/v1/cases", json=GOOD, headers={"Idempotency-Key": "abc-123"})
    again = client.post("/api/v1/cases", json=GOOD, headers={"Idempotency-Key": "abc-123"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]
    conflict = client.post("/api/v1/cases", json=_with(description="别的"), headers={"Idempotency-Key": "abc-123"})
    assert conflict.status_code == 409
    assert case_count(world_engine) == 1


def test_list_filters_and_keyset_pages(client: TestClient) -> None:
    for lon in (120.01, 120.06, 120.11, 120.16, 120.26):
        assert client.post("/api/v1/cases", json=_with(
            location={"type": "Point", "coordinates": [lon, 31.17]})).status_code == 201
    page = client.get("/api/v1/cases", params={"limit": 2}).json()
    assert len(page["cases"]) == 2 and page["next"] is not None
    seen = [c["id"] for c in page["cases"]]
    while page["next"]:
        page = client.get("/api/v1/cases", params={"limit": 2, "cursor": page["next"]}).json()
        seen += [c["id"] for c in page["cases"]]
    assert seen == sorted(seen, reverse=True) and len(seen) == 5
    town = client.get("/api/v1/cases", params={"area": "320506002"}).json()["cases"]
    assert [c["grid"]["code"] for c in town] == [grid_code(2, 1, 2)]
    community = client.get("/api/v1/cases", params={"area": grid_code(2, 1, 2)[:12]}).json()["cases"]
    assert [c["grid"]["code"] for c in community] == [grid_code(2, 1, 2)]
    assert len(client.get("/api/v1/cases", params={"area": "320506"}).json()["cases"]) == 5
    assert client.get("/api/v1/cases", params={"area": "320507"}).json()["cases"] == []
    box = client.get("/api/v1/cases", params={"bbox": "120.0,31.1,120.07,31.2"}).json()["cases"]
    assert len(box) == 2
    assert client.get("/api/v1/cases", params={"category": "E01"}).json()["cases"]
    assert client.get("/api/v1/cases", params={"category": "E02"}).json()["cases"] == []
    assert client.get("/api/v1/cases", params={"area": "12"}).status_code == 400
    odd = client.get("/api/v1/cases", params={"until": "0987-03-13T10:17:07+16:46"})  # beyond PostgreSQL's ±15:59
    assert odd.status_code == 200 and odd.json()["cases"] == []
    local = client.get("/api/v1/cases", params={"since": "2000-01-01T00:00:00"})  # no offset: Suzhou time
    assert local.status_code == 200 and len(local.json()["cases"]) == 5
    assert client.get("/api/v1/cases/999999").status_code == 404
    assert client.get("/api/v1/cases/9223372036854775808").status_code == 404  # beyond bigint: no case (was a 500)


def test_read_answers_as_intake_did(client: TestClient) -> None:
    created = client.post("/api/v1/cases", json=_with(location={"type": "Point", "coordinates": [120.2, 31.1]}))
    body = created.json()
    read = client.get(f"/api/v1/cases/{body['id']}").json()
    for key in ("grid", "community", "town", "district", "special_grids", "owner", "component"):
        assert read[key] == body[key], key
    assert datetime.fromisoformat(read["deadline"]) == datetime.fromisoformat(body["deadline"])
    assert read["special_grids"] == [{"code": "320506S0001", "name": "测试景区", "level": "scenic"}]


def test_the_openapi_document_describes_the_body_and_the_reply(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    create = paths["/api/v1/cases"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CaseCreate")
    for status in ("201", "200"):  # created, or replayed for a retried Idempotency-Key
        assert create["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/CasePublic")
    read = paths["/api/v1/cases/{case_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert read["$ref"].endswith("/CasePublic")
    listed = paths["/api/v1/cases"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"].endswith("/CasesPublic")



def test_list_filters_by_source_grade_and_overdue(client: TestClient, world_engine) -> None:
    from sqlalchemy import text

    made = [client.post("/api/v1/cases", json=_with(source=source)).json()["id"]
            for source in ("inspector", "hotline", "hotline")]
    hotline = client.get("/api/v1/cases", params={"source": "hotline"}).json()["cases"]
    assert [c["id"] for c in hotline] == sorted(made[1:], reverse=True)
    with world_engine.connect() as conn:
        grade = conn.execute(text("SELECT grade FROM event_category WHERE code = :c"),
                             {"c": GOOD["category"]}).scalar_one()
    same = client.get("/api/v1/cases", params={"grade": grade}).json()["cases"]
    assert sorted(c["id"] for c in same) == sorted(made)
    other = next(g for g in "ABC" if g != grade)
    assert client.get("/api/v1/cases", params={"grade": other}).json()["cases"] == []
    assert client.get("/api/v1/cases", params={"overdue": "true"}).json()["cases"] == []
    with world_engine.begin() as conn:  # one open case past its deadline, one closed case past it
        conn.execute(text("UPDATE \"case\" SET deadline = now() - interval '1 hour' WHERE id = ANY(:ids)"),
                     {"ids": made[:2]})
        conn.execute(text("UPDATE \"case\" SET state = 'closed' WHERE id = :id"), {"id": made[1]})
    overdue = client.get("/api/v1/cases", params={"overdue": "true"}).json()["cases"]
    assert [c["id"] for c in overdue] == [made[0]]
    for name, value in (("source", "pigeon"), ("grade", "D")):
        bad = client.get("/api/v1/cases", params={name: value})
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
        assert name in bad.json()["detail"]


def test_time_left_is_counted_on_the_categorys_clock(client: TestClient, world_engine) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from spatial.reference.cache import ReferenceCache

    made = client.post("/api/v1/cases", json=GOOD).json()
    case = client.get(f"/api/v1/cases/{made['id']}").json()
    left = case["workflow"]["time_left"]
    with world_engine.connect() as conn:
        ref = ReferenceCache.load(conn)
    unit = ref.categories[GOOD["category"]].time_unit
    assert left["counted"] == ("clock" if unit == "clock_hours" else "working")
    deadline = datetime.fromisoformat(case["deadline"])
    now = datetime.now(UTC)
    expected = (ref.calendar.working_seconds_between(now, deadline) if left["counted"] == "working"
                else (deadline - now).total_seconds())
    assert abs(left["deadline_s"] - expected) <= 60  # read a moment apart
    with world_engine.begin() as conn:  # a clock-hours category counts wall-clock time, overdue is negative
        clock = conn.execute(text("SELECT code FROM event_category WHERE time_unit = 'clock_hours' LIMIT 1")).scalar()
        conn.execute(text("UPDATE \"case\" SET deadline = now() - interval '2 hours', category_code = :c"
                          " WHERE id = :id"), {"id": made["id"], "c": clock or GOOD["category"]})
    left = client.get(f"/api/v1/cases/{made['id']}").json()["workflow"]["time_left"]
    if clock:
        assert left["counted"] == "clock" and -7300 < left["deadline_s"] <= -7200
    else:
        assert left["deadline_s"] <= 0
    with world_engine.begin() as conn:
        conn.execute(text("UPDATE \"case\" SET state = 'closed' WHERE id = :id"), {"id": made["id"]})
    assert "time_left" not in client.get(f"/api/v1/cases/{made['id']}").json()["workflow"]
