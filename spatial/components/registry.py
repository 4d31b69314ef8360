"""The registry as asset owners use it (``/api/v1/components``): search with keyset pages, one component
with its history, and edits — a merge patch, a status change with its reason, retirement — that go through
the same rules, revisions and history as OGC API Part 4 (spatial/components/edits.py).

Who: any account reads components (as on /ogc); the history of a component is shown to admins and to its
owner; edits are the Part 4 editors' (admins; an owner its own components, before and after the edit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Text, and_, func, literal, literal_column, or_, select, true, tuple_

from spatial import errors
from spatial.access.principal import Principal
from spatial.codes import AREA_CODE, prefix_range
from spatial.components import edits
from spatial.components.rules import EDITABLE, RuleBook, check_component
from spatial.reference.calendar import LOCAL, utc_moment
from spatial.store.cursors import decode_cursor, encode_cursor
from spatial.store.models.components import CHANGED_KEY, NAME_KEY, STATUSES, Component, ComponentHistory
from spatial.text import text_problem

SORTS = ("code", "changed_at", "name")
MAX_LIMIT = 1_000
PROPERTIES = ("code", "class_code", "district_code", "grid_code", "name", "owner_key", "manager_key",
              "maintainer_key", "status", "surveyed_on", "changed_at", "source", "note", "revision")


@dataclass(frozen=True)
class ComponentFilter:
    """A search of the registry; ``sort`` is a property of ``SORTS``, ``-`` first for descending."""

    owner: str | None = None
    class_code: str | None = None
    status: str | None = None
    area: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    text: str | None = None
    changed_since: datetime | None = None
    sort: str = "code"
    cursor: str | None = None
    limit: int = 100


def where_clauses(f: ComponentFilter) -> list[Any]:
    c = Component
    where: list[Any] = []
    if f.owner:
        where.append(c.owner_key == f.owner)
    if f.class_code:
        where.append(c.class_code == f.class_code)
    if f.status:
        if f.status not in STATUSES:
            raise errors.InvalidParameterError(f"status must be one of {', '.join(STATUSES)}", parameter="status")
        where.append(c.status == f.status)
    if f.area:
        if not AREA_CODE.fullmatch(f.area):
            raise errors.InvalidParameterError("area must be a grid code of 6, 9, 12 or 15 digits", parameter="area")
        low, high = prefix_range(f.area)
        where.append(c.grid_code.between(low, high))
    if f.bbox:
        where.append(c.geom.intersects(func.ST_MakeEnvelope(*f.bbox, 4326)))
    if f.text:
        where.append(_text_filter(f.text))
    if f.changed_since:
        # in UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 (and Python) allow; no offset: local time
        where.append(c.changed_at >= utc_moment(f.changed_since, "changed_since", LOCAL))
    return where


def _text_filter(value: str) -> Any:
    """Name or note holding ``value`` (its wildcards taken literally)."""
    if text_problem(value) or len(value) > 200:
        raise errors.InvalidTextError("text must be at most 200 characters XML allows", parameter="text")
    pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(Component.name.ilike(pattern), Component.note.ilike(pattern))


def _keys(sort: str) -> list[tuple[Any, bool]]:
    name = sort.lstrip("-")
    if name not in SORTS:
        raise errors.InvalidParameterError(f"sort must be one of {', '.join(SORTS)} (- first: descending)",
                                           parameter="sort")
    ascending = not sort.startswith("-")
    if name == "code":
        return [(Component.code, ascending)]
    # NULLs (never changed, no name) sort as the lowest value, so keyset comparisons stay total; the key is the
    # very expression of the indexes on it (models/components.py, migration 0027), so a page is an index range.
    key = literal_column(CHANGED_KEY, DateTime(timezone=True)) if name == "changed_at" else literal_column(
        NAME_KEY, Text())
    return [(key, ascending), (Component.code, ascending)]


def _after(keys: list[tuple[Any, bool]], values: list[Any]) -> Any:
    """Rows after ``values``: every key of a registry sort runs one way, so this is a row comparison, which
    PostgreSQL reads as one range of the sort's index (the expanded ``a < x OR (a = x AND b < y)`` it is not)."""
    row, ascending = tuple_(*[k for k, _ in keys]), keys[0][1]
    bound = tuple_(*[literal(v, k.type) for (k, _), v in zip(keys, values, strict=True)])
    return row > bound if ascending else row < bound


def search(conn: Connection, f: ComponentFilter) -> dict[str, Any]:
    """A page of components matching ``f`` as GeoJSON, with the cursor of the next page (``next``)."""
    if not 1 <= f.limit <= MAX_LIMIT:
        raise errors.InvalidParameterError(f"limit must be 1 to {MAX_LIMIT}", parameter="limit")
    keys = _keys(f.sort)
    where = where_clauses(f)
    if f.cursor:
        where.append(_after(keys, decode_cursor(f.cursor, keys)))
    order = [k.asc() if up else k.desc() for k, up in keys]
    columns = [getattr(Component, p) for p in PROPERTIES]
    stmt = select(*columns, func.ST_AsGeoJSON(Component.geom, 7).label("geometry"),
                  *[k.label(f"_k{i}") for i, (k, _) in enumerate(keys)]).where(and_(true(), *where)).order_by(*order)
    rows = conn.execute(stmt.limit(f.limit + 1)).mappings().all()
    more = len(rows) > f.limit
    rows = rows[:f.limit]
    return {"type": "FeatureCollection", "features": [_feature(r) for r in rows],
            "next": encode_cursor([rows[-1][f"_k{i}"] for i in range(len(keys))]) if more else None}


def _feature(row: Any) -> dict[str, Any]:
    props = {p: row[p] for p in PROPERTIES}
    for p in ("surveyed_on", "changed_at"):
        props[p] = props[p].isoformat() if props[p] else None
    return {"type": "Feature", "id": row["code"], "geometry": json.loads(row["geometry"]), "properties": props}


def get(conn: Connection, principal: Principal, code: str) -> dict[str, Any]:
    """One component as a GeoJSON Feature; with its ``history`` for admins and its owner."""
    columns = [getattr(Component, p) for p in PROPERTIES]
    row = conn.execute(select(*columns, func.ST_AsGeoJSON(Component.geom, 7).label("geometry"))
                       .where(Component.code == code)).mappings().first()
    if row is None:
        raise errors.NotFoundError(f"no component {code}")
    feature = _feature(row)
    if principal.role == "admin" or (principal.role == "owner" and principal.scope == row["owner_key"]):
        h = ComponentHistory
        feature["history"] = [
            {"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "changes": r.changes}
            for r in conn.execute(select(h.at, h.actor, h.action, h.changes).where(h.component_code == code)
                                  .order_by(h.id))]
    return feature


def patch(conn: Connection, principal: Principal, code: str, body: Any, *, expected_revision: int,
          reason: str | None = None) -> int:
    """Apply a JSON merge patch (RFC 7396) of ``properties`` (the editable ones) and ``geometry`` to a
    component read at ``expected_revision``, by the registry's rules; return its new revision."""
    if not isinstance(body, dict) or set(body) - {"properties", "geometry"}:
        raise errors.InvalidParameterError("the body is a merge patch: {\"properties\": {…}, \"geometry\": …}",
                                           parameter="body")
    props = body.get("properties") or {}
    if not isinstance(props, dict) or set(props) - set(EDITABLE) - {"code"} or props.get("code", code) != code:
        raise errors.InvalidParameterError(f"editable properties: {', '.join(EDITABLE[1:])}", parameter="properties")
    current = get(conn, principal, code)
    merged = {k: v for k, v in {**current["properties"], **props}.items() if k in EDITABLE}
    geometry = body["geometry"] if body.get("geometry") is not None else current["geometry"]
    item = check_component(RuleBook.load(conn), merged, edits.geojson_shape(geometry))
    return edits.replace(conn, principal, item, expected_revision=expected_revision, reason=reason)


def set_status(conn: Connection, principal: Principal, code: str, status: Any, reason: Any, *,
               expected_revision: int) -> int:
    """Change a component's status, giving a reason (kept in its history); return its new revision."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500 or text_problem(reason):
        raise errors.InvalidParameterError("a status change needs a reason: text of 1 to 500 characters",
                                           parameter="reason")
    return patch(conn, principal, code, {"properties": {"status": status}}, expected_revision=expected_revision,
                 reason=reason)
