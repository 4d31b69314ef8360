"""Feature collections for OGC API Features (served by pygeoapi through api/ogc/provider.py).

``registry`` names the collections (layers) and who may read them, ``pages`` builds keyset pages and single
items in PostGIS, ``cursors`` encodes page positions, ``cql2`` turns CQL2 filters into SQL. The package's
public names are re-exported here: callers write ``features.page(...)``, ``features.layer(...)``.
"""

from spatial.features.cql2 import MAX_FILTER_NODES, MAX_FILTER_PREDICATES, MAX_FILTER_VERTICES, cql2_condition
from spatial.features.cursors import encode_cursor
from spatial.features.pages import COUNT_CAP, MAX_LIMIT, MAX_OFFSET, Query, one, page
from spatial.features.registry import (
    CRS_OUTPUT,
    DEFAULT_CRS,
    Layer,
    coverage_extent,
    layer,
    layers,
    require_reader,
    scope_condition,
)

__all__ = ["COUNT_CAP", "CRS_OUTPUT", "DEFAULT_CRS", "MAX_FILTER_NODES", "MAX_FILTER_PREDICATES",
           "MAX_FILTER_VERTICES", "MAX_LIMIT", "MAX_OFFSET", "Layer", "Query", "coverage_extent",
           "cql2_condition", "encode_cursor", "layer", "layers", "one", "page", "require_reader", "scope_condition"]
