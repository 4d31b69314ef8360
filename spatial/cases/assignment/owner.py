"""Who owns a case: SPEC "Assignment rules" step 3, the owner by the category's flow.

The rule has two forms that must agree: this one, for the in-process batch path
(spatial/cases/assignment/batch.py) and the demo generator, and the ``owner_key`` / ``owner_area_code``
CASE of ``spatial/store/sql/assign_core.sql``, which stays in SQL because it is part of the one intake
statement. ``tests/integration/test_owner_parity.py`` holds the two together on every leaf category of the
reference table.
"""

from __future__ import annotations

from spatial.codes import town_of
from spatial.grids.locate import area_of
from spatial.reference.cache import ReferenceCache

GRID_CHIEF = "GRID_CHIEF"  # the chief of the case's base grid (grid_first: "巡办分离")
TOWN = "TOWN"  # the town sub-centre, owner of last resort (属地兜底)
COMPONENT_OWNER = "COMPONENT_OWNER"  # a handler column value: "the owner of the component concerned"
ENFORCE = "ENFORCE"  # the enforcement bureau, when a category names no enforcer of its own


def owner_for(flow: str, handler: str, enforcer: str | None, *, grid_code: str,
              component_owner: str | None) -> tuple[str, str | None]:
    """Return (owner key, owner area code) of a case by its category's flow.

    Args:
        flow: the category's routing flow (``grid_first``, ``department``, ``component``, ``enforcement``).
        handler: the category's handling department key (``TOWN`` and ``COMPONENT_OWNER`` mean the locality).
        enforcer: the category's enforcement department key, if any.
        grid_code: the base grid the case lies in.
        component_owner: the owner key of the component bound to the case, if one is.

    Returns:
        The owner's key and, for owners that are a place (a grid chief, a town sub-centre, the
        enforcement bureau acting in a town), the area code they act for; None for a department or a
        component owner.
    """
    if flow == "component":
        if component_owner is not None:
            return component_owner, None
        return TOWN, town_of(grid_code)
    if flow == "grid_first":
        return GRID_CHIEF, grid_code
    if flow == "enforcement":
        return (enforcer if enforcer is not None else ENFORCE), town_of(grid_code)
    if handler in (TOWN, COMPONENT_OWNER):
        return TOWN, town_of(grid_code)
    return handler, None


def owner_name(ref: ReferenceCache, key: str, grid_code: str) -> str:
    """Return the owner's display name: a department, a grid's chief, or a town's sub-centre."""
    if key == GRID_CHIEF:
        return f"{area_of(ref, grid_code).name} 网格长"
    if key == TOWN:
        return f"{area_of(ref, town_of(grid_code)).name}网格化联动分中心"
    return ref.departments.get(key, key)
