"""The case as the public contract shows it, shaped in one place for every reply: the intake reply (from what
the intake statement returned, without reading the case back), one case read by id, the case list and the
Open311 view. Names and levels of grids come from the reference cache, the owner's name from the owner rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spatial.cases.assignment.owner import owner_name
from spatial.cases.schemas import CaseEvent, CasePublic, ComponentPublic
from spatial.codes import lineage
from spatial.grids.locate import area_of
from spatial.reference.cache import ReferenceCache


def case_public(ref: ReferenceCache, row: Mapping[str, Any], *, with_reporter: bool = False,
                history: list[CaseEvent] | None = None) -> CasePublic:
    """Shape a stored case as the public contract (SPEC ``POST /api/v1/cases``).

    Args:
        ref: the reference cache (grid names and levels, department names).
        row: the case as ``sql/case_get.sql`` reads it (intake builds the same mapping from its statement).
        with_reporter: add the reporter's name and phone (only for the roles that see personal data).
        history: the case's events, for a case read by id.

    Returns:
        The case; ``reporter`` and ``history`` only when asked for.
    """
    grid_code = row["grid_code"]
    district, town, community, grid = (area_of(ref, code).as_dict() for code in lineage(grid_code))
    component: ComponentPublic | None = None
    if row["component_code"]:
        component = {"code": row["component_code"], "class_code": row["component_class"],
                     "distance_m": row["component_distance_m"]}
    case: CasePublic = {
        "id": row["id"], "case_no": row["case_no"], "state": row["state"], "category": row["category_code"],
        "source": row["source"], "description": row["description"],
        "location": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "grid": grid, "community": community, "town": town, "district": district,
        "special_grids": [area_of(ref, code).as_dict() for code in row["special_grid_codes"] or []],
        "owner": {"key": row["owner_key"], "name": owner_name(ref, row["owner_key"], grid_code),
                  "area": row["owner_area_code"]},
        "component": component, "deadline": row["deadline"], "duplicate_of": row["duplicate_of"],
        "reported_at": row["reported_at"], "closed_at": row["closed_at"],
    }
    if with_reporter:
        case["reporter"] = {"name": row["reporter_name"], "phone": row["reporter_phone"]}
    if history is not None:
        case["history"] = history
    return case
