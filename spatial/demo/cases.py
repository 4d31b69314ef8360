"""Generate a year of case history: ~1,600 reports a day, assigned, with their full event trail.

Each case runs the closed loop as far as the demo's end time allows, so old cases are mostly closed and
recent ones are spread over the open states. About 4 % of reports are refused at verification (void), 2 %
are duplicates linked to an open case, 3 % fail the check and are reworked, 0.5 % are suspended. Void and
suspension are requested and approved by a second dispatcher, as the workflow's table has them
(spatial/cases/workflow.py; tests/integration/test_workflow_demo.py replays the history through it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely

from spatial.cases.assignment.owner import owner_for
from spatial.codes import community_of, district_of, town_of
from spatial.demo.components import ComponentSet, PointSampler
from spatial.demo.names import NameMaker
from spatial.reference.calendar import WorkingCalendar

FLOW_WEIGHTS = {"grid_first": 3.0, "department": 1.0, "component": 1.4, "enforcement": 0.35}
SOURCE_WEIGHTS = {"inspector": 0.55, "hotline": 0.25, "video": 0.1, "public": 0.07, "dispatcher": 0.03}
HOUR = 3600.0
NULL = r"\N"


@dataclass
class Category:
    """A leaf event category as the generator needs it."""

    code: str
    name: str
    flow: str
    handler: str
    enforcer: str | None
    time_limit: int
    time_unit: str
    classes: list[str] | None  # component classes; ["*"] for any class


@dataclass
class CaseContext:
    """Everything case generation reads."""

    categories: list[Category]
    components: ComponentSet
    sampler: PointSampler
    grid_codes: list[str]  # base grids of the district, sorted by code (index = sampler grid index)
    special_codes: list[str]
    special_tree: shapely.STRtree
    calendar: WorkingCalendar
    names: NameMaker
    version_id: int
    end: datetime
    class_members: dict[str, np.ndarray] = field(default_factory=dict)


_DAYS: dict[int, str] = {}
# The role an actor of the generated history acted in (``role:unit`` names; the reporting channels and
# ``system`` as they are): case_event.role, which the workflow writes for every live action (migration 0014).
ROLES = ("dispatcher", "handler", "grid_chief", "inspector", "system")


def _ts(seconds: float) -> str:
    """Format a UTC timestamp for COPY; a hot path (millions of calls), hence the day cache."""
    whole = int(seconds)
    day, rest = divmod(whole, 86400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
    hours, rest = divmod(rest, 3600)
    return f"{prefix} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}+00"


def _role(actor: str) -> str:
    role = actor.partition(":")[0]
    return role if role in ROLES else NULL


# The evaluation's summary of a trail (case.kpi_*, migration 0020), in COPY column order: the latest time of a
# register, of any state change, of becoming closed, handled, voided, suspended, of a ``handle`` event, then
# the rework count and the latest of them all (``kpi_through``); the report event is not part of it.
KPI_COLUMNS = ("kpi_registered_at", "kpi_state_at", "kpi_closed_at", "kpi_handled_state_at", "kpi_voided_at",
               "kpi_suspended_at", "kpi_handled_at", "kpi_reworks", "kpi_through")
_KPI_STATES = {"closed": 2, "handled": 3, "voided": 4, "suspended": 5}


class CaseWriter:
    """Turns generated cases into COPY lines for ``case`` and ``case_event``, summing up each case's trail as
    the trigger case_event_kpi would (the build defers the trigger; the small-demo parity test checks that
    ``gridlink_case_kpi_rebuild()`` finds nothing to change)."""

    def __init__(self) -> None:
        self.case_id = 0
        self.event_id = 0
        self.cases: list[str] = []
        self.events: list[str] = []
        self._kpi_case = 0
        self._kpi: list[float | None] = [None] * 7
        self._reworks = 0
        self._through: float | None = None

    def event(self, case_id: int, at: float, kind: str, state: str | None, actor: str,
              note: str | None = None, data: str | None = None) -> None:
        """Append one event line; ``data`` is JSON text already (the generator writes only plain values)."""
        self.event_id += 1
        self.events.append(
            f"{self.event_id}\t{case_id}\t{_ts(at)}\t{kind}\t{state or NULL}\t{actor}\t{_role(actor)}\t"
            f"{note or NULL}\t{data or NULL}\n"
        )
        if case_id != self._kpi_case:
            self._kpi_case, self._kpi, self._reworks, self._through = case_id, [None] * 7, 0, None
        if kind == "report" or (state is None and kind not in ("register", "handle", "rework")):
            return
        slots = [0] if kind == "register" else []
        if state is not None:
            slots.append(1)
            if state in _KPI_STATES:
                slots.append(_KPI_STATES[state])
        if kind == "handle":
            slots.append(6)
        for slot in slots:
            current = self._kpi[slot]
            self._kpi[slot] = at if current is None or at > current else current
        self._reworks += kind == "rework"
        self._through = at if self._through is None or at > self._through else self._through

    def kpi_fields(self, case_id: int) -> list[str]:
        """The COPY fields of ``KPI_COLUMNS`` for ``case_id``, whose events were written last."""
        if case_id != self._kpi_case:
            return [NULL] * 7 + ["0", NULL]
        return [_ts(t) if t is not None else NULL for t in self._kpi] + [
            str(self._reworks), _ts(self._through) if self._through is not None else NULL]

    def take(self) -> tuple[list[str], list[str]]:
        """Return and forget the lines gathered so far."""
        cases, events = self.cases, self.events
        self.cases, self.events = [], []
        return cases, events


class CaseGenerator:
    """Generates the history day by day (deterministic for one random generator)."""

    def __init__(self, ctx: CaseContext, rng: np.random.Generator, per_day: int, days: int) -> None:
        self.ctx = ctx
        self.rng = rng
        self.per_day = per_day
        self.days = days
        self.writer = CaseWriter()
        weights = np.array([FLOW_WEIGHTS[c.flow] for c in ctx.categories])
        self.category_p = weights / weights.sum()
        # Per category: (id, reported, closed or inf, location) of the last day's cases, for duplicates.
        self.open_recent: dict[str, deque[tuple[int, float, float, np.ndarray]]] = {}
        for category in ctx.categories:
            if category.classes and category.classes != ["*"]:
                ctx.class_members[category.code] = np.flatnonzero(np.isin(ctx.components.class_codes,
                                                                          category.classes))
        self.end_ts = ctx.end.timestamp()
        # case numbers are the day and a serial: 5 digits for the city, 6 for the province's ~300,000 a day
        self.serial_width = max(5, len(str(2 * per_day)))

    def days_iter(self) -> Iterator[tuple[list[str], list[str]]]:
        """Yield (case lines, event lines) for each day, oldest first."""
        start = self.ctx.end - timedelta(days=self.days)
        for day in range(self.days):
            midnight = start + timedelta(days=day)
            self._day(midnight)
            yield self.writer.take()

    def _day(self, midnight: datetime) -> None:
        weekday_factor = 1.12 if midnight.weekday() < 5 else 0.7
        count = int(self.rng.poisson(self.per_day * weekday_factor))
        hours = np.clip(np.where(self.rng.random(count) < 0.55, self.rng.normal(10, 2, count),
                                 self.rng.normal(15.5, 2.2, count)), 6, 22.5)
        times = np.sort(midnight.timestamp() + hours * HOUR)
        cats = self.rng.choice(len(self.ctx.categories), size=count, p=self.category_p)
        points, _, grid = self.ctx.sampler.sample(count)
        component = np.full(count, -1)
        for i in np.flatnonzero([self.ctx.categories[c].flow == "component" for c in cats]):
            members = self.ctx.class_members.get(self.ctx.categories[cats[i]].code)
            pool_size = len(members) if members is not None else len(self.ctx.components.codes)
            pick = int(self.rng.integers(pool_size))
            component[i] = members[pick] if members is not None else pick
        near = component >= 0
        if near.any():
            jitter = self.rng.normal(0, 4e-5, (int(near.sum()), 2))
            points[near] = np.round(self.ctx.components.anchors[component[near]] + jitter, 7)
            grid[near] = self.ctx.sampler.locate(points[near])
            lost = near & (grid < 0)
            points[lost] = self.ctx.components.anchors[component[lost]]
            grid[lost] = self.ctx.components.grid_index[component[lost]]
        geoms = shapely.points(points)
        hex_wkb = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
        specials: dict[int, list[str]] = {}
        hits, which = self.ctx.special_tree.query(geoms, predicate="intersects")
        for hit, tree_index in zip(hits.tolist(), which.tolist(), strict=True):
            specials.setdefault(hit, []).append(self.ctx.special_codes[tree_index])
        prefix = midnight.strftime("%Y%m%d")
        sources = np.array(list(SOURCE_WEIGHTS))[
            self.rng.choice(len(SOURCE_WEIGHTS), size=count, p=list(SOURCE_WEIGHTS.values()))]
        for n in range(count):
            self._case(f"{prefix}{n + 1:0{self.serial_width}d}", float(times[n]), self.ctx.categories[cats[n]],
                       points[n], hex_wkb[n], int(grid[n]), int(component[n]), sorted(specials.get(n, [])),
                       str(sources[n]))

    def _case(self, case_no: str, at: float, cat: Category, point: np.ndarray, wkb: str, grid: int,
              component: int, specials: list[str], source: str) -> None:
        ctx, w = self.ctx, self.writer
        w.case_id += 1
        case_id = w.case_id
        grid_code = ctx.grid_codes[grid]
        comp_code, distance = r"\N", r"\N"
        if component >= 0:
            comp_code = str(ctx.components.codes[component])
            delta = (point - ctx.components.anchors[component]) * np.array([94_900.0, 110_900.0])
            distance = f"{float(np.hypot(*delta)):.1f}"
        owner_key, owner_area = self._owner(cat, grid_code, component)
        reported = datetime.fromtimestamp(at, UTC)
        deadline = ctx.calendar.deadline(reported, cat.time_limit, cat.time_unit).timestamp()
        duplicate_of = self._duplicate(cat, point, at)
        state, closed, pending = self._trail(case_id, at, deadline, cat, grid_code, owner_key, source, duplicate_of)
        reporter_name, reporter_phone = r"\N", r"\N"
        if source in ("hotline", "public"):
            reporter_name, reporter_phone = ctx.names.person(), ctx.names.phone()
        w.cases.append("\t".join((
            str(case_id), case_no, cat.code, state, source, f"{cat.name}（{grid_code}）", wkb, grid_code,
            community_of(grid_code), town_of(grid_code), district_of(grid_code), "{" + ",".join(specials) + "}",
            str(ctx.version_id), comp_code, distance, owner_key, owner_area, _ts(deadline),
            str(duplicate_of) if duplicate_of else r"\N", reporter_name, reporter_phone, r"\N", _ts(at), _ts(at),
            _ts(closed) if closed else r"\N", "1", pending or NULL, *w.kpi_fields(case_id),
        )) + "\n")
        if state != "voided":
            self.open_recent.setdefault(cat.code, deque()).append((case_id, at, closed or float("inf"), point))

    def _owner(self, cat: Category, grid_code: str, component: int) -> tuple[str, str]:
        """The owner key and area of a generated case (COPY text: ``\\N`` for no area), by the one rule."""
        component_owner = str(self.ctx.components.owners[component]) if component >= 0 else None
        key, area = owner_for(cat.flow, cat.handler, cat.enforcer, grid_code=grid_code, component_owner=component_owner)
        return key, area if area is not None else NULL

    def _duplicate(self, cat: Category, point: np.ndarray, at: float) -> int | None:
        """Return the id of an open case of the same category within 50 m and 24 h, if any."""
        recent = self.open_recent.get(cat.code)
        if not recent:
            return None
        while recent and at - recent[0][1] >= 24 * HOUR:
            recent.popleft()
        if self.rng.random() >= 0.02:
            return None
        still_open = [r for r in recent if r[2] > at]
        if still_open:
            case_id, _, _, anchor = still_open[int(self.rng.integers(len(still_open)))]
            point[:] = np.round(anchor + self.rng.normal(0, 1.5e-4, 2), 7)
            return case_id
        return None

    def _trail(self, case_id: int, at: float, deadline: float, cat: Category, grid_code: str, owner: str,
               source: str, duplicate_of: int | None) -> tuple[str, float | None, str | None]:
        """Write the events of one case; return its state at the demo's end, its close time and the action
        waiting for approval then (if any)."""
        rng, w, end = self.rng, self.writer, self.end_ts
        reporter = f"{source}:{grid_code}" if source == "inspector" else f"{source}:12345"
        w.event(case_id, at, "report", "reported", reporter, None, f'{{"category": "{cat.code}"}}')
        if duplicate_of:
            w.event(case_id, at + 60, "link", "voided", "system", "重复上报，已关联原案件",
                    f'{{"duplicate_of": {duplicate_of}}}')
            return "voided", None, None
        steps: list[tuple[float, str, str | None, str, str | None, str | None]] = []
        t = at + rng.uniform(5, 40) * 60
        if rng.random() < 0.04:
            steps += _approved(t, "void", "voided", "核实不属实，作废")
        else:
            steps += self._loop(t, at, deadline, owner, grid_code)
        state, closed, pending = "reported", None, None
        for when, kind, after, actor, note, data in steps:
            if when > end:
                break
            w.event(case_id, when, kind, after, actor, note, data)
            state = after or state
            if kind == "close":
                closed = when
            if kind == "request":
                pending = "void" if '"void"' in str(data) else "suspend"
            elif kind == "approve":
                pending = None
        return state, closed, pending

    def _loop(self, t: float, at: float, deadline: float, owner: str, grid_code: str) -> list[tuple]:
        rng = self.rng
        handler = f"grid_chief:{grid_code}" if owner == "GRID_CHIEF" else f"handler:{owner}"
        steps: list[tuple] = [(t, "register", "registered", "dispatcher:center", "核实属实，立案", None)]
        t += rng.uniform(5, 60) * 60
        steps.append((t, "dispatch", "dispatched", "dispatcher:center", None, f'{{"to": "{owner}"}}'))
        if rng.random() < 0.005:
            steps += _approved(t + 2 * 86400, "suspend", "suspended", "需长期整改，挂账")
            return steps
        rounds = 2 if rng.random() < 0.03 else 1
        for round_no in range(rounds):
            t += max(0.1, (deadline - at) * float(rng.lognormal(np.log(0.45), 0.55)))
            steps.append((t, "handle", "handled", handler, "已处置", None))
            t += rng.uniform(0.5, 6) * HOUR
            passed = round_no == rounds - 1
            steps.append((t, "check", None, f"inspector:{grid_code}", "核查通过" if passed else "核查未通过",
                          '{"result": "pass"}' if passed else '{"result": "fail"}'))
            if not passed:
                steps.append((t + 60, "rework", "dispatched", "dispatcher:center", "返工", None))
        t += rng.uniform(0.1, 2) * HOUR
        steps.append((t, "close", "closed", "dispatcher:center", "结案", None))
        on_time = steps[-2][0] <= deadline
        steps.append((t + rng.uniform(1, 48) * HOUR, "evaluate", None, "system", None,
                      '{"on_time": true}' if on_time else '{"on_time": false}'))
        return steps


def _approved(t: float, kind: str, state: str, note: str) -> list[tuple]:
    """An action that needs a second person's approval (spatial/cases/workflow.py): the duty dispatcher
    requests it, the shift leader (值班长) approves it two minutes later, and it takes effect."""
    data = f'{{"reason": "{note}"}}'
    return [(t, "request", None, "dispatcher:center", note, f'{{"action": "{kind}", "reason": "{note}"}}'),
            (t + 120, "approve", None, "dispatcher:chief", None, f'{{"action": "{kind}"}}'),
            (t + 120, kind, state, "dispatcher:chief", note, data)]
