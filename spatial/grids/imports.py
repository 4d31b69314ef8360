"""Reading a city's grids from a file (issue 19, item 1): GeoPackage, Shapefile, GeoJSON or FlatGeobuf
through pyogrio (GDAL), any CRS pyproj knows (EPSG:4326, 4490 CGCS2000, 3857, the CGCS2000 Gauss–Krüger
zones such as 4549), with a column mapping for code, name and parent.

The file is read whole, reprojected to EPSG:4326 (longitude, latitude) and handed to ``spatial.grids.repair``
for the repairs and the topology report; nothing is stored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyogrio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from spatial.errors import InvalidParameterError
from spatial.geo.srid import WGS84

FORMATS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".fgb": "FlatGeobuf", ".zip": "ESRI Shapefile"}
MAX_FEATURES = 50_000


@dataclass(frozen=True)
class Mapping:
    """Which columns of the file hold the code, the name and (optionally) the parent's code."""

    code: str = "code"
    name: str = "name"
    parent: str | None = None


DEFAULT_MAPPING = Mapping()


@dataclass
class SourceRow:
    """One feature of the file, reprojected: its code, name, parent (as given, or None) and shape."""

    index: int
    code: str
    name: str
    parent: str | None
    geom: BaseGeometry | None


@dataclass
class Source:
    """What was read: the rows, the source CRS and the driver."""

    rows: list[SourceRow]
    crs: str
    driver: str
    fields: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    """A cell as text: integral numbers (a Shapefile's numeric code column) lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def source_crs(meta_crs: str | None, given: str | None) -> CRS:
    """The CRS of the file: ``given`` (``EPSG:4549`` or ``4549``) wins over the file's own; refuse none."""
    value = given or meta_crs
    if not value:
        raise InvalidParameterError("the file names no coordinate reference system: give one (--crs EPSG:4549)",
                                    parameter="crs")
    try:
        return CRS.from_user_input(int(value) if str(value).isdigit() else value)
    except CRSError as exc:
        raise InvalidParameterError(f"unknown coordinate reference system {value!r}", parameter="crs") from exc


def _columns(fields: list[str], mapping: Mapping) -> list[int | None]:
    missing = [c for c in (mapping.code, mapping.name, mapping.parent) if c is not None and c not in fields]
    if missing:
        raise InvalidParameterError(f"the file has no column {', '.join(missing)} (it has {', '.join(fields)})",
                                    parameter="mapping")
    return [fields.index(c) if c is not None else None for c in (mapping.code, mapping.name, mapping.parent)]


def read_grids(path: str | Path, mapping: Mapping = DEFAULT_MAPPING, *, crs: str | None = None,
               layer: str | None = None) -> Source:
    """Read the grids of ``path`` in EPSG:4326; InvalidParameterError for an unreadable file or mapping."""
    path = Path(path)
    try:
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=layer, max_features=MAX_FEATURES + 1)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise InvalidParameterError(f"cannot read {path.name} as GeoPackage, Shapefile, GeoJSON or FlatGeobuf",
                                    parameter="file") from exc
    if len(wkb) > MAX_FEATURES:
        raise InvalidParameterError(f"the file has more than {MAX_FEATURES:,} features", parameter="file")
    fields = [str(f) for f in meta["fields"]]
    at_code, at_name, at_parent = _columns(fields, mapping)
    crs_from = source_crs(meta.get("crs"), crs)
    geoms = shapely.from_wkb(wkb)
    if not crs_from.equals(CRS.from_epsg(WGS84)):
        transformer = Transformer.from_crs(crs_from, CRS.from_epsg(WGS84), always_xy=True)
        geoms = [None if g is None else shapely.transform(g, lambda xy: _reproject(transformer, xy))
                 for g in geoms]
    rows = []
    for i, geom in enumerate(geoms):
        rows.append(SourceRow(
            i, _text(columns[at_code][i]), _text(columns[at_name][i]),
            _text(columns[at_parent][i]) or None if at_parent is not None else None,
            None if geom is None or geom.is_empty else geom))
    return Source(rows, crs_from.to_string(), str(meta.get("driver") or ""), fields)


def _reproject(transformer: Transformer, xy: Any) -> Any:
    import numpy as np

    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])
