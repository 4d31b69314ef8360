"""Exporting a slice of the registry (owner, class, status, area, bbox, text, changed since) to GeoPackage,
GeoJSON, CSV, FlatGeobuf or Shapefile, streamed: rows leave PostgreSQL through a server-side cursor in batches
of ``BATCH`` and reach GDAL (pyogrio) as an Arrow stream, so a 680,000-row export never sits whole in memory.

A Shapefile holds one geometry type, so a Shapefile export writes one file per kind present next to the named
one (``<name>_point.shp``, ``<name>_line.shp``, ``<name>_polygon.shp``). A CSV carries the geometry as WKT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyogrio.raw import write_arrow
from sqlalchemy import Connection, and_, func, select, true

from spatial.components.registry import PROPERTIES, ComponentFilter, where_clauses
from spatial.components.rules import KINDS
from spatial.errors import InvalidParameterError
from spatial.store.models.components import Component

BATCH = 20_000
# format → GDAL driver, file suffix, layer creation options
FORMATS: dict[str, tuple[str, str, dict[str, str]]] = {
    "gpkg": ("GPKG", ".gpkg", {}),
    "geojson": ("GeoJSON", ".geojson", {"RFC7946": "YES"}),
    "csv": ("CSV", ".csv", {"GEOMETRY": "AS_WKT"}),
    "fgb": ("FlatGeobuf", ".fgb", {}),
    "shp": ("ESRI Shapefile", ".shp", {}),
}
SHAPE_TYPES = {"point": "Point", "line": "MultiLineString", "polygon": "MultiPolygon"}
_SCHEMA = pa.schema([*(pa.field(p, pa.int64() if p == "revision" else pa.string()) for p in PROPERTIES),
                     pa.field("geometry", pa.binary())])


def format_of(path: Path, given: str | None) -> str:
    """The export format: ``given``, else read from the file's suffix."""
    fmt = given or next((k for k, (_, suffix, _) in FORMATS.items() if path.suffix.lower() == suffix), None)
    if fmt not in FORMATS:
        raise InvalidParameterError(f"format must be one of {', '.join(FORMATS)}", parameter="format")
    return fmt


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    files: list[Path]
    rows: int


def export(conn: Connection, f: ComponentFilter, path: Path, fmt: str, *,
           progress: Callable[[int], object] | None = None, batch: int = BATCH) -> Exported:
    """Write the components matching ``f`` (in code order) to ``path`` in ``fmt``."""
    driver, _, options = FORMATS[fmt]
    where = where_clauses(f)
    if fmt != "shp":
        rows = _write(conn, where, path, driver, "Unknown", options, progress, batch)
        return Exported([path], rows)
    files, total = [], 0
    for kind, shape_type in SHAPE_TYPES.items():
        target = path.with_name(f"{path.stem}_{kind}.shp")
        kind_filter = func.GeometryType(Component.geom).in_([t.upper() for t in KINDS[kind]])
        if conn.execute(select(true()).where(and_(true(), *where, kind_filter)).limit(1)).first() is None:
            continue
        total += _write(conn, [*where, kind_filter], target, driver, shape_type, options, progress, batch)
        files.append(target)
    return Exported(files, total)


def _write(conn: Connection, where: list[Any], path: Path, driver: str, geometry_type: str,
           options: dict[str, str], progress: Callable[[int], object] | None, batch: int) -> int:
    counter = [0]
    reader = pa.RecordBatchReader.from_batches(_SCHEMA, _batches(conn, where, batch, counter, progress))
    if path.exists():
        path.unlink()
    write_arrow(reader, path, driver=driver, layer="components", geometry_name="geometry",
                geometry_type=geometry_type, crs="EPSG:4326", encoding="UTF-8", layer_options=options or None)
    return counter[0]


def _batches(conn: Connection, where: list[Any], size: int, counter: list[int],
             progress: Callable[[int], object] | None) -> Iterator[pa.RecordBatch]:
    columns = [getattr(Component, p) for p in PROPERTIES]
    stmt = (select(*columns, func.ST_AsBinary(Component.geom)).where(and_(true(), *where))
            .order_by(Component.code))
    result = conn.execution_options(stream_results=True, yield_per=size).execute(stmt)
    for rows in result.partitions(size):
        data = list(zip(*rows, strict=True))
        arrays = [pa.array([None if v is None else (v if p == "revision" else _text(v)) for v in values],
                           _SCHEMA.field(p).type) for p, values in zip(PROPERTIES, data, strict=False)]
        arrays.append(pa.array([bytes(v) for v in data[-1]], pa.binary()))
        counter[0] += len(rows)
        if progress:
            progress(len(rows))
        yield pa.RecordBatch.from_arrays(arrays, schema=_SCHEMA)


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
