"""The role × scope table of spatial/access/scope.py as known answers, for every role (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spatial.access.principal import Principal
from spatial.access.scope import (
    EDITORS,
    case_filter,
    check_edit_base_grid,
    check_edit_collection,
    check_edit_component,
    check_edit_special_grid,
    check_report,
    check_report_time,
    check_row_source,
    covers,
    may_edit_collection,
    may_read,
    report_area,
    row_source,
    scope_problem,
)
from spatial.errors import ForbiddenError
from spatial.store.models.accounts import ROLES

DISTRICT, TOWN, GRID, SCENIC = "320506", "320506001", "320506001001002", "320506S0001"
ACCOUNTS = {  # one typical account per role (and two more scopes worth telling apart)
    "admin": ("admin", "*"),
    "dispatcher": ("dispatcher", TOWN),
    "inspector": ("inspector", GRID),
    "grid_chief": ("grid_chief", SCENIC),
    "partner": ("partner", "*"),
    "partner.east": ("partner", "320506002"),
    "planner": ("planner", DISTRICT),
    "planner.town": ("planner", TOWN),
    "viewer": ("viewer", "320506002"),
    "handler": ("handler", "LIGHTING"),
    "owner": ("owner", "LIGHTING"),
}


def _as(login: str) -> Principal:
    role, scope = ACCOUNTS[login]
    return Principal(1, login, role, scope)


def test_every_role_has_an_account_here() -> None:
    assert {role for role, _ in ACCOUNTS.values()} == set(ROLES)


@pytest.mark.parametrize(("role", "scope", "fits"), [
    ("admin", "*", True), ("admin", DISTRICT, False),
    ("partner", "*", True), ("partner", TOWN, True), ("partner", "LIGHTING", False),
    ("dispatcher", TOWN, True), ("dispatcher", "*", False), ("dispatcher", "LIGHTING", False),
    ("inspector", GRID, True), ("inspector", "3205", False),
    ("grid_chief", SCENIC, True), ("grid_chief", "320506X0001", False),
    ("planner", DISTRICT, True), ("planner", "*", False),
    ("viewer", "320506002", True), ("viewer", "*", False),
    ("handler", "LIGHTING", True), ("handler", TOWN, False), ("handler", "*", False),
    ("owner", "LIGHTING", True), ("owner", SCENIC, False), ("owner", "*", False),
])
def test_scope_problem(role: str, scope: str, fits: bool) -> None:
    assert (scope_problem(role, scope) is None) is fits


@pytest.mark.parametrize(("scope", "grid", "specials", "answer"), [
    ("*", None, (), True),
    ("*", GRID, (), True),
    (DISTRICT, GRID, (), True),
    (TOWN, GRID, (), True),
    (GRID, GRID, (), True),
    ("320506002", GRID, (), False),
    ("320507", GRID, (), False),
    (DISTRICT, None, (), False),
    (SCENIC, GRID, (SCENIC,), True),
    (SCENIC, GRID, ("320506P0001",), False),
    (SCENIC, GRID, None, False),
])
def test_covers(scope: str, grid: str | None, specials, answer: bool) -> None:
    assert covers(scope, grid, specials) is answer


@pytest.mark.parametrize(("login", "area"), [
    ("admin", None), ("partner", None), ("partner.east", "320506002"), ("dispatcher", TOWN), ("inspector", GRID),
    ("grid_chief", SCENIC), ("planner", ForbiddenError), ("planner.town", ForbiddenError),
    ("viewer", ForbiddenError), ("handler", ForbiddenError), ("owner", ForbiddenError),
])
def test_report_area(login: str, area) -> None:
    if area is ForbiddenError:
        with pytest.raises(ForbiddenError, match="cannot report cases"):
            report_area(_as(login))
    else:
        assert report_area(_as(login)) == area


def test_the_public_channel_reports_anywhere_and_areas_are_enforced() -> None:
    assert report_area(None) is None
    check_report(None, GRID, ())
    check_report(_as("dispatcher"), GRID, ())
    with pytest.raises(ForbiddenError, match="outside your area"):
        check_report(_as("partner.east"), GRID, ())


# town 001, in the scenic area, a street light's; town 002, a water department's
WEST_CASE = {"grid_code": GRID, "special_codes": [SCENIC], "owner_key": "LIGHTING"}
EAST_CASE = {"grid_code": "320506002002003", "special_codes": [], "owner_key": "WATER"}


@pytest.mark.parametrize(("login", "west", "east"), [
    ("admin", True, True), ("partner", True, True), ("partner.east", False, True), ("dispatcher", True, False),
    ("inspector", True, False), ("grid_chief", True, False), ("planner", True, True),
    ("planner.town", True, False), ("viewer", False, True), ("handler", True, False), ("owner", True, False),
])
def test_may_read(login: str, west: bool, east: bool) -> None:
    assert may_read(_as(login), **WEST_CASE) is west
    assert may_read(_as(login), **EAST_CASE) is east


@pytest.mark.parametrize(("login", "condition"), [
    ("admin", None), ("partner", None), ("partner.east", ("prefix", "320506002")), ("dispatcher", ("prefix", TOWN)),
    ("inspector", ("prefix", GRID)), ("grid_chief", ("special", SCENIC)), ("planner", ("prefix", DISTRICT)),
    ("planner.town", ("prefix", TOWN)), ("viewer", ("prefix", "320506002")), ("handler", ("owner", "LIGHTING")),
    ("owner", ("owner", "LIGHTING")),
])
def test_case_filter(login: str, condition) -> None:
    assert case_filter(_as(login)) == condition


def test_case_filter_of_the_system_itself() -> None:
    assert case_filter(None) is None


COLLECTIONS = ("components", "special-grids", "grids", "towns")


@pytest.mark.parametrize(("login", "writable"), [
    ("admin", {"components", "special-grids", "grids"}), ("owner", {"components"}),
    ("planner", {"special-grids", "grids"}), ("planner.town", {"special-grids", "grids"}),
    ("dispatcher", set()), ("inspector", set()), ("grid_chief", set()), ("partner", set()),
    ("partner.east", set()), ("viewer", set()), ("handler", set()),
])
def test_may_edit_collection(login: str, writable: set[str]) -> None:
    assert {c for c in COLLECTIONS if may_edit_collection(_as(login), c)} == writable
    for collection in set(COLLECTIONS) - writable:
        with pytest.raises(ForbiddenError, match=f"may not edit {collection}"):
            check_edit_collection(_as(login), collection)
    assert set(EDITORS) == {"components", "special-grids", "grids"}


# What each account may edit: components owned by LIGHTING / WATER, base grids in 320506 / 320507, special
# grids of 320506 / 320507.
EDITS = [
    (check_edit_component, "LIGHTING", "components owned by LIGHTING"),
    (check_edit_component, "WATER", "components owned by WATER"),
    (check_edit_base_grid, GRID, f"base grid {GRID}"),
    (check_edit_base_grid, "320507001001001", "base grid 320507001001001"),
    (check_edit_special_grid, SCENIC, "special grids of district 320506"),
    (check_edit_special_grid, "320507P0001", "special grids of district 320507"),
]


@pytest.mark.parametrize(("login", "answers"), [
    ("admin", (True, True, True, True, True, True)),
    ("owner", (True, False, False, False, False, False)),
    ("planner", (False, False, True, False, True, False)),
    ("planner.town", (False, False, True, False, False, False)),  # special grids need the district's planner
    ("dispatcher", (False,) * 6), ("inspector", (False,) * 6), ("grid_chief", (False,) * 6),
    ("partner", (False,) * 6), ("partner.east", (False,) * 6), ("viewer", (False,) * 6),
    ("handler", (False,) * 6),
])
def test_edit_rules(login: str, answers: tuple[bool, ...]) -> None:
    principal = _as(login)
    for (check, target, what), allowed in zip(EDITS, answers, strict=True):
        if allowed:
            check(principal, target)
            continue
        role, scope = ACCOUNTS[login]
        with pytest.raises(ForbiddenError) as refused:
            check(principal, target)
        assert refused.value.detail == f"{login} ({role}, {scope}) may not edit {what}"


def test_a_base_grid_changed_by_editing_another_is_named() -> None:
    """Finding 2 of issue 23: the edit of one grid is checked against each neighbour it changes, and the
    refusal says which grid's edit would change it."""
    planner = Principal(1, "planner.grid", "planner", GRID)
    check_edit_base_grid(planner, GRID)
    neighbour = "320506001001001"
    with pytest.raises(ForbiddenError) as refused:
        check_edit_base_grid(planner, neighbour, changed_by=GRID)
    assert refused.value.detail == (f"planner.grid (planner, {GRID}) may not edit base grid {neighbour},"
                                    f" which editing {GRID} would change")
    check_edit_base_grid(_as("planner.town"), neighbour, changed_by=GRID)


@pytest.mark.parametrize(("login", "default", "allowed"), [
    ("admin", "hotline", {"inspector", "hotline", "public", "video", "dispatcher"}),
    ("dispatcher", "hotline", {"inspector", "hotline", "public", "video", "dispatcher"}),
    ("inspector", "inspector", {"inspector"}), ("grid_chief", "inspector", {"inspector"}),
    ("partner", "hotline", {"hotline", "public"}), ("partner.east", "hotline", {"hotline", "public"}),
])
def test_a_bulk_rows_source_follows_the_account(login: str, default: str, allowed: set[str]) -> None:
    """Finding 4 of issue 23: the source a row names is the account's (history importers name any)."""
    assert row_source(_as(login)) == default and row_source(None) == "hotline"
    for source in ("inspector", "hotline", "public", "video", "dispatcher"):
        check_row_source(None, source)  # the system itself (gridlink import cases)
        if source in allowed:
            check_row_source(_as(login), source)
        else:
            with pytest.raises(ForbiddenError, match=f"not '{source}'"):
                check_row_source(_as(login), source)


NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("login", "earliest"), [
    ("admin", timedelta(days=30)), ("dispatcher", timedelta(days=30)), ("inspector", timedelta(minutes=5)),
    ("grid_chief", timedelta(minutes=5)), ("partner", timedelta(minutes=5)),
])
def test_only_history_importers_date_a_report_back(login: str, earliest: timedelta) -> None:
    check_report_time(_as(login), NOW - earliest, NOW)
    with pytest.raises(ForbiddenError, match="reported_at: "):
        check_report_time(_as(login), NOW - earliest - timedelta(seconds=1), NOW)
    check_report_time(None, datetime(2020, 3, 1, tzinfo=UTC), NOW)  # the system itself imports history
