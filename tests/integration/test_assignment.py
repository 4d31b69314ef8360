"""Assignment rules on the known-answer world (tests/world.py): grid, boundary rule, coverage, component,
owner, duplicates, deadline, idempotency."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from spatial.access.principal import Principal
from spatial.cases.assignment.rules import assign
from spatial.cases.intake import create_case
from spatial.cases.read import get_case
from spatial.cases.schemas import CaseCreate
from spatial.errors import ComponentError, IdempotencyConflictError, OutsideCoverageError, UnknownCategoryError
from spatial.grids.locate import locate
from tests.world import grid_code

SH = ZoneInfo("Asia/Shanghai")
FRIDAY_4PM = datetime(2026, 11, 13, 16, 0, tzinfo=SH)


def test_interior_point(world) -> None:
    found = locate(world, 120.06, 31.17)
    assert found["grid"]["code"] == grid_code(1, 1, 2)
    assert found["community"]["code"] == "320506001001"
    assert found["town"]["code"] == "320506001"
    assert found["district"] == {"code": "320506", "name": "测试区", "level": 1}
    assert found["special_grids"] == []


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        (120.05, 31.17, grid_code(1, 1, 1)),   # edge between grids 1 and 2: smaller code wins
        (120.2, 31.17, grid_code(1, 1, 4)),    # edge between towns: town 001's grid wins
        (120.1, 31.1, grid_code(1, 1, 2)),     # corner of four grids in two communities
        (120.0, 31.0, grid_code(1, 2, 1)),     # outer corner of the district
    ],
)
def test_shared_boundary_goes_to_the_smallest_code(world, lon, lat, expected) -> None:
    found = locate(world, lon, lat)
    assert found["grid"]["code"] == expected
    assert found["community"]["code"] == expected[:12] and found["town"]["code"] == expected[:9]


def test_special_grid(world) -> None:
    found = locate(world, 120.2, 31.1)
    assert [s["code"] for s in found["special_grids"]] == ["320506S0001"]


def test_outside_coverage_names_the_nearest_grid(world) -> None:
    with pytest.raises(OutsideCoverageError) as caught:
        locate(world, 120.41, 31.15)
    nearest = caught.value.extra["nearest_grid"]
    assert nearest["code"] == grid_code(2, 1, 4)
    assert 940 < nearest["distance_m"] < 970  # 0.01° of longitude at 31.15° N ≈ 953 m
    assert "nearest" in caught.value.detail


def test_nearest_matching_component_within_radius(world, reference) -> None:
    # 10 m from the water manhole cover (0101), 1.9 km from the street light: manhole category binds it.
    result = assign(world, reference, "E010401", lon=120.0301, lat=31.1500, at=FRIDAY_4PM)
    assert result.component_code == "3205060101000001"
    assert 9 < result.component_distance_m < 11
    assert result.owner_key == "WATER"
    lights = assign(world, reference, "E010402", lon=120.0301, lat=31.1500, at=FRIDAY_4PM)
    assert lights.component_code is None  # no street light within 30 m
    assert (lights.owner_key, lights.owner_area_code) == ("TOWN", "320506001")  # 属地兜底


def test_retired_components_are_not_suggested(world, reference) -> None:
    result = assign(world, reference, "E010401", lon=120.03025, lat=31.1500, at=FRIDAY_4PM)  # removed one 5 m away
    assert result.component_code == "3205060101000001"  # the removed one, though nearer, is skipped


@pytest.mark.parametrize(
    ("code", "message"),
    [("3205069999000001", "unknown component"), ("3205060101000002", "removed"),
     ("3205070118000001", "belongs to district 320507")],
)
def test_named_component_is_checked(world, reference, code, message) -> None:
    with pytest.raises(ComponentError, match=message):
        assign(world, reference, "E010402", lon=120.01, lat=31.15, at=FRIDAY_4PM, component_code=code)


def test_named_component_wins(world, reference) -> None:
    result = assign(world, reference, "E010405", lon=120.02, lat=31.15, at=FRIDAY_4PM,
                    component_code="3205060118000001")
    assert result.component_code == "3205060118000001"
    assert 940 < result.component_distance_m < 970
    assert result.owner_key == "LIGHTING"


@pytest.mark.parametrize(
    ("category", "owner", "area"),
    [("E010101", "GRID_CHIEF", grid_code(1, 1, 2)), ("E010103", "SANITATION", None),
     ("E010105", "ENFORCE", "320506001"), ("E040102", "HRSS", None)],
)
def test_owner_by_flow(world, reference, category, owner, area) -> None:
    result = assign(world, reference, category, lon=120.06, lat=31.17, at=FRIDAY_4PM)
    assert (result.owner_key, result.owner_area_code) == (owner, area)


def test_unknown_or_non_leaf_category(world, reference) -> None:
    for code in ("E999999", "E0101"):
        with pytest.raises(UnknownCategoryError):
            assign(world, reference, code, lon=120.06, lat=31.17, at=FRIDAY_4PM)


def test_deadline_on_the_working_calendar(world, reference) -> None:
    # E010101: 4 working hours. Friday 16:00 → 1.5 h Friday + 2.5 h Monday from 08:30 → Monday 11:00.
    result = assign(world, reference, "E010101", lon=120.06, lat=31.17, at=FRIDAY_4PM)
    assert result.deadline == datetime(2026, 11, 16, 11, 0, tzinfo=SH)
    # E010401: 2 clock hours, non-stop.
    urgent = assign(world, reference, "E010401", lon=120.06, lat=31.17, at=FRIDAY_4PM)
    assert urgent.deadline == FRIDAY_4PM + timedelta(hours=2)


def _create(conn, ref, report, actor, **kw) -> tuple[int, bool]:
    case, created = create_case(conn, ref, report, actor=actor, **kw)
    return case["id"], created


def _report(lon=120.06, lat=31.17, category="E010101", **kw) -> CaseCreate:
    return CaseCreate(category=category, location={"type": "Point", "coordinates": [lon, lat]}, description="test",
                      **kw)


def test_duplicates_within_50_m_and_24_h(world, reference) -> None:
    first, _ = _create(world, reference, _report(), "test", now=FRIDAY_4PM)
    near, _ = _create(world, reference, _report(lon=120.0604), "test", now=FRIDAY_4PM + timedelta(hours=2))
    assert get_case(world, reference, near)["duplicate_of"] == first
    assert get_case(world, reference, near)["state"] == "voided"
    far, _ = _create(world, reference, _report(lon=120.0610), "test", now=FRIDAY_4PM + timedelta(hours=3))
    assert get_case(world, reference, far)["duplicate_of"] is None  # ~95 m away
    late, _ = _create(world, reference, _report(), "test", now=FRIDAY_4PM + timedelta(hours=25))
    assert get_case(world, reference, late)["duplicate_of"] is None  # more than 24 h later
    other, _ = _create(world, reference, _report(category="E010104"), "test", now=FRIDAY_4PM)
    assert get_case(world, reference, other)["duplicate_of"] is None  # another category


def test_duplicate_on_the_same_component(world, reference) -> None:
    first, _ = _create(world, reference, _report(120.0301, 31.15, "E010401"), "test", now=FRIDAY_4PM)
    # 90 m away, but naming the same component.
    second, _ = _create(world, reference, _report(120.0291, 31.1508, "E010401",
                                                      component_code="3205060101000001"), "test", now=FRIDAY_4PM)
    assert get_case(world, reference, second)["duplicate_of"] == first


def test_case_keeps_assignment_and_history(world, reference) -> None:
    case_id, created = _create(world, reference, _report(lon=120.2, lat=31.1), "test", now=FRIDAY_4PM)
    case = get_case(world, reference, case_id)
    assert created and case["state"] == "reported"
    assert case["grid"]["code"] == grid_code(1, 1, 4) and case["town"]["name"] == "测试1街道"
    assert [s["code"] for s in case["special_grids"]] == ["320506S0001"]
    assert case["owner"] == {"key": "GRID_CHIEF", "name": "测试1-1第4网格 网格长", "area": grid_code(1, 1, 4)}
    assert case["case_no"].startswith("20261113")
    assert [e["kind"] for e in case["history"]] == ["report"]


def test_idempotency_key(world, reference) -> None:
    admin = Principal(account_id=1, login="admin", role="admin", scope="*")
    first, created = _create(world, reference, _report(), "test", idempotency_key="k-1", now=FRIDAY_4PM, by=admin)
    again, created_again = _create(world, reference, _report(), "test", idempotency_key="k-1", by=admin)
    assert created and not created_again and again == first
    with pytest.raises(IdempotencyConflictError):
        _create(world, reference, _report(lon=120.3), "test", idempotency_key="k-1", by=admin)
    # Anonymous callers: the same report under the same key is a retry, another report a new case.
    public, _ = _create(world, reference, _report(lon=120.3), "test", idempotency_key="k-1", now=FRIDAY_4PM)
    assert public != first
    assert _create(world, reference, _report(lon=120.3), "test", idempotency_key="k-1") == (public, False)
    assert _create(world, reference, _report(lon=120.31), "test", idempotency_key="k-1")[1]


def test_location_from_the_named_component(world, reference) -> None:
    report = CaseCreate(category="E010402", component_code="3205060118000001")
    case_id, _ = _create(world, reference, report, "test", now=FRIDAY_4PM)
    case = get_case(world, reference, case_id)
    assert case["location"]["coordinates"] == [120.01, 31.15]
    assert case["component"] == {"code": "3205060118000001", "class_code": "0118", "distance_m": 0.0}
