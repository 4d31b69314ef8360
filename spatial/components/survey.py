"""Reading an owner's survey file: GeoPackage, Shapefile, GeoJSON, FlatGeobuf or CSV through GDAL (pyogrio),
streamed in Arrow batches so that a 2 GB file never sits whole in memory.

Decided before a row is read, each refused with ``SurveyFileError`` naming what to do: the column mapping
(given, saved for the owner, or guessed from common Chinese and English headers; a column that maps to
nothing is refused unless the mapping names it with ``null``), the text encoding (a Shapefile without a .cpg
whose names are not plain ASCII is refused with the encoding they read in), and the CRS (from the file, or
``--crs``; a CSV without one is EPSG:4326). A survey whose first rows mostly fall outside every district is
refused with a hint naming the CRS that would put them inside (a projected survey read as degrees).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from pyogrio.raw import open_arrow
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from spatial.components.rules import RuleBook
from spatial.errors import SurveyFileError

FIELDS = ("code", "name", "class_code", "owner_key", "manager_key", "maintainer_key", "status", "note",
          "surveyed_on")
# Common headers of Chinese and English survey tables (compared lower-cased, spaces and underscores dropped).
HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("编码", "部件编码", "部件代码", "部件标识码", "标识码", "代码", "code", "componentcode", "bjbm"),
    "name": ("名称", "部件名称", "name", "mc"),
    "class_code": ("类别", "类别代码", "部件类别", "小类", "小类代码", "类型", "class", "classcode", "type", "lb"),
    "owner_key": ("权属单位", "权属", "owner", "ownerkey", "qsdw"),
    "manager_key": ("主管部门", "manager", "managerkey", "zgbm"),
    "maintainer_key": ("养护单位", "maintainer", "maintainerkey", "yhdw"),
    "status": ("状态", "部件状态", "status", "zt"),
    "note": ("备注", "note", "notes", "remark", "remarks", "bz"),
    "surveyed_on": ("初始日期", "普查日期", "调查日期", "surveyedon", "surveydate", "date"),
}
# Columns of the registry's own exports that it computes itself: left out of an import without a word.
COMPUTED = ("districtcode", "gridcode", "changedat", "source", "revision")
_GUESS = {header: name for name, headers in HEADERS.items() for header in headers}
# CSV coordinates: GDAL reads these columns as the geometry (open options), they are not attributes.
# What one batch may read from the file. A batch is alive several times over while the survey is imported (the
# Arrow batch, its Python values, the COPY text; read and decided up to two batches ahead of the one stored),
# so a survey of wide rows — long notes, detailed lines — is read in fewer rows at a time, and the import's
# memory follows this, never the file's size (tests/integration/test_registry_streaming.py).
BATCH_BYTES = 8 << 20
MIN_BATCH = 100
CSV_OPTIONS = {"X_POSSIBLE_NAMES": "lon,lng,longitude,经度,x", "Y_POSSIBLE_NAMES": "lat,latitude,纬度,y",
               "GEOM_POSSIBLE_NAMES": "wkt,geometry,geom,the_geom,几何", "KEEP_GEOM_COLUMNS": "NO"}
# Tried on a survey outside the coverage, to name the CRS it was likely made in.
CANDIDATE_CRS = ("EPSG:4326", "EPSG:4490", "EPSG:3857", "EPSG:4549", "EPSG:4548", "EPSG:4550", "EPSG:4528",
                 "EPSG:4527", "EPSG:4529")
SAMPLE = 1_000
MIN_INSIDE = 0.5


def _norm(header: str) -> str:
    return header.strip().lower().replace(" ", "").replace("_", "")


def guess_mapping(columns: list[str]) -> dict[str, str | None]:
    """The field each column maps to by its header (None: nothing known)."""
    return {column: _GUESS.get(_norm(column)) for column in columns}


def read_mapping(path: Path) -> dict[str, str | None]:
    """A mapping file: a JSON object of column → field (or null to ignore the column)."""
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SurveyFileError(f"mapping {path.name} is not a readable JSON object: {exc}") from exc
    if not isinstance(mapping, dict) or not all(isinstance(v, str | None) for v in mapping.values()):
        raise SurveyFileError(f"mapping {path.name} must be a JSON object of column → field name or null")
    return mapping


def settle_mapping(columns: list[str], given: dict[str, str | None] | None,
                   saved: dict[str, str | None] | None = None) -> dict[str, str]:
    """Column → field for the survey's ``columns``: ``given`` first, then the owner's ``saved`` mapping (for
    the columns it names that the survey has), then guessed; refused when a column maps to nothing, a field
    twice, an unknown field, or neither code nor class is mapped."""
    given = {**{c: f for c, f in (saved or {}).items() if c in columns}, **(given or {})}
    unknown = sorted({f for f in given.values() if f is not None} - set(FIELDS))
    if unknown:
        raise SurveyFileError(f"the mapping names unknown fields: {', '.join(unknown)}; fields: {', '.join(FIELDS)}")
    absent = sorted(set(given) - set(columns))
    if absent:
        raise SurveyFileError(f"the mapping names columns the survey lacks: {', '.join(absent)}")
    guessed = guess_mapping(columns)
    mapping = {c: (given[c] if c in given else guessed[c]) for c in columns}
    nothing = [c for c in columns if mapping[c] is None and c not in given and _norm(c) not in COMPUTED]
    if nothing:
        raise SurveyFileError(f"columns that map to nothing: {', '.join(nothing)}; name their fields in a mapping"
                              f" file (or null to leave a column out); fields: {', '.join(FIELDS)}",
                              columns=nothing)
    chosen = {c: f for c, f in mapping.items() if f is not None}
    twice = sorted({f for f in chosen.values() if list(chosen.values()).count(f) > 1})
    if twice:
        raise SurveyFileError(f"several columns map to {', '.join(twice)}: keep one in the mapping")
    if not {"code", "class_code"} & set(chosen.values()):
        raise SurveyFileError("no column maps to the code or the class: the class of a row is unknown")
    return chosen


@dataclass
class Survey:
    """An opened survey: where it is, how to read it, and what was decided about it."""

    path: Path
    driver: str
    layer: str | None
    columns: list[str]
    mapping: dict[str, str]
    crs: str
    encoding: str | None
    total: int
    options: dict[str, str] = field(default_factory=dict)
    geometry_type: str = "Unknown"
    geometry_name: str = "wkb_geometry"

    def batch_rows(self, most: int) -> int:
        """Rows per batch: ``most``, or fewer, so that a batch holds about BATCH_BYTES of the file (its rows'
        average size: the file; a Shapefile's .shp and .dbf, unzipped when it comes zipped)."""
        size = self.path.stat().st_size
        if self.path.suffix.lower() == ".zip" and zipfile.is_zipfile(self.path):  # the rows' size unzipped
            with zipfile.ZipFile(self.path) as archive:
                size = sum(i.file_size for i in archive.infolist()
                           if Path(i.filename).suffix.lower() in (".shp", ".dbf")) or size
        elif self.driver == "ESRI Shapefile":
            size = sum(p.stat().st_size for p in self.path.parent.iterdir()
                       if p.stem == self.path.stem and p.suffix.lower() in (".shp", ".dbf") and p.is_file())
        per_row = size / max(1, self.total)
        return max(min(most, MIN_BATCH), min(most, int(BATCH_BYTES // max(per_row, 1.0))))

    def batches(self, size: int) -> Iterator[tuple[Any, dict[str, Any], np.ndarray]]:
        """The rows ``size`` at a time: the Arrow batch as the file holds it (for the rejects file), its mapped
        columns by field name (Arrow arrays), and the shapely geometries in EPSG:4326 (None where a row has none
        or it does not parse)."""
        to_wgs84 = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        try:
            with open_arrow(self.path, layer=self.layer, batch_size=size, use_pyarrow=True,
                            encoding=self.encoding, **self.options) as (meta, reader):
                self.geometry_name = meta["geometry_name"] or "wkb_geometry"
                for batch in reader:
                    yield batch, self._rows(batch), _to_wgs84(batch.column(self.geometry_name).to_pylist(), to_wgs84)
        except _READ_ERRORS as exc:
            raise SurveyFileError(f"{self.path.name} cannot be read to its end: {exc}") from exc

    def _rows(self, batch: Any) -> dict[str, Any]:
        """The batch's mapped columns by field name (Arrow arrays)."""
        return {f: batch.column(c) for c, f in self.mapping.items()}


def _to_wgs84(wkbs: Sequence[bytes | None], transformer: Transformer) -> np.ndarray:
    geoms = shapely.force_2d(shapely.from_wkb(np.array(wkbs, dtype=object), on_invalid="ignore"))
    if transformer.source_crs is not None and transformer.source_crs.equals("EPSG:4326", ignore_axis_order=True):
        return geoms
    return shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def open_survey(path: Path, book: RuleBook, *, mapping: dict[str, str | None] | None = None,
                saved: dict[str, str | None] | None = None, crs: str | None = None, encoding: str | None = None,
                layer: str | None = None) -> Survey:
    """Open ``path`` and settle its mapping, encoding and CRS (SurveyFileError when one cannot be)."""
    options = CSV_OPTIONS if path.suffix.lower() in (".csv", ".txt") else {}
    try:
        info = pyogrio.read_info(path, layer=layer, encoding=encoding, force_feature_count=True, **options)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise SurveyFileError(f"{path.name} is not a survey GDAL can read: {exc}") from exc
    columns = [str(c) for c in info["fields"]]
    if encoding is None and info.get("encoding") == "ISO-8859-1":
        try:
            encoding = _check_encoding(path, columns, layer)
        except _READ_ERRORS as exc:
            raise SurveyFileError(f"{path.name} cannot be read: {exc}") from exc
    survey = Survey(path, info["driver"], layer, columns, settle_mapping(columns, mapping, saved), "EPSG:4326",
                    encoding, int(info["features"]), dict(options), info.get("geometry_type") or "Unknown")
    survey.crs = _settle_crs(survey, book, info.get("crs"), crs)
    return survey


def _check_encoding(path: Path, columns: list[str], layer: str | None) -> str | None:
    """A Shapefile without a .cpg is read as ISO-8859-1: fine for ASCII, refused for anything else (GBK names
    read so are garbage), naming the encoding its bytes decode in."""
    _, _, _, values = pyogrio.raw.read(path, layer=layer, max_features=SAMPLE, read_geometry=False)
    texts = columns + [v for column in values for v in column if isinstance(v, str)]
    raw = b"".join(t.encode("latin-1", errors="replace") for t in texts)
    if raw.isascii():
        return None
    for guess in ("UTF-8", "GBK"):
        try:
            sample = raw.decode(guess)
        except UnicodeDecodeError:
            continue
        raise SurveyFileError(f"{path.name} has no .cpg naming its encoding and its text is not ASCII; it reads"
                              f" as {guess} (e.g. {sample[:12]!r}): add {path.stem}.cpg holding {guess}, or"
                              f" pass --encoding {guess}", encoding=guess)
    raise SurveyFileError(f"{path.name} has no .cpg naming its encoding and its text is not ASCII: pass --encoding")


def _settle_crs(survey: Survey, book: RuleBook, declared: str | None, given: str | None) -> str:
    crs = given or declared
    if crs is None and survey.driver != "CSV":
        hint = likely_crs(survey, book)
        raise SurveyFileError(f"{survey.path.name} names no CRS (a Shapefile without .prj?): pass --crs"
                              + (f"; the coordinates look like {hint}" if hint else ""), likely_crs=hint)
    crs = crs or "EPSG:4326"
    try:
        name = CRS.from_user_input(crs).to_string()
    except CRSError as exc:
        raise SurveyFileError(f"unknown CRS {crs}: give an EPSG code such as EPSG:4326, 4490, 3857 or 4549") from exc
    survey.crs = name
    inside = _inside_share(survey, book, name)
    if inside is not None and inside < MIN_INSIDE:
        hint = likely_crs(survey, book)
        raise SurveyFileError(
            f"read in {name}, {1 - inside:.0%} of the first rows lie outside every district (a projected survey"
            " read as degrees?)" + (f": the coordinates look like {hint}; pass --crs {hint}" if hint else
                                    "; no common CRS puts them inside: check the file"), likely_crs=hint)
    return name


_READ_ERRORS = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError, OSError)


def _sample(survey: Survey) -> list[bytes]:
    try:
        return _first_geometries(survey)
    except _READ_ERRORS as exc:
        raise SurveyFileError(f"{survey.path.name} cannot be read: {exc}") from exc


def _first_geometries(survey: Survey) -> list[bytes]:
    with open_arrow(survey.path, layer=survey.layer, batch_size=SAMPLE, use_pyarrow=True, encoding=survey.encoding,
                    columns=[], **survey.options) as (meta, reader):
        for batch in reader:
            return [w for w in batch.column(meta["geometry_name"] or "wkb_geometry").to_pylist() if w]
    return []


def _inside_share(survey: Survey, book: RuleBook, crs: str) -> float | None:
    wkbs = _sample(survey)
    if not wkbs:
        return None
    try:
        geoms = _to_wgs84(wkbs, Transformer.from_crs(crs, "EPSG:4326", always_xy=True))
    except (CRSError, ValueError):
        return 0.0
    points = shapely.point_on_surface(geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)])
    if not len(points) or not np.isfinite(shapely.get_coordinates(points)).all():
        return 0.0
    inside = np.zeros(len(points), dtype=bool)
    for shape in book.districts.values():
        inside |= shapely.covers(shape, points)
    return float(inside.mean())


def likely_crs(survey: Survey, book: RuleBook) -> str | None:
    """The candidate CRS that puts most of the survey's first rows inside the districts (None if none does)."""
    best, share = None, MIN_INSIDE
    for candidate in CANDIDATE_CRS:
        inside = _inside_share(survey, book, candidate) or 0.0
        if inside > share:
            best, share = candidate, inside
    return best
