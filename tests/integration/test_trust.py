"""Public view and trust (issue 23, findings 1, 3 and 5) on the known-answer world: what each caller sees of
a case through Open311 compared with REST, which reports may absorb which as duplicates, and whose
Idempotency-Keys can meet."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from spatial.access.accounts import add_user, create_token
from tests.world import DISTRICT, case_count

PASSWORD = "a long enough password"
WEST = [120.06, 31.17]    # town 001, community 001, grid 002
EAST = [120.30, 31.05]    # town 002, community 002, grid 003
ACCOUNTS = {
    "trust.city": ("dispatcher", DISTRICT),
    "trust.west": ("dispatcher", f"{DISTRICT}001"),
    "trust.west2": ("inspector", f"{DISTRICT}001"),
    "trust.east": ("dispatcher", f"{DISTRICT}002"),
}


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE account_id IN (SELECT id FROM account WHERE login = ANY(:l))"),
                     {"l": list(ACCOUNTS)})
        conn.execute(text("DELETE FROM account WHERE login = ANY(:l)"), {"l": list(ACCOUNTS)})
        for login, (role, scope) in ACCOUNTS.items():
            add_user(conn, login, role=role, scope=scope, password=PASSWORD)
        return {login: create_token(conn, login)[0] for login in ACCOUNTS}


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
    assert "已并入案件" in again.json()[0]["service_notice"]
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
