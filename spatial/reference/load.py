"""Reference tables (departments, component classes, event categories, holidays) loaded from CSV.

The repository ships the Suzhou tables in ``spatial/data``; another city loads its own files with
``gridlink import reference --departments F --component-classes F --event-categories F``. Loading is an
upsert inside the caller's transaction: a file with one bad row is refused whole, naming the row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from spatial.store.models import ComponentClass, Department, EventCategory, Holiday
from spatial.store.models.reference import DEPARTMENT_KINDS, FLOWS, GEOMETRY_KINDS, GRADES, ROLE_KEYS, TIME_UNITS


class ReferenceDataError(ValueError):
    """A reference CSV row is invalid; the message names the file, the row and the field."""


@dataclass(frozen=True)
class ReferenceFiles:
    """Where to read each table from; None means the packaged Suzhou file."""

    departments: Path | None = None
    component_classes: Path | None = None
    event_categories: Path | None = None
    category_classes: Path | None = None
    holidays: Path | None = None


def _rows(path: Path | None, packaged: str) -> tuple[str, list[dict[str, str]]]:
    if path is None:
        text = resources.files("spatial.reference.data").joinpath(packaged).read_text(encoding="utf-8")
        name = packaged
    else:
        text = path.read_text(encoding="utf-8-sig")
        name = str(path)
    return name, list(csv.DictReader(io.StringIO(text)))


def _need(name: str, line: int, row: dict[str, str], field: str, allowed: tuple[str, ...] | None = None) -> str:
    value = (row.get(field) or "").strip()
    if not value:
        raise ReferenceDataError(f"{name} line {line}: '{field}' is empty")
    if allowed is not None and value not in allowed:
        raise ReferenceDataError(f"{name} line {line}: '{field}' is {value!r}, expected one of {allowed}")
    return value


def load_reference(conn: Connection, files: ReferenceFiles = ReferenceFiles()) -> dict[str, int]:
    """Upsert every reference table; return row counts. Raises ReferenceDataError on a bad row."""
    counts = {"departments": _departments(conn, files), "component_classes": _classes(conn, files)}
    counts["event_categories"] = _categories(conn, files)
    counts["holidays"] = _holidays(conn, files)
    return counts


def _upsert(conn: Connection, model, rows: list[dict], key: str) -> int:
    if not rows:
        return 0
    statement = insert(model).values(rows)
    columns = {c: statement.excluded[c] for c in rows[0] if c != key}
    conn.execute(statement.on_conflict_do_update(index_elements=[key], set_=columns))
    return len(rows)


def _departments(conn: Connection, files: ReferenceFiles) -> int:
    name, rows = _rows(files.departments, "departments.csv")
    out = [
        {"key": _need(name, n, r, "key"), "name_zh": _need(name, n, r, "name_zh"),
         "name_en": _need(name, n, r, "name_en"), "kind": _need(name, n, r, "kind", DEPARTMENT_KINDS),
         "handles": r.get("handles") or None}
        for n, r in enumerate(rows, start=2)
    ]
    return _upsert(conn, Department, out, "key")


def _classes(conn: Connection, files: ReferenceFiles) -> int:
    name, rows = _rows(files.component_classes, "component_classes.csv")
    out = []
    for n, r in enumerate(rows, start=2):
        code = _need(name, n, r, "code")
        if len(code) != 4 or not code.isdigit() or code[:2] != _need(name, n, r, "major_code"):
            raise ReferenceDataError(f"{name} line {n}: class code {code!r} is not 4 digits of its major")
        out.append({
            "code": code, "major_code": code[:2], "major_name": _need(name, n, r, "major_name"),
            "name_zh": _need(name, n, r, "name_zh"), "name_en": _need(name, n, r, "name_en"),
            "geometry_kind": _need(name, n, r, "geometry", GEOMETRY_KINDS),
            "default_owner": _need(name, n, r, "default_owner"),
            "demo_weight": float(r.get("demo_weight") or 0),
        })
    return _upsert(conn, ComponentClass, out, "code")


def _category_classes(files: ReferenceFiles) -> dict[str, list[str]]:
    _, rows = _rows(files.category_classes, "category_component_classes.csv")
    return {r["category"].strip(): r["component_classes"].split() for r in rows}


def _categories(conn: Connection, files: ReferenceFiles) -> int:
    name, rows = _rows(files.event_categories, "event_classes.csv")
    classes = _category_classes(files)
    known = {k for (k,) in conn.exec_driver_sql("SELECT key FROM department")} | set(ROLE_KEYS)
    out = []
    for n, r in enumerate(rows, start=2):
        leaf = bool((r.get("time_limit") or "").strip())
        row = {
            "code": _need(name, n, r, "code"), "parent_code": r.get("parent") or None,
            "level": int(_need(name, n, r, "level")), "name_zh": _need(name, n, r, "name_zh"),
            "name_en": _need(name, n, r, "name_en"), "closure": r.get("closure") or None,
            "grade": None, "handler": None, "manager": None, "enforcer": None, "time_limit": None,
            "time_unit": None, "flow": None, "component_classes": classes.get(r["code"]),
        }
        if leaf:
            row.update(_leaf(name, n, r, known))
        out.append(row)
    return _upsert(conn, EventCategory, out, "code")


def _leaf(name: str, line: int, row: dict[str, str], known: set[str]) -> dict:
    units = {}
    for field in ("handler", "manager", "enforcer"):
        value = (row.get(field) or "").strip() or None
        if value is not None and value not in known:
            raise ReferenceDataError(f"{name} line {line}: {field} {value!r} is not a known department")
        units[field] = value
    if units["handler"] is None:
        raise ReferenceDataError(f"{name} line {line}: 'handler' is empty")
    limit = _need(name, line, row, "time_limit")
    if not limit.isdigit() or int(limit) <= 0:
        raise ReferenceDataError(f"{name} line {line}: time_limit {limit!r} is not a positive whole number")
    return {
        **units, "grade": _need(name, line, row, "grade", GRADES), "time_limit": int(limit),
        "time_unit": _need(name, line, row, "time_unit", TIME_UNITS),
        "flow": _need(name, line, row, "flow", FLOWS),
    }


def _holidays(conn: Connection, files: ReferenceFiles) -> int:
    from datetime import date

    name, rows = _rows(files.holidays, "holidays_cn.csv")
    out = []
    for n, r in enumerate(rows, start=2):
        try:
            day = date.fromisoformat(_need(name, n, r, "day"))
        except ValueError as exc:
            raise ReferenceDataError(f"{name} line {n}: day is not an ISO date") from exc
        flag = _need(name, n, r, "is_workday", ("true", "false"))
        out.append({"day": day, "is_workday": flag == "true", "name": _need(name, n, r, "name")})
    return _upsert(conn, Holiday, out, "day")
