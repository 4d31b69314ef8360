"""CQL2 filters (OGC API Features Part 3) as SQL: pygeofilter's AST, checked against the collection's
properties and bounded in cost, turned into a SQLAlchemy condition with bound values by pygeofilter's
SQLAlchemy backend.

Cost bounds (SECURITY.md "Cost limits on /ogc"; issue 23, finding 6), checked before any SQL is built:

- at most ``MAX_FILTER_VERTICES`` vertices in all of a filter's geometry literals together, and at most
  ``MAX_FILTER_PREDICATES`` predicates (comparisons, LIKE, spatial and temporal tests) and
  ``MAX_FILTER_NODES`` nodes (predicates with their NOT, AND, OR and arithmetic) in one filter;
- on the large collections (``Layer.large``: components, cases — hundreds of thousands of rows), predicates
  that no index can serve are refused: ``S_DISJOINT``, ``BEYOND``, ``S_RELATE``, any spatial predicate under a
  ``NOT`` (``NOT S_INTERSECTS`` is ``S_DISJOINT``) and ``LIKE`` patterns that begin with a wildcard. Each makes
  PostgreSQL test every row: ``S_DISJOINT`` with a 200-vertex polygon took 4–5 s of CPU per statement on the
  full demo, 22–30 s with six at once. The grid collections (a few thousand rows) take them all.

Everything else is bounded by the time budget of the ``/ogc`` request (api/ogc/limits.py).
"""

from __future__ import annotations

from typing import Any

from spatial.errors import FilterTooCostlyError, InvalidParameterError
from spatial.features.cursors import column_value, python_type_of
from spatial.features.registry import Layer

MAX_FILTER_VERTICES = 500
MAX_FILTER_PREDICATES = 100
MAX_FILTER_NODES = 400


def cql2_condition(lay: Layer, ast: Any) -> Any:
    """A CQL2 filter (pygeofilter AST) as a SQLAlchemy condition with bound values; FilterTooCostlyError
    beyond the cost bounds of the module docstring, InvalidParameterError for unknown properties."""
    from pygeofilter.backends.sqlalchemy import to_filter

    nodes = _walk(ast)
    _check_cost(lay, nodes)
    mapping = {**lay.properties, "geometry": lay.geometry}
    unknown = {node.name for node, _ in nodes if _is(node, "Attribute")} - set(mapping)
    if unknown:
        raise InvalidParameterError(f"filter names unknown properties: {', '.join(sorted(unknown))}; "
                                    f"see /collections/{lay.name}/queryables", parameter="filter")
    _time_literals(nodes, mapping)
    try:
        _in_storage_srid(nodes)
        return to_filter(ast, mapping)
    except (KeyError, AttributeError, TypeError, ValueError, NotImplementedError, RecursionError) as exc:
        raise InvalidParameterError(f"filter cannot be applied: {exc}", parameter="filter") from exc


def _walk(root: Any) -> list[tuple[Any, bool]]:
    """Every node and value of a filter, with whether it stands under a NOT; iterative (a hostile filter may
    nest deeper than Python recurses), and stopping once it has seen more than ``MAX_FILTER_NODES`` nodes."""
    from pygeofilter import ast

    found: list[tuple[Any, bool]] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    nodes = 0
    while stack:
        node, negated = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend((item, negated) for item in node)
            continue
        found.append((node, negated))
        if isinstance(node, ast.Node):
            nodes += 1
            if nodes > MAX_FILTER_NODES:
                raise FilterTooCostlyError(f"the filter has more than {MAX_FILTER_NODES:,} terms", parameter="filter")
            under = negated or isinstance(node, ast.Not)
            stack.extend((sub, under) for sub in node.get_sub_nodes() or [])
    return found


def _check_cost(lay: Layer, nodes: list[tuple[Any, bool]]) -> None:
    from pygeofilter import ast

    predicates = sum(1 for node, _ in nodes if isinstance(node, ast.Predicate))
    if predicates > MAX_FILTER_PREDICATES:
        raise FilterTooCostlyError(f"the filter has {predicates:,} predicates; at most {MAX_FILTER_PREDICATES:,} "
                                   "are taken", parameter="filter")
    vertices = sum(_vertices(node.geometry) for node, _ in nodes if _is(node, "Geometry"))
    if vertices > MAX_FILTER_VERTICES:
        raise FilterTooCostlyError(f"the filter's geometries have {vertices:,} vertices; at most "
                                   f"{MAX_FILTER_VERTICES:,} are taken (simplify the shape)", parameter="filter")
    if lay.large:
        for node, negated in nodes:
            refusal = _unindexable(node, negated)
            if refusal:
                raise FilterTooCostlyError(
                    f"{refusal} cannot use an index on {lay.name!r}, a large collection: it would test every "
                    "row. Filter on what you want (S_INTERSECTS, S_WITHIN, S_DWITHIN, a LIKE pattern that "
                    "begins with text, property values) instead", parameter="filter")


def _unindexable(node: Any, negated: bool) -> str | None:
    """What of ``node`` no index can serve, in the filter's words (None: an index can)."""
    from pygeofilter import ast

    spatial = (ast.SpatialComparisonPredicate, ast.SpatialDistancePredicate, ast.Relate, ast.BBox)
    if isinstance(node, ast.GeometryDisjoint):
        return "S_DISJOINT"
    if isinstance(node, ast.DistanceBeyond):
        return "BEYOND"
    if isinstance(node, ast.Relate):
        return "S_RELATE"
    if isinstance(node, spatial) and negated:
        return "a spatial predicate under NOT"
    if isinstance(node, ast.Like) and str(node.pattern)[:1] in {node.wildcard, node.singlechar, "%", "_"}:
        return f"LIKE {node.pattern!r} (a pattern that begins with a wildcard)"
    return None


def _vertices(geometry: dict) -> int:
    """The number of positions in a GeoJSON geometry (collections included)."""
    count, stack = 0, [geometry.get("coordinates", ()), *geometry.get("geometries", ())]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += [item.get("coordinates", ()), *item.get("geometries", ())]
        elif item and isinstance(item, list | tuple) and all(isinstance(v, int | float) for v in item):
            count += 1
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return count


def _is(node: Any, kind: str) -> bool:
    """Whether ``node`` is pygeofilter's AST ``Attribute`` or value ``Geometry`` (``kind``)."""
    from pygeofilter import ast, values

    return isinstance(node, ast.Attribute if kind == "Attribute" else values.Geometry)


def _in_storage_srid(nodes: list[tuple[Any, bool]]) -> None:
    """Mark the filter's geometries as EPSG:4326 (longitude, latitude). pygeoapi has already brought them
    into the storage CRS (CRS84) and labels them with its URI, which pygeofilter cannot turn into an SRID."""
    for node, _ in nodes:
        if _is(node, "Geometry"):
            node.geometry = {key: value for key, value in node.geometry.items() if key != "crs"}
def _time_literals(nodes: list[tuple[Any, bool]], mapping: dict[str, Any]) -> None:
    """Refuse (400) a text literal compared with a date or time property that is no ISO 8601 date or time:
    PostgreSQL would refuse it while running the query (a 500: ``reported_at > '2020-99-99'``)."""
    from pygeofilter import ast

    for node, _ in nodes:
        lhs = getattr(node, "lhs", None)
        if not (isinstance(node, ast.Node) and isinstance(lhs, ast.Attribute) and lhs.name in mapping):
            continue
        column = mapping[lhs.name]
        if python_type_of(column) in (None, str):
            continue
        for sub in node.get_sub_nodes() or []:
            for value in sub if isinstance(sub, list) else [sub]:
                if isinstance(value, str):
                    column_value(column, value, "filter")
