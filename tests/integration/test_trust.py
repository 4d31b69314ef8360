"""Public view and trust (issue 23, findings 1, 3 and 5) on the known-answer world: what each caller sees of
a case through Open311 compared with REST, which reports may absorb which as duplicates, and whose
Idempotency-Keys can meet."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import admin_headers
from tests.world import DISTRICT, case_count, fresh_accounts

PASSWORD = "a long enough password"
WEST = [120.06, 31.17]    # town 001, community 001, grid 002
EAST = [120.30, 31.05]    # town 002, community 002, grid 003
SCENIC = [120.18, 31.12]  # town 001, community 001, grid 004, inside special grid 320506S0001
LIGHT = "3205060118000001"  # a street light at (120.01, 31.15), owned by the lighting office
ACCOUNTS = {
    "trust.city": ("dispatcher", DISTRICT),
    "trust.west": ("dispatcher", f"{DISTRICT}001"),
    "trust.west2": ("inspector", f"{DISTRICT}001"),
    "trust.east": ("dispatcher", f"{DISTRICT}002"),
    "trust.scenic": ("grid_chief", f"{DISTRICT}S0001"),
    "trust.viewer": ("viewer", f"{DISTRICT}002"),
    "trust.partner": ("partner", f"{DISTRICT}002"),
    "trust.hotline": ("partner", "*"),
    "trust.lights": ("handler", "LIGHTING"),
    "trust.planner": ("planner", f"{DISTRICT}001001"),
}


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


def _as(token: str | None, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}" if token else "", **headers}


def _report(where: list[float], source: str = "inspector", **extra) -> dict:
    return {"category": "E010101", "location": {"type": "Point", "coordinates": where}, "source": source, **extra}


# -- Finding 5: Idempotency-Keys belong to the caller ---------------------------------------------------------

def test_another_accounts_key_neither_reveals_nor_collides(client: TestClient, tokens, world_engine) -> None:
    key = {"Idempotency-Key": "shared-key-1"}
    first = client.post("/api/v1/cases", json=_report(WEST), headers=_as(tokens["trust.west"], **key))
    assert first.status_code == 201, first.text
    first_id = str(first.json()["id"])
    # Another area's account with the same key: its own new case, no 403 naming the first case.
    east = client.post("/api/v1/cases", json=_report(EAST), headers=_as(tokens["trust.east"], **key))
    assert east.status_code == 201, east.text
    assert east.json()["id"] != int(first_id) and east.json()["location"]["coordinates"] == EAST
    # An account of the same area with the same key and another report: no 409, a case of its own.
    other = client.post("/api/v1/cases", json=_report(WEST, description="另一处"),
                        headers=_as(tokens["trust.west2"], **key))
    assert other.status_code == 201, other.text
    # Even the very same report by another account is not a replay of the first account's case.
    same = client.post("/api/v1/cases", json=_report(WEST), headers=_as(tokens["trust.city"], **key))
    assert same.status_code == 201 and same.json()["id"] != int(first_id)
    # The key's owner still gets its retry answered with its case, and a changed report refused.
    again = client.post("/api/v1/cases", json=_report(WEST), headers=_as(tokens["trust.west"], **key))
    assert again.status_code == 200 and again.json()["id"] == int(first_id)
    assert again.headers["idempotent-replayed"] == "true"
    changed = client.post("/api/v1/cases", json=_report(WEST, description="改了"),
                          headers=_as(tokens["trust.west"], **key))
    assert changed.status_code == 409
    assert case_count(world_engine) == 4


def test_anonymous_keys_never_meet_accounts_keys(client: TestClient, tokens, world_engine) -> None:
    key = {"Idempotency-Key": "shared-key-2"}
    form = {"service_code": "E010101", "lat": str(WEST[1]), "long": str(WEST[0]), "description": "垃圾"}
    taken = client.post("/api/v1/cases", json=_report(WEST), headers=_as(tokens["trust.west"], **key))
    assert taken.status_code == 201
    # An anonymous Open311 request with the key an account used first: a new public request, not a 409.
    public = client.post("/open311/v2/requests.json", data=form, headers=_as(None, **key))
    assert public.status_code == 201, public.text
    assert public.json()[0]["service_request_id"] != str(taken.json()["id"])
    # Its retry (same key, same request) is answered with the same request.
    retry = client.post("/open311/v2/requests.json", data=form, headers=_as(None, **key))
    assert retry.status_code == 200 and retry.json() == public.json()
    # Another anonymous request under the same key (another citizen, maybe behind the same address) is a
    # request of its own: anonymous callers cannot be told apart, so nothing about the first one is answered.
    other = client.post("/open311/v2/requests.json", data={**form, "description": "另一件"}, headers=_as(None, **key))
    assert other.status_code == 201, other.text
    assert other.json()[0]["service_request_id"] != public.json()[0]["service_request_id"]
    # An account that takes the anonymous key later still gets its own case.
    later = client.post("/api/v1/cases", json=_report(WEST, description="后来"),
                        headers=_as(tokens["trust.west2"], **key))
    assert later.status_code == 201
    assert case_count(world_engine) == 4


# -- Finding 3: an unverified report never absorbs a trusted one ----------------------------------------------

NEAR_WEST = [120.0601, 31.17]  # about 10 m east of WEST


def test_a_public_report_never_makes_an_inspectors_report_a_duplicate(client: TestClient, tokens) -> None:
    form = {"service_code": "E010101", "lat": str(WEST[1]), "long": str(WEST[0]), "description": "路边垃圾"}
    public = client.post("/open311/v2/requests.json", data=form, headers=_as(None))
    assert public.status_code == 201
    public_id = int(public.json()[0]["service_request_id"])
    inspector = client.post("/api/v1/cases", json=_report(NEAR_WEST), headers=_as(tokens["trust.west2"]))
    assert inspector.status_code == 201, inspector.text
    trusted = inspector.json()
    assert trusted["duplicate_of"] is None and trusted["state"] == "reported"  # a case of its own
    # The other way round still holds: a later public report joins the inspector's case.
    again = client.post("/open311/v2/requests.json", data=form, headers=_as(None))
    assert "已并入" in again.json()[0]["service_notice"]
    joined = client.get(f"/api/v1/cases/{again.json()[0]['service_request_id']}").json()
    assert joined["duplicate_of"] == public_id and joined["state"] == "voided"  # the nearest: 0 m
    # A hotline report is not absorbed by a public one either, but joins the inspector's.
    hotline = client.post("/api/v1/cases", json=_report(NEAR_WEST, source="hotline"),
                          headers=_as(tokens["trust.west"]))
    assert hotline.json()["duplicate_of"] == trusted["id"]


SOURCES = ("inspector", "dispatcher", "video", "hotline", "public")
# Who may absorb whom: the original's trust must reach the report's (public 0 < hotline 1 < the rest 2);
# once verified (any state after "reported"), any original is trusted.
EXPECTED_TRUST = {"inspector": 2, "dispatcher": 2, "video": 2, "hotline": 1, "public": 0}


@pytest.mark.parametrize("mode", ["nearby", "same component"])
def test_duplicate_rule_per_source_sql_and_python_agree(world, reference, mode) -> None:
    """Every source of the original × its verification × every source of the report: the single-report SQL
    (assign_core.sql), the batch path's in-process rule (duplicates.py) and the table above decide alike."""
    from datetime import UTC, datetime

    from spatial.cases.assignment.batch import assign_batch
    from spatial.cases.assignment.rules import AssignmentInput, assign
    from spatial.cases.intake import create_case
    from spatial.cases.schemas import CaseCreate

    at = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    category, component = ("E010401", "3205060101000001") if mode == "same component" else ("E010101", None)
    place = [120.0301, 31.15] if component else WEST
    report_place = [120.0291, 31.1508] if component else NEAR_WEST  # 90 m away on the component; 10 m nearby
    for original_source in SOURCES:
        for verified in (False, True):
            savepoint = world.begin_nested()
            original, _ = create_case(world, reference, CaseCreate(
                category=category, location={"type": "Point", "coordinates": place}, source=original_source,
                component_code=component), actor="test", now=at)
            if verified:
                world.execute(text("UPDATE \"case\" SET state = 'registered' WHERE id = :id"), {"id": original["id"]})
            for source in SOURCES:
                expected = original["id"] if verified or EXPECTED_TRUST[original_source] >= EXPECTED_TRUST[source] \
                    else None
                later = at.replace(minute=30)
                sql = assign(world, reference, category, lon=report_place[0], lat=report_place[1], at=later,
                             component_code=component, source=source).duplicate_of
                [batch] = assign_batch(world, reference, [AssignmentInput(
                    reference.categories[category], *report_place, later, component, source)])
                assert not isinstance(batch, Exception)
                assert (sql, batch.duplicate_of) == (expected, expected), (original_source, verified, source)
            savepoint.rollback()


# -- Finding 1: what the public and each account see through Open311 -----------------------------------------

BASE = "/open311/v2"


def _mixed_cases(client: TestClient) -> dict[int, str]:
    """Cases of every source at places of several scopes (and one owned by the lighting office); id → source."""
    made: dict[int, str] = {}
    for where in (WEST, EAST, SCENIC):
        for source in ("inspector", "hotline", "video"):
            reply = client.post("/api/v1/cases", json=_report(where, source, category="E020101"))  # as admin
            assert reply.status_code == 201, reply.text
            made[reply.json()["id"]] = source
        form = {"service_code": "E010101", "lat": str(where[1]), "long": str(where[0]), "description": "公众"}
        public = client.post(f"{BASE}/requests.json", data=form, headers=_as(None))
        assert public.status_code == 201
        made[int(public.json()[0]["service_request_id"])] = "public"
    light = client.post(f"{BASE}/requests.json", data={"service_code": "E010402", "attribute[component_code]": LIGHT},
                        headers=_as(None))
    made[int(light.json()[0]["service_request_id"])] = "public"
    return made


def _rest_ids(client: TestClient, headers: dict[str, str]) -> set[int]:
    reply = client.get("/api/v1/cases", params={"limit": 500}, headers=headers)
    assert reply.status_code == 200 and reply.json()["next"] is None
    return {c["id"] for c in reply.json()["cases"]}


def _open311_ids(client: TestClient, **how) -> set[int]:
    reply = client.get(f"{BASE}/requests.json", **how)
    assert reply.status_code == 200, reply.text
    return {int(r["service_request_id"]) for r in reply.json()}


@pytest.mark.parametrize("login", [None, *ACCOUNTS])
def test_open311_shows_each_account_exactly_what_rest_shows(client: TestClient, tokens, login) -> None:
    made = _mixed_cases(client)
    token = tokens[login] if login else admin_headers()["Authorization"].split()[1]  # None: the world's admin
    headers, key = _as(token), {"api_key": token}
    rest = _rest_ids(client, headers)
    # The list, by api_key (GeoReport's way) and by the Authorization header alike.
    assert _open311_ids(client, params=key, headers=_as(None)) == rest
    assert _open311_ids(client, headers=headers) == rest
    for case_id in made:
        by_rest = client.get(f"/api/v1/cases/{case_id}", headers=headers)
        by_open311 = client.get(f"{BASE}/requests/{case_id}.json", params=key, headers=_as(None))
        assert by_open311.status_code == by_rest.status_code, (login, case_id, by_open311.text)
        if by_rest.status_code == 200:
            [item] = by_open311.json()
            assert [item["long"], item["lat"]] == by_rest.json()["location"]["coordinates"]
            token = client.get(f"{BASE}/tokens/{by_rest.json()['case_no']}.json", params=key, headers=_as(None))
            assert token.status_code == 200
    assert rest or login in ("trust.planner",)  # every account but one sees some of these cases


def test_the_public_sees_only_public_requests_coarsely(client: TestClient, tokens) -> None:
    made = _mixed_cases(client)
    public = {case_id for case_id, source in made.items() if source == "public"}
    anonymous = _as(None)
    assert _open311_ids(client, headers=anonymous) == public
    assert client.get("/api/v1/cases", headers=anonymous).status_code == 401
    for case_id, source in made.items():
        reply = client.get(f"{BASE}/requests/{case_id}.json", headers=anonymous)
        case = client.get(f"/api/v1/cases/{case_id}").json()  # as admin
        token = client.get(f"{BASE}/tokens/{case['case_no']}.json", headers=anonymous)
        if source != "public":  # inspectors', hotline and camera cases: as if they did not exist
            assert reply.status_code == 404 and token.status_code == 404, reply.text
            continue
        assert token.status_code == 200
        [item] = reply.json()
        lon, lat = case["location"]["coordinates"]
        # The location rounded to 0.001° (about 100 m); the address names the town and community only.
        assert (item["long"], item["lat"]) == (round(lon, 3), round(lat, 3))
        assert abs(item["long"] - lon) <= 0.0005 and abs(item["lat"] - lat) <= 0.0005
        assert case["grid"]["code"] not in reply.text
        # (The grid's name is looked for only where it differs from its community's: other modules' edits of the
        # shared test world can leave a community named like one of its grids — seen once in a full run.)
        if case["grid"]["name"] != case["community"]["name"]:
            assert case["grid"]["name"] not in reply.text
        assert item["address"] == f"{case['town']['name']} {case['community']['name']}"
        for internal in (case["owner"]["key"], "reporter"):
            assert internal not in reply.text
    # The exact point of a request within 100 m of another place stays hidden: nearby requests look alike.
    fine = client.post(f"{BASE}/requests.json", headers=anonymous, data={
        "service_code": "E010101", "lat": "31.17012", "long": "120.06034", "description": "公众"})
    [item] = client.get(f"{BASE}/requests/{fine.json()[0]['service_request_id']}.json", headers=anonymous).json()
    assert (item["lat"], item["long"]) == (31.17, 120.06)
    # A key that is no key is refused, never read as the public.
    bad = client.get(f"{BASE}/requests.json", params={"api_key": "no-such-key"}, headers=anonymous)
    assert bad.status_code == 401


def test_odd_keys_and_the_xml_view(client: TestClient, tokens) -> None:
    made = _mixed_cases(client)
    public = {str(i) for i, source in made.items() if source == "public"}
    # NUL is refused before any route runs (400, api/middleware.py: UnreadableText); the others are keys no
    # account has (401). Either way a GeoReport error, never the public's list.
    for odd, status in (("\x00", 400), ("k" * 5000, 401), ("é", 401)):
        reply = client.get(f"{BASE}/requests.xml", params={"api_key": odd}, headers=_as(None))
        assert reply.status_code == status and b"<errors>" in reply.content
    root = ET.fromstring(client.get(f"{BASE}/requests.xml", headers=_as(None)).content)
    assert {r.findtext("service_request_id") for r in root.findall("request")} == public
    assert all(len(r.findtext("lat", "").split(".")[-1]) <= 3 for r in root.findall("request"))


# -- Finding 4 for single reports: the source follows the account --------------------------------------------

@pytest.mark.parametrize("path", ["fast path", "keyed route"])
def test_a_single_reports_source_follows_the_account(client: TestClient, tokens, world_engine, path) -> None:
    """An inspector cannot file a report as the public (nor a partner as an inspector): such a report could
    dodge the duplicate rule's trust order or the public view; a report naming no source takes the account's.
    Both intake paths (api/fast_intake.py and the route, which an Idempotency-Key selects) hold the rule."""
    def post(login: str, **body) -> dict:
        headers = _as(tokens[login], **({"Idempotency-Key": f"src-{login}-{len(body)}-{path[:4]}"}
                                        if path == "keyed route" else {}))
        reply = client.post("/api/v1/cases", json={"category": "E010101", "location": {
            "type": "Point", "coordinates": EAST if login == "trust.partner" else WEST}, **body}, headers=headers)
        return {"status": reply.status_code, **reply.json()}

    before = case_count(world_engine)
    refused = post("trust.west2", source="public")
    assert refused["status"] == 403 and "inspector" in refused["detail"]
    assert post("trust.partner", source="inspector")["status"] == 403
    assert case_count(world_engine) == before
    own = post("trust.west2")
    assert own["status"] == 201
    partner = post("trust.partner")
    assert partner["status"] == 201
    with world_engine.connect() as conn:
        sources = dict(conn.execute(text('SELECT id, source FROM "case" WHERE id = ANY(:ids)'),
                                    {"ids": [own["id"], partner["id"]]}).all())
    assert sources == {own["id"]: "inspector", partner["id"]: "hotline"}
    # Accounts that may name any channel still do (a dispatcher entering a citizen's call).
    assert post("trust.west", source="hotline")["status"] == 201
