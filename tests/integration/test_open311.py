"""Open311 GeoReport v2 over HTTP on the known-answer world: services, requests, tokens, errors, JSON and XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.settings import ApiSettings
from tests.world import case_count, grid_code

BASE = "/open311/v2"
GOOD = {"service_code": "E010101", "lat": "31.17", "long": "120.06", "description": "路边暴露垃圾"}
LIGHT = "3205060118000001"  # a street light at (120.01, 31.15), owned by the lighting office

# GeoReport v2 field lists: name -> accepted types (None where the spec lets the field be empty).
SERVICE_FIELDS: dict[str, tuple[type, ...]] = {
    "service_code": (str,), "service_name": (str,), "description": (str, type(None)), "metadata": (bool,),
    "type": (str,), "keywords": (str, type(None)), "group": (str, type(None)),
}
ATTRIBUTE_FIELDS: dict[str, tuple[type, ...]] = {
    "variable": (bool,), "code": (str,), "datatype": (str,), "required": (bool,),
    "datatype_description": (str, type(None)), "order": (int,), "description": (str,),
}
REQUEST_FIELDS: dict[str, tuple[type, ...]] = {
    "service_request_id": (str,), "status": (str,), "status_notes": (str, type(None)),
    "service_name": (str, type(None)), "service_code": (str,), "description": (str, type(None)),
    "agency_responsible": (str, type(None)), "service_notice": (str, type(None)), "requested_datetime": (str,),
    "updated_datetime": (str, type(None)), "expected_datetime": (str, type(None)), "address": (str, type(None)),
    "address_id": (str, type(None)), "zipcode": (str, type(None)), "lat": (float,), "long": (float,),
    "media_url": (str, type(None)),
}
CREATED_FIELDS: dict[str, tuple[type, ...]] = {
    "service_request_id": (str,), "token": (str, type(None)), "service_notice": (str, type(None)),
    "account_id": (str, type(None)),
}
PERSONAL = ("reporter", "first_name", "last_name", "phone", "email", "reporter_name", "reporter_phone")


def check_shape(item: dict[str, Any], fields: dict[str, tuple[type, ...]], exact: bool = True) -> None:
    """Assert that ``item`` has every GeoReport field with an allowed type (and, if ``exact``, no other)."""
    for name, types in fields.items():
        assert name in item, f"missing {name}"
        assert isinstance(item[name], types), f"{name} is {type(item[name]).__name__}"
    if exact:
        assert set(item) == set(fields), f"unexpected fields {set(item) - set(fields)}"


def check_requests(body: Any) -> list[dict[str, Any]]:
    """Assert a GeoReport request list and return it."""
    assert isinstance(body, list)
    for item in body:
        check_shape(item, REQUEST_FIELDS)
        assert item["status"] in ("open", "closed")
        assert not set(item) & set(PERSONAL)
        for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
            assert datetime.fromisoformat(item[name]).utcoffset() == timedelta(hours=8)
    return body


def check_error(reply, status: int, fragment: str = "") -> str:
    """Assert a GeoReport JSON error list with ``status``; return its description."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert isinstance(body, list) and len(body) == 1
    check_shape(body[0], {"code": (int,), "description": (str,)})
    assert body[0]["code"] == status and fragment in body[0]["description"]
    return body[0]["description"]


def xml_of(reply) -> ET.Element:
    assert reply.headers["content-type"] == "text/xml; charset=utf-8"
    assert reply.content.startswith(b"<?xml")
    return ET.fromstring(reply.content)


def create(client: TestClient, fields: dict[str, str], fmt: str = "json", **kwargs) -> dict[str, Any]:
    reply = client.post(f"{BASE}/requests.{fmt}", data=fields, **kwargs)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert isinstance(body, list) and len(body) == 1
    check_shape(body[0], CREATED_FIELDS)
    return body[0]


def test_services_json_and_xml(client: TestClient) -> None:
    reply = client.get(f"{BASE}/services.json")
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    services = reply.json()
    for item in services:
        check_shape(item, SERVICE_FIELDS)
        assert item["type"] == "realtime"
    by_code = {s["service_code"]: s for s in services}
    light = by_code["E010402"]
    assert light["metadata"] is True and light["service_name"] == "路灯不亮"
    assert light["group"] == "城市管理" and light["keywords"] == "城市管理, 部件损坏"
    assert light["description"] == "light working"
    assert by_code["E010101"]["metadata"] is False
    assert "E01" not in by_code and "E0101" not in by_code  # only leaves are services

    root = xml_of(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    elements = root.findall("service")
    assert len(elements) == len(services)
    xml_light = next(e for e in elements if e.findtext("service_code") == "E010402")
    assert xml_light.findtext("metadata") == "true" and xml_light.findtext("group") == "城市管理"


def test_service_definition(client: TestClient) -> None:
    definition = client.get(f"{BASE}/services/E010402.json").json()
    assert definition["service_code"] == "E010402"
    [attribute] = definition["attributes"]
    check_shape(attribute, ATTRIBUTE_FIELDS)
    assert attribute == {"variable": True, "code": "component_code", "datatype": "string", "required": False,
                         "datatype_description": "16-digit component code", "order": 1, "description": "部件编码"}
    assert client.get(f"{BASE}/services/E010101.json").json() == {"service_code": "E010101", "attributes": []}

    root = xml_of(client.get(f"{BASE}/services/E010402.xml"))
    assert root.tag == "service_definition"
    assert root.find("attributes/attribute/code").text == "component_code"  # type: ignore[union-attr]
    assert root.findtext("attributes/attribute/variable") == "true"

    check_error(client.get(f"{BASE}/services/E999999.json"), 404, "E999999")
    missing = client.get(f"{BASE}/services/E999999.xml")
    assert missing.status_code == 404
    error = xml_of(missing)
    assert error.tag == "errors" and error.findtext("error/code") == "404"
    check_error(client.get(f"{BASE}/services.csv"), 404, "use .json or .xml")
    check_error(client.get(f"{BASE}/services/E010402.html"), 404, "unknown format")
    check_error(client.get(f"{BASE}/nothing.json"), 404, "no GeoReport resource")
    assert xml_of(client.get(f"{BASE}/requests/1/notes.xml")).findtext("error/code") == "404"


def test_discovery(client: TestClient) -> None:
    document = client.get(f"{BASE}/discovery.json").json()
    assert {"changeset", "contact", "key_service", "endpoints"} <= set(document)
    [endpoint] = document["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == ApiSettings().base_url() + "/open311/v2"  # the public URL, not the Host header
    assert endpoint["formats"] == ["application/json", "text/xml"]
    root = xml_of(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == ["application/json", "text/xml"]


def test_create_form_encoded_then_read_and_token(client: TestClient, world_engine) -> None:
    created = create(client, GOOD)
    assert created["service_request_id"].isdigit() and created["account_id"] is None
    assert "处置时限" in created["service_notice"]

    [found] = check_requests(client.get(f"{BASE}/requests/{created['service_request_id']}.json").json())
    assert found["service_request_id"] == created["service_request_id"]
    assert found["status"] == "open" and found["service_code"] == "E010101" and found["service_name"] == "暴露垃圾"
    assert (found["lat"], found["long"]) == (31.17, 120.06)
    assert found["address"] == "测试1街道 测试1-1社区 测试1-1第2网格"
    assert found["agency_responsible"] == "测试1-1第2网格 网格长"
    assert found["description"] == "路边暴露垃圾"

    tokens = client.get(f"{BASE}/tokens/{created['token']}.json").json()
    assert tokens == [{"service_request_id": created["service_request_id"], "token": created["token"]}]
    root = xml_of(client.get(f"{BASE}/tokens/{created['token']}.xml"))
    assert root.findtext("request/service_request_id") == created["service_request_id"]
    with world_engine.connect() as conn:
        source, actor = conn.execute(text(
            'SELECT k.source, e.actor FROM "case" k JOIN case_event e ON e.case_id = k.id')).one()
    assert (source, actor) == ("public", "open311:public")


def _partner_key(world_engine, role: str = "partner") -> str:
    from spatial.access.accounts import add_user, create_token

    login = f"{role}-hotline"
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE account_id IN (SELECT id FROM account WHERE login = :l)"),
                     {"l": login})
        conn.execute(text("DELETE FROM account WHERE login = :l"), {"l": login})
        add_user(conn, login, role=role, scope="320506", password="correct horse battery staple")
        return create_token(conn, login)[0]


def test_api_keys_are_checked(client: TestClient, world_engine) -> None:
    check_error(client.post(f"{BASE}/requests.json", data={**GOOD, "api_key": "no-such-key"}), 401, "token")
    viewer = _partner_key(world_engine, "viewer")
    check_error(client.post(f"{BASE}/requests.json", data={**GOOD, "api_key": viewer}), 403, "viewer")
    # Who submits is decided before the fields: a bad key with bad fields is a 401, a viewer's a 403.
    bad_fields = {"service_code": "nope", "lat": "north"}
    check_error(client.post(f"{BASE}/requests.json", data={**bad_fields, "api_key": "no-such-key"}), 401, "token")
    check_error(client.post(f"{BASE}/requests.json", data={**bad_fields, "api_key": viewer}), 403, "viewer")
    assert case_count(world_engine) == 0


def test_create_json_with_api_key_and_xml_reply(client: TestClient, world_engine) -> None:
    key = _partner_key(world_engine)
    body = {**GOOD, "lat": 31.17, "long": 120.06, "api_key": key, "address_string": "长桥街道1号"}
    reply = client.post(f"{BASE}/requests.xml", json=body)
    assert reply.status_code == 201, reply.text
    root = xml_of(reply)
    assert root.tag == "service_requests"
    [request] = root.findall("request")
    assert request.findtext("service_request_id", "").isdigit() and request.findtext("token")
    assert request.find("account_id") is not None and request.findtext("account_id") == ""
    with world_engine.connect() as conn:
        source, actor, description = conn.execute(text(
            'SELECT k.source, e.actor, k.description FROM "case" k JOIN case_event e ON e.case_id = k.id')).one()
    assert (source, actor) == ("hotline", "open311:partner-hotline")
    assert description == "路边暴露垃圾（地址：长桥街道1号）"


def test_component_code_without_position_uses_the_component(client: TestClient) -> None:
    created = create(client, {"service_code": "E010402", "attribute[component_code]": LIGHT})
    [found] = check_requests(client.get(f"{BASE}/requests/{created['service_request_id']}.json").json())
    assert (found["lat"], found["long"]) == (31.15, 120.01)
    assert found["agency_responsible"] == "路灯管理处"
    nested = client.post(f"{BASE}/requests.json", json={"service_code": "E010402", "attribute": {
        "component_code": LIGHT}})
    assert nested.status_code == 201  # a duplicate of the first: linked and closed at once
    [linked] = client.get(f"{BASE}/requests/{nested.json()[0]['service_request_id']}.json").json()
    assert linked["status"] == "closed" and created["service_request_id"] in linked["status_notes"]


def test_personal_data_is_never_listed(client: TestClient, world_engine) -> None:
    create(client, {**GOOD, "first_name": "三", "last_name": "张", "phone": "13800138000",
                    "email": "zhang@example.com"})
    with world_engine.connect() as conn:
        stored = conn.execute(text('SELECT reporter_name, reporter_phone FROM "case"')).one()
    assert tuple(stored) == ("张三", "13800138000")
    for path in ("requests.json", "requests.xml", "requests/1.json", "requests/1.xml"):
        reply = client.get(f"{BASE}/{path}")
        assert reply.status_code == 200
        for secret in ("13800138000", "张三", "zhang@example.com", "reporter"):
            assert secret not in reply.text, (path, secret)
    check_requests(client.get(f"{BASE}/requests.json").json())


def _set(world_engine, case_id: str, sql: str) -> None:
    with world_engine.begin() as conn:
        conn.execute(text(f'UPDATE "case" SET {sql} WHERE id = :id'), {"id": int(case_id)})


def test_list_filters(client: TestClient, world_engine) -> None:
    garbage = create(client, GOOD)["service_request_id"]
    fumes = create(client, {**GOOD, "service_code": "E020101", "long": "120.26"})["service_request_id"]
    old = create(client, {**GOOD, "long": "120.36"})["service_request_id"]
    _set(world_engine, fumes, "state = 'closed', closed_at = now()")
    _set(world_engine, old, "reported_at = now() - interval '100 days'")

    def ids(**params) -> list[str]:
        reply = client.get(f"{BASE}/requests.json", params=params)
        assert reply.status_code == 200, reply.text
        return [r["service_request_id"] for r in check_requests(reply.json())]

    assert ids() == [fumes, garbage]  # newest first, the last 90 days by default
    assert ids(status="open") == [garbage]
    assert ids(status="closed") == [fumes]
    assert ids(status="open,closed") == [fumes, garbage]
    assert ids(service_code="E020101") == [fumes]
    assert ids(service_code="E010101,E020101") == [fumes, garbage]
    now = datetime.now(UTC)
    assert ids(start_date=(now - timedelta(days=120)).isoformat(), end_date=(now - timedelta(days=50)).isoformat()) \
        == [old]
    assert ids(start_date=(now + timedelta(hours=1)).isoformat()) == []
    assert ids(end_date=(now - timedelta(days=95)).strftime("%Y-%m-%dT%H:%M:%S+08:00")) == [old]
    assert ids(service_request_id=f"{old},{garbage},999999", status="closed") == [garbage, old]  # overrides the rest
    assert ids(limit="1") == [fumes]

    root = xml_of(client.get(f"{BASE}/requests.xml"))
    assert root.tag == "service_requests"
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [fumes, garbage]
    assert root.findtext("request/status") == "closed" and root.findtext("request/media_url") == ""

    check_error(client.get(f"{BASE}/requests.json", params={"status": "pending"}), 400, "status")
    check_error(client.get(f"{BASE}/requests.json", params={"start_date": "yesterday"}), 400, "start_date")
    check_error(client.get(f"{BASE}/requests.json", params={
        "start_date": "2024-01-01T00:00:00Z", "end_date": "2024-06-01T00:00:00Z"}), 400, "90 days")
    check_error(client.get(f"{BASE}/requests.json", params={"service_request_id": "1,abc"}), 400, "abc")


def test_unknown_requests_and_tokens(client: TestClient) -> None:
    check_error(client.get(f"{BASE}/requests/999999.json"), 404, "999999")
    check_error(client.get(f"{BASE}/requests/abc.json"), 404, "abc")
    check_error(client.get(f"{BASE}/requests/99999999999999999999999.json"), 404)
    check_error(client.get(f"{BASE}/tokens/2024010100000001.json"), 404, "token")
    check_error(client.get(f"{BASE}/tokens/{'9' * 40}.json"), 404, "token")
    missing = client.get(f"{BASE}/requests/999999.xml")
    assert missing.status_code == 404 and xml_of(missing).findtext("error/code") == "404"


def _without(*names: str, **changes: str) -> dict[str, str]:
    return {k: v for k, v in {**GOOD, **changes}.items() if k not in names}


@pytest.mark.parametrize(
    ("fields", "status", "fragment"),
    [
        (_without("service_code"), 400, "service_code is required"),
        (_without(service_code="E999999"), 422, "unknown event category"),
        (_without(lat="120.06", long="31.17"), 400, "look swapped"),
        (_without(lat="95"), 400, "lat: latitude 95.0 is out of range"),
        (_without(long="190"), 400, "long: longitude 190.0 is out of range"),
        (_without(lat="abc"), 400, "lat must be a decimal number"),
        (_without(long="NaN"), 400, "long must be a finite number"),
        (_without("long"), 400, "long is missing"),
        (_without("lat", "long"), 400, "lat and long are required"),
        (_without(long="121.5"), 422, "outside every grid"),
        (_without(**{"attribute[component_code]": "3205069999000001"}), 422, "unknown component"),
        (_without(**{"attribute[component_code]": "12345"}), 400, "16-digit"),
        (_without(phone="call me"), 400, "phone"),
    ],
)
def test_refusals_store_nothing(client: TestClient, world_engine, fields, status, fragment) -> None:
    check_error(client.post(f"{BASE}/requests.json", data=fields), status, fragment)
    assert case_count(world_engine) == 0


def test_refusals_in_xml_and_bad_bodies(client: TestClient, world_engine) -> None:
    swapped = client.post(f"{BASE}/requests.xml", data=_without(lat="120.06", long="31.17"))
    assert swapped.status_code == 400
    root = xml_of(swapped)
    assert root.tag == "errors" and root.findtext("error/code") == "400"
    assert "lat" in root.findtext("error/description", "")
    check_error(client.post(f"{BASE}/requests.json", content=b"service_code=E010101",
                            headers={"content-type": "text/plain"}), 415, "application/x-www-form-urlencoded")
    check_error(client.post(f"{BASE}/requests.json", content=b"[1, 2]",
                            headers={"content-type": "application/json"}), 400, "object")
    check_error(client.post(f"{BASE}/requests.json", content=b'{"service_code": ',
                            headers={"content-type": "application/json"}), 400, "not valid JSON")
    check_error(client.post(f"{BASE}/requests.json", json={**GOOD, "lat": True}), 400, "lat")
    check_error(client.post(f"{BASE}/requests.csv", data=GOOD), 404, "unknown format")
    assert case_count(world_engine) == 0


def test_idempotency_key(client: TestClient, world_engine) -> None:
    first = client.post(f"{BASE}/requests.json", data=GOOD, headers={"Idempotency-Key": "o311-1"})
    again = client.post(f"{BASE}/requests.json", data=GOOD, headers={"Idempotency-Key": "o311-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Anonymous callers cannot be told apart: another request under the same key is a request of its own.
    other = client.post(f"{BASE}/requests.json", data={**GOOD, "description": "别的"},
                        headers={"Idempotency-Key": "o311-1"})
    assert other.status_code == 201
    # A partner's key is its own: reused for a different request, it is refused.
    key = _partner_key(world_engine)
    assert client.post(f"{BASE}/requests.json", data={**GOOD, "api_key": key},
                       headers={"Idempotency-Key": "o311-1"}).status_code == 201
    conflict = client.post(f"{BASE}/requests.json", data={**GOOD, "description": "别的", "api_key": key},
                           headers={"Idempotency-Key": "o311-1"})
    check_error(conflict, 409, "Idempotency-Key")
    check_error(client.post(f"{BASE}/requests.json", data=GOOD, headers={"Idempotency-Key": "x" * 200}), 400)
    assert case_count(world_engine) == 3


def test_grid_of_created_request(client: TestClient, world_engine) -> None:
    created = create(client, {**GOOD, "long": "120.26"})
    with world_engine.connect() as conn:
        grid = conn.execute(text('SELECT grid_code FROM "case" WHERE id = :id'),
                            {"id": int(created["service_request_id"])}).scalar_one()
    assert grid == grid_code(2, 1, 2)


def test_public_submissions_are_rate_limited_per_address(world_engine) -> None:
    from api.app import create_app
    from api.settings import ApiSettings

    app = create_app(api_settings=ApiSettings(public_per_minute=6, public_burst=3),
                     url=world_engine.url.render_as_string(hide_password=False))
    with TestClient(app) as limited:
        statuses = [limited.post(f"{BASE}/requests.json", data=GOOD).status_code for _ in range(5)]
        assert statuses[:3] == [201, 201, 201] and statuses[3:] == [429, 429]
        refused = limited.post(f"{BASE}/requests.json", data=GOOD)
        check_error(refused, 429, "too many public requests")
        assert int(refused.headers["retry-after"]) >= 1
        key = _partner_key(world_engine)
        assert limited.post(f"{BASE}/requests.json", data={**GOOD, "api_key": key}).status_code == 201
