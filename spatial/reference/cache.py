"""Reference data held in memory by a running server: categories, departments, the working calendar.

Loaded once at startup (a few hundred rows); ``reload`` after ``gridlink import reference``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from spatial.reference.calendar import WorkingCalendar


@dataclass(frozen=True)
class CategoryInfo:
    """A leaf event category as assignment needs it."""

    code: str
    name: str
    grade: str
    flow: str
    handler: str
    enforcer: str | None
    time_limit: int
    time_unit: str
    component_classes: tuple[str, ...] | None  # None: any class ("*") or not a component category


@dataclass(frozen=True)
class ReferenceCache:
    """What assignment reads on every request, without a round trip."""

    categories: dict[str, CategoryInfo]
    departments: dict[str, str]
    calendar: WorkingCalendar
    # Grid code -> (name, level or special kind); names change only through the planner, which reloads.
    areas: dict[str, tuple[str, int | str]]

    @classmethod
    def load(cls, conn: Connection) -> ReferenceCache:
        """Read the reference tables."""
        categories = {}
        for row in conn.execute(text(
            "SELECT code, name_zh, grade, flow, handler, enforcer, time_limit, time_unit, component_classes"
            " FROM event_category WHERE time_limit IS NOT NULL"
        )):
            classes = row.component_classes
            wanted = None if not classes or "*" in classes else tuple(classes)
            categories[row.code] = CategoryInfo(row.code, row.name_zh, row.grade, row.flow, row.handler,
                                                row.enforcer, row.time_limit, row.time_unit, wanted)
        departments = {key: name for key, name in conn.execute(text("SELECT key, name_zh FROM department"))}
        holidays = {day: flag for day, flag in conn.execute(text("SELECT day, is_workday FROM holiday"))}
        areas: dict[str, tuple[str, int | str]] = {
            code: (name, level if level is not None else kind)
            for code, name, level, kind in conn.execute(text("SELECT code, name, level, kind FROM grid"))
        }
        return cls(categories, departments, WorkingCalendar(holidays), areas)
