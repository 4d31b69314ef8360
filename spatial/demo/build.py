"""``gridlink demo``: build the Suzhou demo into an empty database, in one transaction.

Steps, each with a progress bar: reference tables → districts (repaired, reported) → towns, communities,
base grids and special grids → 4+N teams → 680,000 components in Wuzhong → a year of cases and their events.
Everything is deterministic for a given seed. A database that already holds this exact demo is left as it
is; a database holding anything else is refused unless ``force`` is given (then it is emptied first).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import Engine, text
from tqdm import tqdm

from spatial.demo.cases import KPI_COLUMNS, CaseContext, CaseGenerator, Category
from spatial.demo.components import MAINTAINERS, ClassInfo, PointSampler, generate_components, survey_date
from spatial.demo.districts import load_districts
from spatial.demo.grids import GridBuilder, GridSet, urban_density
from spatial.demo.names import NameMaker
from spatial.demo.plan import FULL, SMALL, WUZHONG, Scale
from spatial.geo.geometry import Repair
from spatial.reference.calendar import WorkingCalendar
from spatial.reference.load import load_reference
from spatial.store.copy import copy_lines, raw_cursor, row_line
from spatial.store.integrity import ForeignKeyError, check_foreign_keys, restore_row_triggers, skip_row_triggers
from spatial.store.partitions import cover

DEMO_END = datetime(2026, 11, 16, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
EFFECTIVE = datetime(2024, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
DATA_TABLES = (
    "case_event", "case_key", "case", "component_history", "component", "team_member", "grid_geometry", "grid",
    "grid_version", "api_token", "account", "holiday", "event_category", "component_class", "department",
    "meta",
)
TEAM_CORE = ("chief", "inspector", "police", "supervisor")


class DemoError(RuntimeError):
    """The demo cannot be built here (e.g. the database holds other data)."""


@dataclass
class DemoReport:
    """What a build did: counts, repairs, and seconds per step."""

    counts: dict[str, int] = field(default_factory=dict)
    repairs: list[Repair] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: bool = False


def fingerprint(seed: int, scale: Scale) -> str:
    """Return a digest of the generator's code, its data and its parameters (same digest, same demo)."""
    digest = hashlib.sha256(f"{seed}|{scale}|{DEMO_END.isoformat()}".encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    for name in ("suzhou_districts.geojson", "component_classes.csv", "event_classes.csv", "departments.csv"):
        digest.update(resources.files("spatial.reference.data").joinpath(name).read_bytes())
    return digest.hexdigest()[:16]


def build_demo(engine: Engine, *, seed: int = 20261116, small: bool = False, force: bool = False,
               progress: bool = True, scale: Scale | None = None) -> DemoReport:
    """Build the demo (see module docstring); return the report.

    ``scale`` replaces the city's sizes; a ``ProvinceScale`` builds the synthetic province instead
    (spatial/demo/province.py) through the same steps.
    """
    from spatial.demo.province import ProvinceBuilder, ProvinceScale

    scale = scale or (SMALL if small else FULL)
    stamp: dict[str, object] = {"seed": seed, "small": small, "fingerprint": fingerprint(seed, scale)}
    builder = Builder
    if isinstance(scale, ProvinceScale):
        stamp["scale"] = f"province×{scale.fraction:g}"
        builder = ProvinceBuilder
    report = DemoReport()
    with engine.begin() as conn:
        current = conn.execute(text("SELECT value FROM meta WHERE key = 'demo'")).scalar()
        if current is not None and {k: current.get(k) for k in stamp} == stamp:
            report.skipped = True
            return report
        has_data = conn.execute(text("SELECT EXISTS (SELECT 1 FROM grid)")).scalar()
        if has_data and current is None and not force:
            raise DemoError("the database already holds grids that no demo made; use --force to replace them")
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in DATA_TABLES) + " RESTART IDENTITY CASCADE"))
        fast = skip_row_triggers(conn)
        # The generator writes each case's evaluation summary (case.kpi_*, migration 0020) with its row: the
        # trigger that keeps it for live writes would cost a case update per event here.
        conn.execute(text("SET LOCAL gridlink.case_kpi = 'deferred'"))
        builder(conn, seed, scale, report, progress).run()
        # the last steps are single statements, each its own tick: KPI rollup, foreign keys, VACUUM ANALYZE
        finishing = tqdm(total=3, desc="finishing: rollup, keys, analyze", unit="step", disable=not progress)
        conn.execute(text("SET LOCAL gridlink.case_kpi = 'on'"))
        # The evaluation's rollup (migration 0022) steps aside while deferred: built once, set-based.
        started = time.perf_counter()
        conn.execute(text("SELECT gridlink_kpi_rollup_rebuild()"))
        report.seconds["kpi_rollup"] = round(time.perf_counter() - started, 2)
        finishing.update(1)
        if fast:
            started = time.perf_counter()
            try:
                check_foreign_keys(conn, DATA_TABLES)
            except ForeignKeyError as exc:
                raise DemoError(str(exc)) from exc
            restore_row_triggers(conn)
            report.seconds["foreign_keys"] = round(time.perf_counter() - started, 2)
        finishing.update(1)
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('demo', CAST(:v AS jsonb))"),
                     {"v": json.dumps({**stamp, "built_at": datetime.now(UTC).isoformat(),
                                                     "counts": report.counts, "seconds": report.seconds})})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.perf_counter()
        conn.execute(text("VACUUM ANALYZE"))
        report.seconds["analyze"] = round(time.perf_counter() - started, 2)
    finishing.update(1)
    finishing.close()
    return report


class Builder:
    """One build, step by step, on one connection inside the caller's transaction."""

    def __init__(self, conn, seed: int, scale: Scale, report: DemoReport, progress: bool) -> None:
        self.conn = conn
        self.cursor = raw_cursor(conn)
        self.rng = np.random.default_rng(seed)
        self.names = NameMaker(self.rng)
        self.scale = scale
        self.report = report
        self.progress = progress

    def _step(self, name: str, func, *args):
        started = time.perf_counter()
        result = func(*args)
        self.report.seconds[name] = round(time.perf_counter() - started, 2)
        return result

    def _bar(self, total: int, desc: str, unit: str = "it") -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, mininterval=1.0,
                    dynamic_ncols=True)

    def run(self) -> None:
        """Run every step."""
        self.report.counts.update(self._step("reference", load_reference, self.conn))
        self._step("departments", self._demo_departments)
        grids = self._step("grids", self._grids)
        self._step("teams", self._teams, grids)
        components, sampler = self._step("components", self._components, grids)
        self._step("cases", self._cases, grids, components, sampler)
        self.cursor.execute(
            "SELECT setval(pg_get_serial_sequence('case', 'id'), GREATEST((SELECT max(id) FROM \"case\"), 1));"
            "SELECT setval(pg_get_serial_sequence('case_event', 'id'),"
            " GREATEST((SELECT max(id) FROM case_event), 1));"
            "SELECT setval(pg_get_serial_sequence('grid_version', 'id'),"
            " GREATEST((SELECT max(id) FROM grid_version), 1))"
        )

    def _demo_departments(self) -> None:
        rows = [row_line((key, zh, en, "maintainer", "demo maintenance contractor"))
                for key, zh, en in MAINTAINERS.values()]
        copy_lines(self.cursor, "department", ("key", "name_zh", "name_en", "kind", "handles"), rows)

    def _grids(self) -> GridSet:
        districts = load_districts()
        self.report.repairs = districts.repairs
        with self._bar(9, "grids: districts built", "district") as bar:
            grids = GridBuilder(districts, self.scale, self.rng, self.names).build(bar)
        self._store_grids(grids, "initial survey of the Suzhou demo grids")
        return grids

    def _store_grids(self, grids: GridSet, note: str) -> None:
        self.cursor.execute(
            "INSERT INTO grid_version (id, effective_at, author, note) VALUES (1, %s, 'gridlink demo', %s)",
            (EFFECTIVE, note),
        )
        copy_lines(self.cursor, "grid", ("code", "level", "kind", "name", "parent_code"),
                   (row_line((r.code, r.level, r.kind, r.name, r.parent_code)) for r in grids.rows))
        wkb = shapely.to_wkb(shapely.set_srid(np.array([r.geom for r in grids.rows], dtype=object), 4326),
                             hex=True, include_srid=True)
        # the name too: the build skips row triggers, so grid_geometry_name (migration 0022) does not fill it
        copy_lines(self.cursor, "grid_geometry", ("grid_code", "version_id", "kind", "name", "geom", "valid_from"),
                   (row_line((r.code, 1, r.kind, r.name, w, EFFECTIVE.isoformat()))
                    for r, w in zip(grids.rows, wkb, strict=True)))
        for kind in ("district", "town", "community", "base"):
            self.report.counts[f"grids_{kind}"] = len(grids.by_kind(kind))
        self.report.counts["grids_special"] = sum(1 for r in grids.rows if r.level is None)

    def _teams(self, grids: GridSet) -> None:
        lines: list[str] = []
        teams = [row for row in grids.rows if row.kind not in ("district", "town", "community")]
        with self._bar(len(teams), "teams", "grid") as bar:
            for row in teams:
                roles = list(TEAM_CORE) + ["volunteer"] * int(self.rng.integers(1, 3)) + ["mediator"]
                lines.extend(row_line((row.code, role, self.names.person(), self.names.phone())) for role in roles)
                bar.update(1)
            copy_lines(self.cursor, "team_member", ("grid_code", "role", "name", "phone"), lines)
        self.report.counts["team_members"] = len(lines)

    def _classes(self) -> list[ClassInfo]:
        rows = self.conn.execute(text(
            "SELECT code, name_zh, geometry_kind, default_owner, demo_weight FROM component_class ORDER BY code"
        ))
        return [ClassInfo(code, name, kind, owner, float(weight)) for code, name, kind, owner, weight in rows]

    def _components(self, grids: GridSet):
        district = next(r for r in grids.rows if r.code == WUZHONG.code)
        base = sorted(grids.by_kind("base", WUZHONG.code), key=lambda r: r.code)
        centres = grids.centres[WUZHONG.code]
        # A low floor keeps scattered components near settlements, not out on Taihu lake.
        sampler = PointSampler(district.geom, centres, base, urban_density(centres, floor=0.003), self.rng)
        count = self.scale.components
        with self._bar(count, "components", "comp") as bar:
            made = generate_components(WUZHONG.code, self._classes(), sampler, count, self.rng)
            bar.update(count // 4)
            history = self._write_components(WUZHONG.code, base, made, bar, count * 3 // 4)
            bar.update(count - bar.n)
        self.report.counts["components"] = count
        self.report.counts["component_history"] = history
        return made, sampler

    def _write_components(self, district_code: str, base: list, made, bar: tqdm, share: int) -> int:
        """COPY the components ``made`` in ``district_code`` (grid indexes into ``base``) and their history;
        advance ``bar`` by ``share`` on the way; return the number of history rows."""
        count = len(made.codes)
        step = max(1, share // 3)
        wkb = shapely.to_wkb(shapely.set_srid(made.geoms, 4326), hex=True, include_srid=True)
        maintainer = {owner: key for owner, (key, _, _) in MAINTAINERS.items()}
        lines: list[str] = []
        history: list[str] = []
        for i in range(count):
            owner = str(made.owners[i])
            code = str(made.codes[i])
            surveyed = survey_date(made.surveyed[i])
            status = str(made.status[i])
            changed = survey_date(made.surveyed[i] + made.changed[i]) if made.changed[i] else surveyed
            lines.append(f"{code}\t{made.class_codes[i]}\t{district_code}\t{base[made.grid_index[i]].code}\t"
                         f"{owner}\t{owner}\t{maintainer.get(owner, owner)}\t{status}\t{surveyed}\t"
                         f"{changed} 09:00:00+08\t{made.source[i]}\t{wkb[i]}\n")
            history.append(f"{code}\t{surveyed} 09:00:00+08\tsurvey\tcreate\t\\N\tintact\n")
            if status != "intact":
                history.append(f"{code}\t{changed} 09:00:00+08\tinspection\tstatus\tintact\t{status}\n")
        bar.update(step)
        copy_lines(self.cursor, "component", (
            "code", "class_code", "district_code", "grid_code", "manager_key", "owner_key", "maintainer_key",
            "status", "surveyed_on", "changed_at", "source", "geom"), lines)
        bar.update(step)
        copy_lines(self.cursor, "component_history",
                   ("component_code", "at", "actor", "action", "status_from", "status_to"), history)
        bar.update(share - 2 * step)
        return len(history)

    def _categories(self) -> list[Category]:
        rows = self.conn.execute(text(
            "SELECT code, name_zh, flow, handler, enforcer, time_limit, time_unit, component_classes"
            " FROM event_category WHERE time_limit IS NOT NULL ORDER BY code"
        ))
        return [Category(*row) for row in rows]

    def _cases(self, grids: GridSet, components, sampler: PointSampler) -> None:
        base = sorted(grids.by_kind("base", WUZHONG.code), key=lambda r: r.code)
        specials = sorted((r for r in grids.rows if r.level is None and r.code.startswith(WUZHONG.code)),
                          key=lambda r: r.code)
        self._write_cases([r.code for r in base], specials, components, sampler)

    def _write_cases(self, grid_codes: list[str], specials: list, components, sampler: PointSampler) -> None:
        """Generate and COPY the cases over ``grid_codes`` (the sampler's grid indexes) day by day."""
        holidays = dict(self.conn.execute(text("SELECT day, is_workday FROM holiday")).all())
        ctx = CaseContext(
            categories=self._categories(), components=components, sampler=sampler,
            grid_codes=grid_codes, special_codes=[r.code for r in specials],
            special_tree=shapely.STRtree([r.geom for r in specials]), calendar=WorkingCalendar(holidays),
            names=self.names, version_id=1, end=DEMO_END,
        )
        generator = CaseGenerator(ctx, self.rng, self.scale.cases_per_day, self.scale.days)
        # The months of the history get their partitions before it is loaded (migration 0028): else its events
        # would land in the default partitions, out of reach of partition pruning.
        cover(self.conn, DEMO_END - timedelta(days=self.scale.days + 1))
        case_columns = (
            "id", "case_no", "category_code", "state", "source", "description", "location", "grid_code",
            "community_code", "town_code", "district_code", "special_grid_codes", "grid_version_id",
            "component_code", "component_distance_m", "owner_key", "owner_area_code", "deadline", "duplicate_of",
            "reporter_name", "reporter_phone", "idempotency_key", "reported_at", "created_at", "closed_at",
            "revision", "pending_action", *KPI_COLUMNS,
        )
        event_columns = ("id", "case_id", "at", "kind", "state_after", "actor", "role", "note", "data")
        cases = events = 0
        batch_cases: list[str] = []
        batch_events: list[str] = []
        with self._bar(self.scale.days, "cases: days of history", "day") as bar:
            for case_lines, event_lines in generator.days_iter():
                batch_cases += case_lines
                batch_events += event_lines
                if len(batch_events) > 200_000:
                    cases += copy_lines(self.cursor, "case", case_columns, batch_cases)
                    events += copy_lines(self.cursor, "case_event", event_columns, batch_events)
                    batch_cases, batch_events = [], []
                bar.update(1)
            cases += copy_lines(self.cursor, "case", case_columns, batch_cases)
            events += copy_lines(self.cursor, "case_event", event_columns, batch_events)
        self.report.counts["cases"] = cases
        self.report.counts["case_events"] = events
