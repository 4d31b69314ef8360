"""CQL2 filters (OGC API Features Part 3) as SQL: pygeofilter's AST, checked against the collection's
properties, turned into a SQLAlchemy condition with bound values by pygeofilter's SQLAlchemy backend."""

from __future__ import annotations

from typing import Any

from spatial.errors import InvalidParameterError
from spatial.features.cursors import column_value, python_type_of
from spatial.features.registry import Layer


def cql2_condition(lay: Layer, ast: Any) -> Any:
    """A CQL2 filter (pygeofilter AST) as a SQLAlchemy condition with bound values."""
    from pygeofilter.backends.sqlalchemy import to_filter

    mapping = {**lay.properties, "geometry": lay.geometry}
    unknown = _attributes(ast) - set(mapping)
    if unknown:
        raise InvalidParameterError(f"filter names unknown properties: {', '.join(sorted(unknown))}; "
                                    f"see /collections/{lay.name}/queryables", parameter="filter")
    _time_literals(ast, mapping)
    try:
        _in_storage_srid(ast)
        return to_filter(ast, mapping)
    except (KeyError, AttributeError, TypeError, ValueError, NotImplementedError) as exc:
        raise InvalidParameterError(f"filter cannot be applied: {exc}", parameter="filter") from exc


def _in_storage_srid(node: Any) -> None:
    """Mark the filter's geometries as EPSG:4326 (longitude, latitude). pygeoapi has already brought them
    into the storage CRS (CRS84) and labels them with its URI, which pygeofilter cannot turn into an SRID."""
    from pygeofilter import values

    if isinstance(node, values.Geometry):
        node.geometry = {key: value for key, value in node.geometry.items() if key != "crs"}
    for sub in getattr(node, "get_sub_nodes", lambda: [])() or []:
        _in_storage_srid(sub)
    for item in node if isinstance(node, list) else []:
        _in_storage_srid(item)


def _attributes(node: Any) -> set[str]:
    """The property names a filter refers to."""
    from pygeofilter import ast

    found = {node.name} if isinstance(node, ast.Attribute) else set()
    for sub in getattr(node, "get_sub_nodes", lambda: [])() or []:
        found |= _attributes(sub)
    for item in node if isinstance(node, list) else []:
        found |= _attributes(item)
    return found


def _time_literals(node: Any, mapping: dict[str, Any]) -> None:
    """Refuse (400) a text literal compared with a date or time property that is no ISO 8601 date or time:
    PostgreSQL would refuse it while running the query (a 500: ``reported_at > '2020-99-99'``)."""
    from pygeofilter import ast

    subs = list(getattr(node, "get_sub_nodes", lambda: [])() or [])
    lhs = getattr(node, "lhs", None)
    if isinstance(lhs, ast.Attribute) and lhs.name in mapping:
        column = mapping[lhs.name]
        for value in (v for sub in subs for v in (sub if isinstance(sub, list) else [sub])):
            if isinstance(value, str) and python_type_of(column) not in (None, str):
                column_value(column, value, "filter")
    for sub in subs:
        for item in sub if isinstance(sub, list) else [sub]:
            _time_literals(item, mapping)
