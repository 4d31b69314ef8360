"""Bulk files read into validated rows: a GeoJSON FeatureCollection of Point features, or CSV with a header.

Each row becomes the report every channel makes (``spatial.cases.schemas.BulkRow``: a ``CaseCreate`` with its
row number and report time) or a refusal with its reason (``RowResult``); a body that is not a collection of
rows at all is refused whole (``InvalidParameterError``), and so is one of more than ``max_rows`` rows
(``PayloadTooLargeError``, before its rows are validated). Rules that need the database or the clock (is the
category known, is the time in the future) are checked by ``spatial.cases.bulk``.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from spatial.cases.schemas import BULK_ROW, LOCAL, BulkRow
from spatial.errors import InvalidParameterError, PayloadTooLargeError

TEXT_FIELDS = ("description", "source", "component_code", "reporter_name", "reporter_phone")


@dataclass
class RowResult:
    """What happened to one row."""

    row: int
    status: str  # created | duplicate | refused
    case_id: int | None = None
    case_no: str | None = None
    grid: str | None = None
    owner: str | None = None
    duplicate_of: int | None = None
    reason: str | None = None


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a number: {value!r}") from exc
    if not math.isfinite(number):
        raise ValueError(f"{name} is not a finite number")
    return number


def _time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"reported_at is not an ISO 8601 time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)


def _reason(exc: ValidationError) -> str:
    """The first problem of a row that does not validate, as ``field: message``."""
    error = exc.errors(include_url=False)[0]
    if error["loc"] == ("category",):
        return f"unknown event category {error['input']!r}"  # as the category table would say (bulk._check)
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _row(n: int, fields: dict[str, Any], lon: Any, lat: Any, default_source: str) -> BulkRow:
    """Validate one row as a report (``BulkRow``); ValueError saying why it is refused. Empty text is absent
    (CSV has no null); other values are taken as text; a row without a source has ``default_source``.
    (Written for speed: 200,000 rows a batch.)"""
    description, source, component, name, phone = [
        None if value is None or value == "" else value if type(value) is str else str(value)
        for value in map(fields.get, TEXT_FIELDS)]
    reported_at = fields.get("reported_at")
    data = {
        "row": n, "category": str(fields.get("category") or ""),
        "location": {"type": "Point", "coordinates": [  # JSON numbers are floats already (the model checks them)
            lon if type(lon) is float else _number(lon, "lon"), lat if type(lat) is float else _number(lat, "lat")]},
        "description": description, "source": source or default_source, "component_code": component,
        "reporter": {"name": name, "phone": phone} if name or phone else None,
        "reported_at": _time(reported_at) if reported_at else None,
    }
    try:
        return BULK_ROW.validate_python(data)
    except ValidationError as exc:
        raise ValueError(_reason(exc)) from None


class _CollectorPause:
    """Pauses Python's cyclic garbage collector while files are parsed (``with PAUSE:``; re-entrant).

    A 200,000-row file becomes millions of live objects (the parsed document, one validated report per row),
    none of them cyclic garbage, and each collection walks them all again: with the collector running,
    parsing and validating such a file measured four times slower. Batches parsed in parallel share one
    pause; the collector resumes with the last of them (or stays off if something else had turned it off).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._resume = False

    def __enter__(self) -> None:
        with self._lock:
            if self._count == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0 and self._resume:
                gc.enable()


PAUSE = _CollectorPause()


def parse_geojson(body: str | bytes, source: str = "hotline", max_rows: int | None = None,
                  ) -> tuple[list[BulkRow], list[RowResult]]:
    """Parse a FeatureCollection of Point features; return rows and the rows refused while parsing.
    ``source``: that of a row which names none (the reporting account's, ``spatial.access.scope.row_source``);
    ``max_rows``: more features than this refuse the whole body (None: no limit here)."""
    with PAUSE:
        return _parse_geojson(body, source, max_rows)


def parse_csv(body: str, source: str = "hotline", max_rows: int | None = None,
              ) -> tuple[list[BulkRow], list[RowResult]]:
    """Parse CSV with a header (category, lon, lat, description, source, component_code, reported_at, …);
    ``source`` and ``max_rows`` as for ``parse_geojson``."""
    with PAUSE:
        return _parse_csv(body, source, max_rows)


def too_many(max_rows: int) -> PayloadTooLargeError:
    """The refusal of a batch of more than ``max_rows`` rows."""
    return PayloadTooLargeError(f"a batch holds at most {max_rows:,} rows")


def _parse_geojson(body: str | bytes, source: str, max_rows: int | None) -> tuple[list[BulkRow], list[RowResult]]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidParameterError(f"the body is not valid JSON: {exc}", parameter="body") from exc
    except RecursionError:  # nested deeper than the parser's stack: no FeatureCollection is
        raise InvalidParameterError("the body is nested too deeply to be a FeatureCollection",
                                    parameter="body") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise InvalidParameterError("the body must be a GeoJSON FeatureCollection", parameter="body")
    if max_rows is not None and len(doc["features"]) > max_rows:
        raise too_many(max_rows)
    rows, refused = [], []
    for n, feature in enumerate(doc["features"], start=1):
        try:
            geometry = (feature or {}).get("geometry") or {}
            if geometry.get("type") != "Point":
                raise ValueError(f"geometry must be a Point, not {geometry.get('type')!r}")
            coords = geometry.get("coordinates") or []
            if len(coords) < 2:
                raise ValueError("a Point needs two coordinates [lon, lat]")
            rows.append(_row(n, feature.get("properties") or {}, coords[0], coords[1], source))
        except (ValueError, AttributeError, TypeError) as exc:
            refused.append(RowResult(n, "refused", reason=str(exc)))
    return rows, refused


def _parse_csv(body: str, source: str, max_rows: int | None) -> tuple[list[BulkRow], list[RowResult]]:
    try:
        return _parse_csv_rows(body, source, max_rows)
    except csv.Error as exc:  # a bare carriage return inside a field, a field over the module's size limit …
        raise InvalidParameterError(f"the body is not readable CSV: {exc}", parameter="body") from exc


def _parse_csv_rows(body: str, source: str, max_rows: int | None) -> tuple[list[BulkRow], list[RowResult]]:
    # newline="": the csv module sees each line's own ending (\r, \n or \r\n), as its documentation asks
    reader = csv.reader(io.StringIO(body.lstrip("\ufeff"), newline=""))
    header = next(reader, [])
    missing = {"category", "lon", "lat"} - set(header)
    if missing:
        raise InvalidParameterError(f"the CSV header lacks {sorted(missing)}", parameter="body")
    rows, refused = [], []
    # csv.reader, not DictReader (a third of the time per line): blank lines are skipped and not counted,
    # a short line lacks its last fields, as DictReader has it.
    for n, record in enumerate((dict(zip(header, line, strict=False)) for line in reader if line), start=1):
        if max_rows is not None and n > max_rows:
            raise too_many(max_rows)
        try:
            rows.append(_row(n, record, record.get("lon"), record.get("lat"), source))
        except ValueError as exc:
            refused.append(RowResult(n, "refused", reason=str(exc)))
    return rows, refused
