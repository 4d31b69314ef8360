"""Editing the component registry: create, replace and delete one component (OGC API Features Part 4).

Who: an admin anywhere, an asset owner (role ``owner``) only for components it owns — before and after the
edit (``spatial.access.scope.check_edit_component``; ``check_editor`` asks it before a write is read).
Concurrency: every component carries a ``revision``; a replace or delete names the revision it read
(``If-Match``) and fails if another edit came first, so no edit is lost silently. Validation (the same for
every entry point): a 16-digit code (district + class + serial) of a known class in a known district; a
valid, non-empty geometry of the class's kind (point, line or polygon), at most ``MAX_VERTICES`` vertices and
``MAX_AREA_M2`` square metres, lying in its district; known departments; a known status. The base grid is
assigned spatially (the grid covering the component's point on surface, smallest code on shared edges).
The rules are those of spatial/components/rules.py, shared with the survey import.
Every edit appends to ``component_history``, which outlives a deleted component (migration 0009). A
component that cases refer to is not deleted: set its status to ``removed``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shapely.geometry import shape
from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_component
from spatial.codes import component_class_of, district_of
from spatial.components.rules import EDITABLE, ComponentInput, RuleBook, check_component
from spatial.components.serials import allocate, lock_series
from spatial.errors import ConflictError

__all__ = ["ComponentInput", "assign_code", "check_editor", "create", "delete", "parse_feature", "replace",
           "revision_of"]
CLASS_CODE = re.compile(r"[0-9]{4}")
DISTRICT_CODE = re.compile(r"[0-9]{6}")


def assign_code(conn: Connection, feature: Any) -> Any:
    """A new component's feature with the next free code of its district and class when it names no code
    (issue 24): the class from ``class_code`` (required then), the district from ``district_code`` or else
    the district its geometry lies in. The series is locked (spatial/components/serials.py) until the
    transaction ends, so the code is the creator's alone; ``parse_feature`` then checks it like any other."""
    props = feature.get("properties") if isinstance(feature, dict) else None
    if not isinstance(props, dict) or props.get("code") is not None:
        return feature  # parse_feature says what is wrong, or the code given is used
    cls = props.get("class_code")
    if not isinstance(cls, str) or not CLASS_CODE.fullmatch(cls):
        raise errors.InvalidParameterError("a component without a code needs its class_code (4 digits), so that "
                                           "the next free code of its district and class can be given",
                                           parameter="class_code")
    district = props.get("district_code")
    if district is None:
        district = RuleBook.load(conn).district_at(geojson_shape(feature.get("geometry")).point_on_surface())
        if district is None:
            raise errors.InvalidGeometryError("the component lies outside every district: no code can be given")
    if not isinstance(district, str) or not DISTRICT_CODE.fullmatch(district):
        raise errors.InvalidParameterError("district_code must be 6 digits", parameter="district_code")
    series = district + cls
    lock_series(conn, [series])
    return {**feature, "properties": {**props, "code": allocate(conn, series, 1)[0]}}


def parse_feature(conn: Connection, feature: Any, code: str | None = None) -> ComponentInput:
    """Validate a GeoJSON Feature as a component (``code``: the one the URL names, for a replace) by the
    registry's rules (spatial/components/rules.py)."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise errors.InvalidParameterError("the body must be a GeoJSON Feature", parameter="body")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise errors.InvalidParameterError("properties must be an object", parameter="properties")
    unknown = sorted(set(props) - set(EDITABLE) - {"class_code", "district_code", "grid_code", "revision"})
    if unknown:
        raise errors.InvalidParameterError(f"unknown properties: {', '.join(unknown)}; editable: {', '.join(EDITABLE)}",
                                    parameter="properties")
    given = props.get("code", code)
    if code is not None and given != code:
        raise errors.InvalidParameterError("the feature's code differs from the one in the URL", parameter="code")
    return check_component(RuleBook.load(conn), {**props, "code": given}, geojson_shape(feature.get("geometry")))


def geojson_shape(value: Any) -> Any:
    """A GeoJSON geometry as shapely; InvalidGeometryError when it does not parse (an unknown type too)."""
    import shapely

    try:
        return shape(value)
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.ShapelyError) as exc:
        raise errors.InvalidGeometryError("geometry is not valid GeoJSON") from exc


_GRID = ("(SELECT min(grid_code) FROM grid_geometry WHERE valid_to IS NULL AND kind = 'base'"
         " AND ST_Covers(geom, ST_PointOnSurface(ST_GeomFromText(:wkt, 4326))))")


def _values(item: ComponentInput) -> dict[str, Any]:
    return {"code": item.code, "cls": component_class_of(item.code), "district": district_of(item.code),
            "name": item.name, "owner": item.owner_key, "manager": item.manager_key, "maintainer": item.maintainer_key,
            "status": item.status, "note": item.note, "wkt": item.geometry.wkt}


def _history(conn: Connection, code: str, actor: str, action: str, changes: dict[str, Any]) -> None:
    conn.execute(text("INSERT INTO component_history (component_code, at, actor, action, changes)"
                      " VALUES (:c, now(), :a, :act, CAST(:ch AS jsonb))"),
                 {"c": code, "a": actor, "act": action, "ch": json.dumps(changes, ensure_ascii=False)})


def create(conn: Connection, principal: Principal, item: ComponentInput) -> int:
    """Store a new component; return its revision (1)."""
    check_edit_component(principal, item.owner_key)
    lock_series(conn, [item.code[:10]])  # an import allocating serials of this series waits, or we wait for it
    exists = ConflictError(f"component {item.code} exists: replace it (PUT) instead")
    if conn.execute(text("SELECT 1 FROM component WHERE code = :c"), {"c": item.code}).first():
        raise exists
    # ON CONFLICT: a survey import or another editor storing this code at the same moment makes this a 409
    # (after waiting for it to commit), never a unique-violation 500.
    stored = conn.execute(text(
        "INSERT INTO component (code, class_code, district_code, grid_code, name, manager_key, owner_key,"
        " maintainer_key, status, note, changed_at, source, revision, geom) VALUES (:code, :cls, :district,"
        f" {_GRID}, :name, :manager, :owner, :maintainer, :status, :note, now(), 'ogc', 1,"
        " ST_GeomFromText(:wkt, 4326)) ON CONFLICT (code) DO NOTHING"), _values(item)).rowcount
    if not stored:
        raise exists
    _history(conn, item.code, principal.login, "create", {"status": item.status, "owner_key": item.owner_key})
    return 1


def _stored(conn: Connection, code: str, *, lock: bool = False) -> tuple[str, int, str]:
    """The component's owner, revision and status (locked for the edit with ``lock``); NotFoundError if none."""
    row = conn.execute(text("SELECT owner_key, revision, status FROM component WHERE code = :c"
                            + (" FOR UPDATE" if lock else "")), {"c": code}).first()
    if row is None:
        raise errors.NotFoundError(f"no component {code}")
    return row[0], int(row[1]), row[2]


def check_editor(conn: Connection, principal: Principal, code: str) -> None:
    """NotFoundError unless component ``code`` exists, ForbiddenError unless the caller may edit it: what an
    edit of a stored component checks before its preconditions and body are read."""
    check_edit_component(principal, _stored(conn, code)[0])


def _locked(conn: Connection, principal: Principal, code: str, expected_revision: int,
            new_owner: str | None = None) -> tuple[int, str]:
    """Lock the component for an edit by ``principal`` read at ``expected_revision`` (who may also need to edit
    for ``new_owner``, the owner it is given); return its revision and status."""
    owner, revision, status = _stored(conn, code, lock=True)
    check_edit_component(principal, owner)
    if new_owner is not None:
        check_edit_component(principal, new_owner)
    if revision != expected_revision:
        raise errors.RevisionMismatchError(f"component {code} is at revision {revision}, not {expected_revision}: "
                                           "read it again", revision=revision)
    return revision, status


def replace(conn: Connection, principal: Principal, item: ComponentInput, *, expected_revision: int,
            reason: str | None = None) -> int:
    """Replace a component read at ``expected_revision``; return its new revision (``reason``: why, kept in
    its history — a status change through the registry API gives one)."""
    revision, status = _locked(conn, principal, item.code, expected_revision, item.owner_key)
    conn.execute(text(
        f"UPDATE component SET grid_code = {_GRID}, name = :name, manager_key = :manager, owner_key = :owner,"
        " maintainer_key = :maintainer, status = :status, note = :note, changed_at = now(),"
        " revision = revision + 1, geom = ST_GeomFromText(:wkt, 4326) WHERE code = :code"), _values(item))
    action = "status" if status != item.status else "update"
    changes = {"revision": revision + 1, "status": item.status, "owner_key": item.owner_key}
    _history(conn, item.code, principal.login, action, changes | ({"reason": reason} if reason else {}))
    return revision + 1


def delete(conn: Connection, principal: Principal, code: str, *, expected_revision: int) -> None:
    """Delete a component no case refers to, read at ``expected_revision``."""
    revision, _ = _locked(conn, principal, code, expected_revision)
    cases = int(conn.execute(text('SELECT count(*) FROM "case" WHERE component_code = :c'),
                             {"c": code}).scalar_one())
    if cases:
        raise errors.ConflictError(f"{cases} case(s) refer to component {code}: set its status to 'removed' instead")
    _history(conn, code, principal.login, "delete", {"revision": revision})
    conn.execute(text("DELETE FROM component WHERE code = :c"), {"c": code})


def revision_of(conn: Connection, code: str) -> int | None:
    """The component's current revision (None if there is no such component)."""
    found = conn.execute(text("SELECT revision FROM component WHERE code = :c"), {"c": code}).scalar()
    return None if found is None else int(found)
