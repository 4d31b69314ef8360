"""The owner-by-flow rule has two forms, held together here: the CASE of spatial/store/sql/assign_core.sql
(part of the one intake statement) and ``spatial.cases.assignment.owner.owner_for`` (the in-process batch
path and the demo). For every leaf category of the reference table, with and without a bound component,
the SQL statement and the Python function give the same owner key and owner area."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from spatial.cases.assignment.owner import owner_for
from spatial.cases.assignment.rules import AssignmentInput, assign_rows
from tests.world import grid_code

AT = datetime(2026, 11, 13, 16, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
POINT = (120.06, 31.17)  # in grid 320506001001002, kilometres from every component of the world
LIGHT = "3205060118000001"  # a street light of the world, 5 km away: bound only because it is named


def _leaf_codes() -> list[str]:
    """The leaf categories of the reference table (those with a flow), in file order."""
    data = resources.files("spatial.reference.data").joinpath("event_classes.csv").read_text(encoding="utf-8")
    return [row["code"] for row in csv.DictReader(io.StringIO(data)) if row["flow"]]


def test_the_test_databases_hold_every_leaf_of_the_reference_table(reference) -> None:
    assert sorted(reference.categories) == sorted(_leaf_codes())
    assert {c.flow for c in reference.categories.values()} == {"grid_first", "department", "component",
                                                               "enforcement"}


@pytest.mark.parametrize("component", [None, LIGHT], ids=["no component", "named component"])
def test_sql_and_python_give_the_same_owner(world, reference, component) -> None:
    codes = _leaf_codes()
    reports = [AssignmentInput(reference.categories[code], *POINT, AT, component) for code in codes]
    rows = assign_rows(world, reports)
    component_owner = None
    if component:
        component_owner = world.execute(text("SELECT owner_key FROM component WHERE code = :c"),
                                        {"c": component}).scalar_one()
    assert component_owner in (None, "LIGHTING")
    for code, row in zip(codes, rows, strict=True):
        cat = reference.categories[code]
        assert row["grid_code"] == grid_code(1, 1, 2) and row["component_owner"] == component_owner, code
        python = owner_for(cat.flow, cat.handler, cat.enforcer, grid_code=row["grid_code"],
                           component_owner=component_owner)
        assert (row["owner_key"], row["owner_area_code"]) == python, (code, cat.flow, cat.handler, cat.enforcer)
