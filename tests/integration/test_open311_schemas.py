"""Every GeoReport v2 reply, JSON and XML, validates against the GeoReport v2 schemas in tests/schemas/.

The specification publishes field tables and examples but no machine-readable schema, so the schemas are
written from its text (tests/schemas/georeport-v2.schema.json and .xsd); they are strict: the spec's types
and enumerations, no fields it does not name. Each call below is one method of the spec, in both formats,
including error replies.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from fastapi.testclient import TestClient

BASE = "/open311/v2"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
GOOD = {"service_code": "E010101", "lat": "31.17", "long": "120.06", "description": "路边暴露垃圾",
        "first_name": "王", "last_name": "芳", "phone": "13800000000"}
LIGHT = "3205060118000001"


@pytest.fixture(scope="module")
def json_schema() -> dict:
    schema = json.loads((SCHEMAS / "georeport-v2.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def xml_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "georeport-v2.xsd"))


def check(reply, kind: str, root: str, json_schema: dict, xml_schema: xmlschema.XMLSchema, fmt: str) -> None:
    """Validate one reply: JSON against ``$defs/kind``, XML against the XSD with root element ``root``."""
    if fmt == "json":
        assert reply.headers["content-type"] == "application/json"
        validator = jsonschema.Draft202012Validator({**json_schema, "$ref": f"#/$defs/{kind}"})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(reply.json())]
        assert not errors, errors
    else:
        assert reply.headers["content-type"] == "text/xml; charset=utf-8"
        document = xmlschema.XmlDocument(reply.content.decode("utf-8"), validation="skip")
        assert document.root.tag == root
        xml_schema.validate(reply.content.decode("utf-8"))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_every_method_validates(client: TestClient, json_schema, xml_schema, fmt: str) -> None:
    def ok(reply, kind: str, root: str, status: int = 200) -> None:
        assert reply.status_code == status, reply.text
        check(reply, kind, root, json_schema, xml_schema, fmt)

    ok(client.get(f"{BASE}/discovery.{fmt}"), "discovery", "discovery")
    ok(client.get(f"{BASE}/services.{fmt}"), "service_list", "services")
    ok(client.get(f"{BASE}/services/E010402.{fmt}"), "service_definition", "service_definition")
    ok(client.get(f"{BASE}/services/E010101.{fmt}"), "service_definition", "service_definition")

    created = client.post(f"{BASE}/requests.{fmt}", data=GOOD)
    ok(created, "request_created", "service_requests", 201)
    by_component = client.post(f"{BASE}/requests.{fmt}", data={"service_code": "E010402",
                                                                "attribute[component_code]": LIGHT})
    ok(by_component, "request_created", "service_requests", 201)
    duplicate = client.post(f"{BASE}/requests.{fmt}", data={"service_code": "E010402",
                                                             "attribute[component_code]": LIGHT})
    ok(duplicate, "request_created", "service_requests", 201)

    listed = client.get(f"{BASE}/requests.json").json()
    assert len(listed) == 3
    ident = listed[0]["service_request_id"]
    if fmt == "json":
        token = created.json()[0]["token"]
    else:
        token = xmlschema.XmlDocument(created.content.decode("utf-8"), validation="skip").root.findtext("request/token")
    assert token
    ok(client.get(f"{BASE}/requests.{fmt}"), "service_requests", "service_requests")
    ok(client.get(f"{BASE}/requests.{fmt}", params={"status": "closed"}), "service_requests", "service_requests")
    ok(client.get(f"{BASE}/requests/{ident}.{fmt}"), "service_requests", "service_requests")
    ok(client.get(f"{BASE}/tokens/{token}.{fmt}"), "tokens", "service_requests")


def test_the_schemas_refuse_what_the_spec_does_not_allow(json_schema, xml_schema) -> None:
    """The schemas are not vacuous: a wrong status, a stray field or a missing field each fail."""
    good = {"service_request_id": "1", "status": "open", "service_code": "E010101",
            "requested_datetime": "2026-11-20T09:00:00+08:00", "lat": 31.1, "long": 120.6}
    validator = jsonschema.Draft202012Validator({**json_schema, "$ref": "#/$defs/service_requests"})
    assert validator.is_valid([good])
    assert not validator.is_valid([{**good, "status": "pending"}])
    assert not validator.is_valid([{**good, "reporter_phone": "13800000000"}])
    assert not validator.is_valid([{k: v for k, v in good.items() if k != "service_code"}])
    assert not validator.is_valid([{**good, "requested_datetime": "yesterday"}])
    assert xml_schema.is_valid("<errors><error><code>404</code><description>x</description></error></errors>")
    assert not xml_schema.is_valid("<errors><error><code>200</code><description>x</description></error></errors>")
    assert not xml_schema.is_valid("<services><service><service_code>E1</service_code><service_name>n</service_name>"
                                   "<metadata>yes</metadata><type>realtime</type></service></services>")
    assert not xml_schema.is_valid("<service_requests><request><status>open</status><phone>1</phone></request>"
                                   "</service_requests>")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_every_error_validates(client: TestClient, json_schema, xml_schema, fmt: str) -> None:
    refusals = [
        client.get(f"{BASE}/services/E999999.{fmt}"),
        client.get(f"{BASE}/requests/999999.{fmt}"),
        client.get(f"{BASE}/tokens/no-such-token.{fmt}"),
        client.post(f"{BASE}/requests.{fmt}", data={**GOOD, "service_code": "E999999"}),
        client.post(f"{BASE}/requests.{fmt}", data={**GOOD, "lat": "91"}),
        client.post(f"{BASE}/requests.{fmt}", data={**GOOD, "lat": "31.1", "long": "122.5"}),
        client.post(f"{BASE}/requests.{fmt}", data={"service_code": "E010101"}),
        client.get(f"{BASE}/requests.{fmt}", params={"start_date": "yesterday"}),
    ]
    for reply in refusals:
        assert 400 <= reply.status_code < 500, reply.text
        check(reply, "errors", "errors", json_schema, xml_schema, fmt)
