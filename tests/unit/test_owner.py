"""Owner by flow (SPEC "Assignment rules" step 3): known answers of ``owner_for`` for each flow."""

from __future__ import annotations

import pytest

from spatial.cases.assignment.owner import owner_for

GRID = "320506001001002"
TOWN_CODE = "320506001"


@pytest.mark.parametrize(
    ("flow", "handler", "enforcer", "component_owner", "expected"),
    [
        # component: the component's owner; without a component the town sub-centre (属地兜底)
        ("component", "COMPONENT_OWNER", None, "LIGHTING", ("LIGHTING", None)),
        ("component", "COMPONENT_OWNER", None, None, ("TOWN", TOWN_CODE)),
        ("component", "WATER", "ENFORCE", None, ("TOWN", TOWN_CODE)),
        # grid_first: the grid's chief, whatever the handler, the enforcer or a bound component
        ("grid_first", "TOWN", "ENFORCE", None, ("GRID_CHIEF", GRID)),
        ("grid_first", "TOWN", None, "LIGHTING", ("GRID_CHIEF", GRID)),
        # enforcement: the category's enforcer (the bureau when it names none), acting in the town
        ("enforcement", "TOWN", "ENFORCE", None, ("ENFORCE", TOWN_CODE)),
        ("enforcement", "SAFETY", "POLICE", None, ("POLICE", TOWN_CODE)),
        ("enforcement", "ENV", None, "LIGHTING", ("ENFORCE", TOWN_CODE)),
        # department: the named department; the locality when the handler is the town or a component owner
        ("department", "SANITATION", "ENFORCE", None, ("SANITATION", None)),
        ("department", "SANITATION", None, "LIGHTING", ("SANITATION", None)),
        ("department", "TOWN", None, None, ("TOWN", TOWN_CODE)),
        ("department", "COMPONENT_OWNER", None, "LIGHTING", ("TOWN", TOWN_CODE)),
    ],
)
def test_owner_by_flow(flow, handler, enforcer, component_owner, expected) -> None:
    assert owner_for(flow, handler, enforcer, grid_code=GRID, component_owner=component_owner) == expected
