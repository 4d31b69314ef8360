"""The base grids in memory, for assigning a survey's new components while it is read.

The registry assigns a component to the current base grid that covers its point on surface, the smallest code
when several do (a point on a shared edge). For a survey of hundreds of thousands of rows, doing that in
PostgreSQL (one ``ST_Covers`` probe per row inside the insert) sat on the import's critical path; here the same
rule runs in the reader thread, vectorised over a batch with shapely's STRtree, and the database keeps its
subquery only for what this finds nothing for (``importer._STAGED_GRID``). The grids are read once, when the
import starts: a grid edit committed during an import is not seen by it (as a statement that started before
the edit would not see it either).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text


class BaseGrids:
    """The current base grids' shapes in an STRtree, with their codes."""

    def __init__(self, codes: list[str], shapes: Any) -> None:
        self.codes = np.array(codes, dtype=object)
        self.shapes = shapes
        self.tree = shapely.STRtree(shapes)

    @classmethod
    def load(cls, conn: Connection) -> BaseGrids:
        """Read the current base grids (``grid_geometry``: ``valid_to IS NULL``, kind ``base``)."""
        rows = conn.execute(text("SELECT grid_code, ST_AsBinary(geom) FROM grid_geometry"
                                 " WHERE valid_to IS NULL AND kind = 'base' ORDER BY grid_code")).all()
        shapes = shapely.from_wkb(np.array([bytes(w) for _, w in rows], dtype=object))
        shapely.prepare(shapes)
        return cls([c for c, _ in rows], shapes)

    def assign(self, geoms: Any) -> list[str | None]:
        """For each geometry, the code of the base grid covering its point on surface (the smallest code when
        several do), or None when none does."""
        out: list[str | None] = [None] * len(geoms)
        if not len(geoms) or not len(self.codes):
            return out
        points = shapely.point_on_surface(np.asarray(geoms, dtype=object))
        where, which = self.tree.query(points, predicate="covered_by")
        for i, code in zip(where.tolist(), self.codes[which].tolist(), strict=True):
            if out[i] is None or code < out[i]:
                out[i] = code
        return out
