"""Deciding each row of a survey: its values read as the registry names them, checked by the registry's rules
(spatial/components/rules.py, the rules of OGC Part 4 edits), and compared with what the registry holds.

A row is refused (with its reason) when it has no geometry, neither code nor class, a class other than its
code's, another owner than the importing one, a code or (without a code) a class and place already seen in
the file, a code the registry holds for another owner, or breaks a rule. Otherwise it is new, changed (which
fields) or unchanged. A row without a code that matches a registered component of the same class at the same
place (within ``SAME_PLACE_DEG``) is that component; any other row without a code is new and gets the next
free serial of its district and class when it is stored (spatial/components/serials.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from sqlalchemy import Connection, text

from spatial.codes import district_of
from spatial.components.grid_index import BaseGrids
from spatial.components.rules import EDITABLE, ComponentInput, RuleBook, check_columns, component_of, geometry_problems
from spatial.errors import GridlinkError

STATUS_NAMES = {"完好": "intact", "破损": "damaged", "丢失": "missing", "废弃": "abandoned", "移除": "removed"}
COMPARED = ("name", "owner_key", "manager_key", "maintainer_key", "status", "note", "surveyed_on")
SAME_PLACE_DEG = 1e-7  # about a centimetre: a coordinate transformed back and forth still matches
KEY_FIELDS = ("owner_key", "manager_key", "maintainer_key")


class RowRefused(Exception):
    """One row cannot be imported; the message is its reason."""


@dataclass(frozen=True)
class Names:
    """Class and department names as surveys write them → their codes and keys."""

    classes: dict[str, str]
    departments: dict[str, str]

    @classmethod
    def load(cls, conn: Connection) -> Names:
        """Read the names from the reference tables."""
        classes = {}
        for code, zh, en in conn.execute(text("SELECT code, name_zh, name_en FROM component_class")):
            classes.update({code: code, zh: code, en.lower(): code})
        departments = {}
        for key, zh, en in conn.execute(text("SELECT key, name_zh, name_en FROM department")):
            departments.update({key: key, zh: key, en.lower(): key})
        return cls(classes, departments)


@dataclass(frozen=True)
class _Registered:
    """What an unchanged row stores: only its code (``importer._stage`` reads nothing else of it)."""

    code: str


@dataclass
class Decided:
    """A row that passed: what to store, how it differs from the registry (``action``: new, changed,
    unchanged), and whether it still needs a code (``series``: district + class)."""

    row: int
    item: ComponentInput
    action: str
    fields: list[str] = field(default_factory=list)
    series: str | None = None
    grid: str | None = None  # a new row's base grid, when the in-memory grids found it (grid_index.py)


def _code(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _date(value: Any) -> date | None:
    if value is None or value == "" or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value or None
    try:
        return date.fromisoformat(str(value).strip().replace("/", "-")[:10])
    except ValueError as exc:
        raise RowRefused(f"surveyed_on {value!r} is not a date (YYYY-MM-DD)") from exc


def normal_value(name: str, value: Any, names: Names) -> Any:
    """One field's value as the registry names it (codes as text, class and department names as codes and
    keys, Chinese status names in English, text stripped and empty text as nothing); unknown names are left for
    the rules to refuse. RowRefused for a date that is not one."""
    if name == "code":
        return _code(value)
    value = value.strip() if isinstance(value, str) else value
    if isinstance(value, str) and value == "":
        value = None
    if name == "class_code" and value is not None:
        code = _code(value) or ""
        return names.classes.get(code) or names.classes.get(code.lower()) or code.zfill(4)
    if name in KEY_FIELDS and isinstance(value, str):
        return names.departments.get(value) or names.departments.get(value.lower()) or value
    if name == "status" and isinstance(value, str):
        return STATUS_NAMES.get(value, value.lower())
    if name == "surveyed_on":
        return _date(value)
    return value


def normalise(props: dict[str, Any], names: Names) -> dict[str, Any]:
    """The row's values as the registry names them (``normal_value`` on each; code and date always present)."""
    out = {k: normal_value(k, v, names) for k, v in props.items()}
    out.setdefault("code", None)
    out.setdefault("surveyed_on", None)
    return out


def normal_column(name: str, column: pa.Array, names: Names) -> list[Any]:
    """``normal_value`` over a survey's Arrow column, each distinct value once (dictionary encoding: a column
    of class, department or status names holds a handful), taken back row by row; a value that cannot be
    read (a date that is not one) is its RowRefused."""
    encoded = column.dictionary_encode() if not pa.types.is_dictionary(column.type) else column
    decided: list[Any] = []
    for value in encoded.dictionary.to_pylist():
        try:
            decided.append(normal_value(name, value, names))
        except RowRefused as exc:
            decided.append(exc)
    try:
        none = normal_value(name, None, names)
    except RowRefused as exc:  # pragma: no cover - None is never refused
        none = exc
    lookup = np.array([*decided, none], dtype=object)
    index = encoded.indices.fill_null(len(decided)).to_numpy(zero_copy_only=False)
    return list(lookup[index])


class Decider:
    """Decides the rows of one survey in order, remembering what it saw (duplicates inside the file)."""

    def __init__(self, conn: Connection, book: RuleBook, names: Names, owner: str, mapped: set[str],
                 grids: BaseGrids | None = None) -> None:
        self.conn, self.book, self.names, self.owner, self.mapped = conn, book, names, owner, mapped
        self.grids = grids
        self.codes: dict[str, int] = {}
        self.places: dict[tuple[str, bytes], int] = {}

    def batch(self, first_row: int, columns: dict[str, pa.Array], geoms: Any) -> list[Decided | str]:
        """Each row's decision, or its reason for refusal; ``columns``: the survey's mapped fields (Arrow),
        normalised column by column; ``first_row`` is the first one's 1-based number."""
        normal = {f: normal_column(f, column, self.names) for f, column in columns.items()}
        for f in ("code", "surveyed_on"):
            normal.setdefault(f, [None] * len(geoms))
        found: dict[Any, dict[str, Any]] = {}
        self._fetch(sorted({c for c in normal["code"] if isinstance(c, str) and c}), found)
        out: list[Decided | str | None] = [None] * len(geoms)
        for i in self._unchanged(normal, geoms, found):
            self.codes[normal["code"][i]] = first_row + i
            out[i] = Decided(first_row + i, _Registered(normal["code"][i]), "unchanged")  # type: ignore[arg-type]
        rest = [i for i, d in enumerate(out) if d is None]
        decided = self._decide([first_row + i for i in rest], {f: [v[i] for i in rest] for f, v in normal.items()},
                               [geoms[i] for i in rest], found)
        for i, d in zip(rest, decided, strict=True):
            out[i] = d
        if self.grids is not None:  # the new rows' base grids, vectorised over the batch (grid_index.py)
            new = [d for d in decided if isinstance(d, Decided) and d.action == "new"]
            for d, grid in zip(new, self.grids.assign([d.item.geometry for d in new]), strict=True):
                d.grid = grid
        return out  # type: ignore[return-value]  # every row decided

    def _unchanged(self, normal: dict[str, list[Any]], geoms: Any, found: dict[Any, dict[str, Any]]) -> list[int]:
        """The rows identical to their registered component (the importing owner's): every mapped field equal,
        the geometry within ``SAME_PLACE_DEG``, the code once in the batch and not seen before. The registry
        holds only rows its rules passed, so these are unchanged without running the rules again (nothing of
        them is written); every other row takes the whole way (``_decide``)."""
        if not self.mapped <= {*COMPARED, "code", "class_code"}:
            return []
        codes = normal["code"]
        once = Counter(codes)
        compared = [f for f in COMPARED if f in self.mapped]
        classes = normal.get("class_code")
        candidates = []
        for i, code in enumerate(codes):
            old = found.get(code) if code else None
            if (old is None or once[code] > 1 or code in self.codes or old["owner_key"] != self.owner
                    or (classes is not None and classes[i] != code[6:10])
                    or any(normal[f][i] != old[f] for f in compared)):
                continue
            candidates.append(i)
        if not candidates:
            return []
        new = np.array([geoms[i] for i in candidates], dtype=object)
        old_geoms = shapely.from_wkb(np.array([bytes(found[codes[i]]["wkb"]) for i in candidates], dtype=object))
        same = shapely.equals_exact(old_geoms, new, tolerance=SAME_PLACE_DEG) & ~shapely.is_missing(new)
        return [i for i, ok in zip(candidates, same, strict=True) if ok]

    def _decide(self, numbers: list[int], normal: dict[str, list[Any]], geoms: list[Any],
                found: dict[Any, dict[str, Any]]) -> list[Decided | str]:
        """Rows by the whole way: prepared, matched with the registry, checked by the rules column by column
        (rules.py; one rule set with Part 4), compared; ``numbers``: their 1-based row numbers."""
        rows = [dict(zip(normal, row, strict=True)) for row in zip(*normal.values(), strict=True)]
        prepared: list[tuple[dict[str, Any], Any] | str] = []
        empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)  # one call per batch, not one per row
        for props, geom, nothing in zip(rows, geoms, empty.tolist(), strict=True):
            try:
                prepared.append(self._prepare(props, None if nothing else geom))
            except RowRefused as exc:
                prepared.append(str(exc))
        stored = self._stored([p for p in prepared if not isinstance(p, str)], found)
        moved = _moved(prepared, stored)
        shapes = self._shapes(prepared)
        out: list[Decided | str] = []
        merged: list[tuple[int, dict[str, Any], Any, dict[str, Any] | None]] = []
        for i, entry in enumerate(prepared):
            if isinstance(entry, str):
                out.append(entry)
                continue
            try:
                merged.append((i, *self._merged(numbers[i], entry[0], entry[1], stored)))
                out.append("")  # decided below, with the batch's rules
            except RowRefused as exc:
                out.append(str(exc))
        checked = check_columns(self.book, {f: [m[1].get(f) for m in merged] for f in ("code", *EDITABLE)},
                                [shapes[i] for i, _, _, _ in merged])
        for j, (i, values, geom, old) in enumerate(merged):
            try:
                item = component_of(checked, j, values, geom, values.get("surveyed_on"))
            except GridlinkError as exc:
                out[i] = exc.detail
                continue
            out[i] = self._decided(numbers[i], item, old, moved[i], prepared[i])
        return out

    def _prepare(self, props: dict[str, Any], geom: Any) -> tuple[dict[str, Any], Any]:
        if geom is None:  # missing or empty (``_decide``)
            raise RowRefused("the row has no geometry")
        for value in props.values():
            if isinstance(value, RowRefused):
                raise value
        code, cls = props.get("code"), props.get("class_code")
        if code is None and cls is None:
            raise RowRefused("the row has neither a code nor a class")
        if code is not None and cls is not None and len(code) == 16 and code[6:10] != cls:
            raise RowRefused(f"class {cls} differs from the class of code {code} ({code[6:10]})")
        if props.get("owner_key") not in (None, self.owner):
            raise RowRefused(f"owner {props['owner_key']} is not the importing owner {self.owner}")
        if code is None:
            district = self.book.district_at(geom.point_on_surface())
            if district is None:
                raise RowRefused("the component lies outside every district")
            props["series"] = district + str(cls)
        return props, geom

    def _stored(self, prepared: list[tuple[dict[str, Any], Any]],
                found: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
        """The registry's rows for the batch (``found``: those of its codes, fetched already), and those of the
        rows without a code that match a registered component of their class at their place."""
        codes = [p["code"] for p, _ in prepared if p.get("code")]
        placeless = [(i, p["class_code"], shapely.to_wkb(g)) for i, (p, g) in enumerate(prepared) if not p.get("code")]
        if placeless:
            for row in self.conn.execute(text(
                    "SELECT u.i, c.code FROM unnest(CAST(:i AS int[]), CAST(:c AS text[]), CAST(:w AS bytea[]))"
                    " u(i, cls, wkb) JOIN LATERAL (SELECT code FROM component c WHERE c.class_code = u.cls"
                    " AND ST_DWithin(c.geom, ST_GeomFromWKB(u.wkb, 4326), :d) ORDER BY code LIMIT 1) c ON true"),
                    {"i": [i for i, _, _ in placeless], "c": [c for _, c, _ in placeless],
                     "w": [w for _, _, w in placeless], "d": SAME_PLACE_DEG}):
                prepared[row[0]][0]["code"] = row[1]
                prepared[row[0]][0].pop("series", None)
                codes.append(row[1])
            self._fetch([c for c in codes if c not in found], found)
        return found

    def _fetch(self, codes: list[str], found: dict[Any, dict[str, Any]]) -> None:
        """The registry's rows of ``codes`` into ``found`` (plain tuples: a batch is 20,000 of them)."""
        result = self.conn.execute(text(
            "SELECT code, name, owner_key, manager_key, maintainer_key, status, note, surveyed_on,"
            " ST_AsBinary(geom) AS wkb FROM component WHERE code = ANY(:codes)"), {"codes": codes})
        names = list(result.keys())
        for row in result.tuples():
            found[row[0]] = dict(zip(names, row, strict=True))

    def _shapes(self, prepared: list[tuple[dict[str, Any], Any] | str]) -> list[str | None]:
        """The geometry rules' verdict on each prepared row, for the whole batch at once (rules.py)."""
        rows = [(i, p[0].get("code") or f"{p[0].get('series')}000000", p[1]) for i, p in enumerate(prepared)
                if not isinstance(p, str)]
        out: list[str | None] = [None] * len(prepared)
        found = geometry_problems(self.book, np.array([g for _, _, g in rows], dtype=object), [c for _, c, _ in rows])
        for (i, _, _), problem in zip(rows, found, strict=True):
            out[i] = problem
        return out

    def _merged(self, row: int, props: dict[str, Any], geom: Any,
                stored: dict[Any, dict[str, Any]]) -> tuple[dict[str, Any], Any, dict[str, Any] | None]:
        """The row's values to check (the survey's mapped fields over the registered component's), its geometry
        and the registered component (None: new); refused when a duplicate or another owner's component."""
        code = props.get("code")
        key: Any = code if code else (props["class_code"], shapely.to_wkb(geom))
        seen = self.codes if code else self.places
        if key in seen:
            raise RowRefused(f"a duplicate of row {seen[key]}" + (f" (code {code})" if code else " (class and place)"))
        seen[key] = row
        old = stored.get(code) if code else None
        if old is not None and old["owner_key"] != self.owner:
            raise RowRefused(f"component {code} belongs to {old['owner_key']}, not to {self.owner}")
        values = {f: old[f] for f in COMPARED if f not in self.mapped} if old else {}
        values.update({f: props.get(f) for f in COMPARED if f in self.mapped})
        values["owner_key"] = self.owner
        values["code"] = code or f"{props.get('series')}000000"
        return values, geom, old

    @staticmethod
    def _decided(row: int, item: ComponentInput, old: dict[str, Any] | None, moved: bool, entry: Any) -> Decided:
        if old is None:
            return Decided(row, item, "new", series=entry[0].get("series"))
        changed = [f for f in COMPARED if getattr(item, f) != old[f]]
        if moved:
            changed.append("geometry")
        return Decided(row, item, "changed" if changed else "unchanged", changed)


def _moved(prepared: list[tuple[dict[str, Any], Any] | str], stored: dict[Any, dict[str, Any]]) -> list[bool]:
    """For each prepared row matching a registered component, whether its geometry differs from the stored one
    by more than ``SAME_PLACE_DEG`` (vertex by vertex, in one vectorised call per batch)."""
    pairs = [(i, stored[p[0]["code"]]["wkb"], p[1]) for i, p in enumerate(prepared)
             if not isinstance(p, str) and p[0].get("code") in stored]
    moved = [False] * len(prepared)
    if pairs:
        old = shapely.from_wkb(np.array([bytes(w) for _, w, _ in pairs], dtype=object))
        new = np.array([g for _, _, g in pairs], dtype=object)
        for (i, _, _), same in zip(pairs, shapely.equals_exact(old, new, tolerance=SAME_PLACE_DEG), strict=True):
            moved[i] = not same
    return moved


def series_of(code: str) -> str:
    """A component code's series: district + class (the part the serial counts within)."""
    return district_of(code) + code[6:10]
