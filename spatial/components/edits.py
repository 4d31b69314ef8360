"""Editing the component registry: create, replace and delete one component (OGC API Features Part 4).

Who: an admin anywhere, an asset owner (role ``owner``) only for components it owns — before and after the
edit (``spatial.access.scope.check_edit_component``; ``check_editor`` asks it before a write is read).
Concurrency: every component carries a ``revision``; a replace or delete names the revision it read
(``If-Match``) and fails if another edit came first, so no edit is lost silently. Validation (the same for
every entry point): a 16-digit code (district + class + serial) of a known class in a known district; a
valid, non-empty geometry of the class's kind (point, line or polygon), at most ``MAX_VERTICES`` vertices and
``MAX_AREA_M2`` square metres, lying in its district; known departments; a known status. The base grid is
assigned spatially (the grid covering the component's point on surface, smallest code on shared edges).
Every edit appends to ``component_history``, which outlives a deleted component (migration 0009). A
component that cases refer to is not deleted: set its status to ``removed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from spatial import errors
from spatial.access.principal import Principal
from spatial.access.scope import check_edit_component
from spatial.codes import COMPONENT_CODE, component_class_of, district_of
from spatial.geo.geometry import checked_shape
from spatial.store.models.components import STATUSES
from spatial.text import text_problem

MAX_VERTICES = 5_000
MAX_AREA_M2 = 1_000_000
KINDS = {"point": ("Point",), "line": ("LineString", "MultiLineString"), "polygon": ("Polygon", "MultiPolygon")}
EDITABLE = ("code", "name", "owner_key", "manager_key", "maintainer_key", "status", "note")


@dataclass(frozen=True)
class ComponentInput:
    """A validated component as a feature describes it."""

    code: str
    name: str | None
    owner_key: str
    manager_key: str
    maintainer_key: str
    status: str
    note: str | None
    geometry: Any  # shapely geometry in EPSG:4326


def parse_feature(conn: Connection, feature: Any, code: str | None = None) -> ComponentInput:
    """Validate a GeoJSON Feature as a component (``code``: the one the URL names, for a replace)."""
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
    if not isinstance(given, str) or not COMPONENT_CODE.fullmatch(given):
        raise errors.InvalidParameterError("code must be 16 digits: district (6) + class (4) + serial (6)",
                                    parameter="code")
    kind = conn.execute(text("SELECT geometry_kind, default_owner FROM component_class WHERE code = :c"),
                        {"c": given[6:10]}).first()
    if kind is None:
        raise errors.InvalidParameterError(f"unknown component class {given[6:10]}", parameter="code")
    owner = _text(props, "owner_key", 64) or kind[1]
    item = ComponentInput(
        code=given, name=_text(props, "name", 200), owner_key=owner,
        manager_key=_text(props, "manager_key", 64) or owner,
        maintainer_key=_text(props, "maintainer_key", 64) or owner,
        status=props.get("status") or "intact", note=_text(props, "note", 2000),
        geometry=_geometry(feature.get("geometry"), kind[0]),
    )
    if item.status not in STATUSES:
        raise errors.InvalidParameterError(f"status must be one of {', '.join(STATUSES)}", parameter="status")
    _check_places_and_keys(conn, item)
    return item


def _text(props: dict, name: str, limit: int) -> str | None:
    value = props.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise errors.InvalidParameterError(f"{name} must be text of at most {limit} characters", parameter=name)
    problem = text_problem(value) if value else None
    if problem:
        raise errors.InvalidTextError(f"{name} {problem}", parameter=name)
    return value


def _geometry(value: Any, kind: str) -> Any:
    return checked_shape(value, KINDS[kind], what=f"a component of this class ({kind})", max_vertices=MAX_VERTICES)


def _check_places_and_keys(conn: Connection, item: ComponentInput) -> None:
    row = conn.execute(text(
        "SELECT ST_Covers(gg.geom, ST_PointOnSurface(g)), ST_Area(g::geography)"
        " FROM ST_GeomFromText(:wkt, 4326) g LEFT JOIN grid_geometry gg"
        " ON gg.grid_code = :d AND gg.valid_to IS NULL AND gg.kind = 'district'"), {
        "wkt": item.geometry.wkt, "d": district_of(item.code)}).first()
    if row is None or row[0] is None:
        raise errors.InvalidParameterError(f"unknown district {district_of(item.code)}", parameter="code")
    if not row[0]:
        raise errors.InvalidGeometryError(f"the component lies outside district {district_of(item.code)}")
    if row[1] and row[1] > MAX_AREA_M2:
        raise errors.InvalidGeometryError(f"the component covers more than {MAX_AREA_M2:,} m²")
    keys = {item.owner_key, item.manager_key, item.maintainer_key}
    known = {k for (k,) in conn.execute(text("SELECT key FROM department WHERE key = ANY(:k)"), {"k": list(keys)})}
    if keys - known:
        raise errors.InvalidParameterError(f"unknown department(s): {', '.join(sorted(keys - known))}",
                                    parameter="owner_key")


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
    if conn.execute(text("SELECT 1 FROM component WHERE code = :c"), {"c": item.code}).first():
        raise errors.ConflictError(f"component {item.code} exists: replace it (PUT) instead")
    conn.execute(text(
        "INSERT INTO component (code, class_code, district_code, grid_code, name, manager_key, owner_key,"
        " maintainer_key, status, note, changed_at, source, revision, geom) VALUES (:code, :cls, :district,"
        f" {_GRID}, :name, :manager, :owner, :maintainer, :status, :note, now(), 'ogc', 1,"
        " ST_GeomFromText(:wkt, 4326))"), _values(item))
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


def replace(conn: Connection, principal: Principal, item: ComponentInput, *, expected_revision: int) -> int:
    """Replace a component read at ``expected_revision``; return its new revision."""
    revision, status = _locked(conn, principal, item.code, expected_revision, item.owner_key)
    conn.execute(text(
        f"UPDATE component SET grid_code = {_GRID}, name = :name, manager_key = :manager, owner_key = :owner,"
        " maintainer_key = :maintainer, status = :status, note = :note, changed_at = now(),"
        " revision = revision + 1, geom = ST_GeomFromText(:wkt, 4326) WHERE code = :code"), _values(item))
    action = "status" if status != item.status else "update"
    _history(conn, item.code, principal.login, action, {"revision": revision + 1, "status": item.status,
                                                        "owner_key": item.owner_key})
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
