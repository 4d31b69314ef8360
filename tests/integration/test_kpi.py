"""Evaluation (spatial/cases/kpi.py, GET /api/v1/kpi) on a hand-built known-answer history in the world of
tests/world.py: every formula, the grade boundaries, the 721 split, rankings, the period's edges (events
after ``to`` ignored, cases reported outside it left out), CSV, bad parameters and scopes over HTTP.

The history (period: March 2026, Suzhou time; D = the deadline):

grid A = 320506001001001, owner GRID_CHIEF — 12 cases:
  1, 2  handled and closed before D                     due, closed on time, handled on time
  3     handled and closed after D                      due, closed late, handled late
  4     handled, check failed, reworked, handled, closed before D: due, reworked, on time
  5     handled before D, not closed by ``to``          due, handled on time, not closed
  6     dispatched only, D passed                       due, nothing more
  7     dispatched only, D after ``to``                 not due
  8     voided at verification                          voided, never registered
  9     suspended (挂账)                                 not due
  10    handled before D, closed after ``to``           due, handled on time, not closed (judged at ``to``)
  11    reported in February                            not in the period
  12    handled and closed before D, reopened before ``to``: due, neither handled nor closed
grid B = 320506001001002, owner WATER: 2 cases handled and closed before D (13, 14); 16 dispatched with an
  assisting unit, returned and voided
grid E = 320506002001001 (inside the scenic special grid), owner ENFORCE: 1 case handled and closed before D

Assisting units (协办, ``ASSISTS``; d = the unit's own deadline):
  case 1   WATER  handled before d; URBAN handled after d     (two assisting units on one case)
  case 3   URBAN  accepted, never handled, d passed           due, not handled
  case 7   URBAN  d after ``to``                              not due
  case 9   WATER  case suspended                              not due
  case 10  URBAN  d passed, handled after ``to`` (day 33)     due, not handled in March
  case 13  URBAN  handled before d (on a WATER-led case)
  case 16  URBAN  case voided (its work withdrawn)            not due

Grid A: due 8, closed 4, closed on time 3, handled 6, handled on time 5, reworked 1.
Score A = 10 % × 100 (busiest) + 30 % × 4/8 + 30 % × 5/8 + 30 % × (1 − 1/8) = 10 + 15 + 18.75 + 26.25 = 70 → C.
Score B = 10 % × 2/8 × 100 + 30 + 30 + 30 = 92.5 → A; score E = 1.25 + 90 = 91.25 → A. Ranks B 1, E 2, A 3.

By department (work = due + assist_due; the busiest is GRID_CHIEF's 8):
  WATER   leads 13, 14 (due, on time), 16 (voided); assists 1 (due, on time), 9 (not due): work 3,
          处置率 = 按期处置率 = 3/3, 结案率 2/2, 返工率 0: 10 % × 3/8 × 100 + 30 + 30 + 30 = 93.75 → A
  URBAN   assists only: 6 rows, 4 due (1, 3, 10, 13), 2 handled (1 late, 13 on time): 处置率 0.5,
          按期处置率 0.25, no 结案率 or 返工率: (10 % × 4/8 × 100 + 30 % × 25) / 40 % = 31.25 → E
  ENFORCE 1.25 + 90 = 91.25 → A; GRID_CHIEF 70 → C. Ranks WATER, ENFORCE, GRID_CHIEF, URBAN.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from spatial.access.principal import Principal
from spatial.cases.kpi import KpiQuery, evaluate, grade, score
from spatial.cases.schemas import LOCAL
from spatial.errors import ForbiddenError, InvalidParameterError
from spatial.store.models.cases import EVENT_KINDS
from tests.world import DISTRICT, fresh_accounts, grid_code

START = datetime(2026, 3, 1, tzinfo=LOCAL)
END = datetime(2026, 4, 1, tzinfo=LOCAL)
GRID_A, GRID_B, GRID_E = grid_code(1, 1, 1), grid_code(1, 1, 2), grid_code(2, 1, 1)
PLACES = {GRID_A: "POINT(120.02 31.15)", GRID_B: "POINT(120.07 31.15)", GRID_E: "POINT(120.22 31.12)"}
SCENIC = f"{DISTRICT}S0001"
ADMIN = Principal(0, "kpi.admin", "admin", "*")
PASSWORD = "a long enough password"
ACCOUNTS = {
    "kpi.town1": ("dispatcher", f"{DISTRICT}001"),
    "kpi.community": ("viewer", f"{DISTRICT}001001"),
    "kpi.water": ("handler", "WATER"),
    "kpi.urban": ("handler", "URBAN"),
    "kpi.scenic": ("grid_chief", SCENIC),
}


# A closed case moved back to dispatch: the workflow's ``reopen`` (issue 17) once its migration is in.
REOPEN = "reopen" if "reopen" in EVENT_KINDS else "return"


def day(n: float) -> datetime:
    """A moment ``n`` days into the period."""
    return START + timedelta(days=n)


def _loop(t: float, handled: float, closed: float | None = None) -> list[tuple[str, float, str | None]]:
    """Register and dispatch at ``t``, handle at ``handled``, check and close at ``closed`` (if given)."""
    steps: list[tuple[str, float, str | None]] = [("register", t + 0.01, "registered"),
                                                  ("dispatch", t + 0.02, "dispatched"),
                                                  ("handle", handled, "handled")]
    if closed is not None:
        steps += [("check", closed - 0.01, None), ("close", closed, "closed"), ("evaluate", closed + 0.1, None)]
    return steps


def _dispatched(t: float) -> list[tuple[str, float, str | None]]:
    return [("register", t + 0.01, "registered"), ("dispatch", t + 0.02, "dispatched")]


# (case id, grid, owner, reported (day), deadline (day), events (kind, day, state after))
HISTORY: list[tuple[int, str, str, float, float, list[tuple[str, float, str | None]]]] = [
    (1, GRID_A, "GRID_CHIEF", 1, 4, _loop(1, 2, 3)),
    (2, GRID_A, "GRID_CHIEF", 2, 5, _loop(2, 3, 4)),
    (3, GRID_A, "GRID_CHIEF", 3, 4, _loop(3, 5, 6)),
    (4, GRID_A, "GRID_CHIEF", 4, 10, [*_loop(4, 5), ("check", 5.5, None), ("rework", 5.6, "dispatched"),
                                       ("handle", 7, "handled"), ("check", 7.5, None), ("close", 8, "closed")]),
    (5, GRID_A, "GRID_CHIEF", 5, 8, _loop(5, 6)),
    (6, GRID_A, "GRID_CHIEF", 6, 8, _dispatched(6)),
    (7, GRID_A, "GRID_CHIEF", 29, 33, _dispatched(29)),
    (8, GRID_A, "GRID_CHIEF", 7, 9, [("void", 7.1, "voided")]),
    (9, GRID_A, "GRID_CHIEF", 8, 10, [*_dispatched(8), ("suspend", 9, "suspended")]),
    (10, GRID_A, "GRID_CHIEF", 20, 25, _loop(20, 24, 32)),
    (11, GRID_A, "GRID_CHIEF", -5, -1, _loop(-5, -4, -3)),
    (12, GRID_A, "GRID_CHIEF", 10, 14, [*_loop(10, 11, 12), (REOPEN, 13, "registered")]),
    (13, GRID_B, "WATER", 2, 6, _loop(2, 3, 4)),
    (14, GRID_B, "WATER", 12, 16, _loop(12, 13, 14)),
    (15, GRID_E, "ENFORCE", 3, 9, _loop(3, 5, 6)),
    (16, GRID_B, "WATER", 15, 18, [*_dispatched(15), ("return", 15.3, "registered"), ("void", 15.5, "voided")]),
]
# (case id, assisting unit, its deadline (day), accepted (day), handled (day)); dispatched with the case.
ASSISTS: list[tuple[int, str, float, float | None, float | None]] = [
    (1, "WATER", 2.5, 1.5, 2.2), (1, "URBAN", 2.5, 1.5, 2.8), (3, "URBAN", 4, 3.5, None),
    (7, "URBAN", 35, None, None), (9, "WATER", 8.5, None, None), (10, "URBAN", 30, 21, 33),
    (13, "URBAN", 5, 2.5, 3), (16, "URBAN", 16, None, None),
]


def assist_events(case_id: int) -> list[tuple[str, float, str | None, dict]]:
    """The assisting units' own events of a case (kind, day, state after, data)."""
    events = []
    for case, unit, _, accepted, handled in ASSISTS:
        for kind, at in (("assist_accept", accepted), ("assist_handle", handled)):
            if case == case_id and at is not None:
                events.append((kind, at, None, {"unit": unit}))
    return events


def insert_history(conn: Connection) -> None:
    """Store ``HISTORY`` and ``ASSISTS`` (cases with their report event and trail, the dispatch naming the
    assisting units, their ``case_unit`` rows; the caller commits or rolls back)."""
    for case_id, grid, owner, reported, deadline, events in HISTORY:
        trail = [("report", reported, "reported", None), *((k, at, st, None) for k, at, st in events),
                 *assist_events(case_id)]
        final = next((s for _, at, s, _ in sorted(trail, key=lambda e: e[1], reverse=True) if s), "reported")
        units = [(u, d, a, h) for c, u, d, a, h in ASSISTS if c == case_id]
        conn.execute(text(
            'INSERT INTO "case" (id, case_no, category_code, state, source, location, grid_code, community_code,'
            " town_code, district_code, special_grid_codes, grid_version_id, owner_key, deadline, reported_at,"
            " assist_keys)"
            " VALUES (:id, :no, 'E010101', :state, 'inspector', ST_GeomFromText(:wkt, 4326), :grid, :community,"
            " :town, :district, :specials, 1, :owner, :deadline, :reported, :assists)"),
            {"id": case_id, "no": f"KPI{case_id:05d}", "state": final, "wkt": PLACES[grid], "grid": grid,
             "community": grid[:12], "town": grid[:9], "district": grid[:6],
             "specials": [SCENIC] if grid == GRID_E else [], "owner": owner, "deadline": day(deadline),
             "reported": day(reported), "assists": sorted(u for u, *_ in units)})
        dispatched = min((at for kind, at, *_ in trail if kind == "dispatch"), default=None)
        for kind, at, state, data in trail:
            if kind == "dispatch" and at == dispatched and units:
                data = {"assist": [{"key": u, "area": None, "deadline": day(d).isoformat()} for u, d, *_ in units]}
            conn.execute(text("INSERT INTO case_event (case_id, at, kind, state_after, actor, data)"
                              " VALUES (:c, :at, :kind, :state, 'test', CAST(:data AS jsonb))"),
                         {"c": case_id, "at": day(at), "kind": kind, "state": state,
                          "data": json.dumps(data) if data else None})
        for unit, deadline_day, accepted, handled in units:
            state = "handled" if handled else "accepted" if accepted else "dispatched"
            conn.execute(text(
                "INSERT INTO case_unit (case_id, unit_key, role, state, deadline, dispatched_at, accepted_at,"
                " handled_at, reported_at) VALUES (:c, :u, 'assist', :state, :d, :at, :accepted, :handled,"
                " gridlink_case_month(:c))"),
                {"c": case_id, "u": unit, "state": "withdrawn" if final == "voided" and not handled else state,
                 "d": day(deadline_day), "at": day(dispatched or 0), "accepted": accepted and day(accepted),
                 "handled": handled and day(handled)})


@pytest.fixture
def history(world: Connection) -> Connection:
    """The world with ``HISTORY`` stored, rolled back afterwards."""
    world.execute(text('TRUNCATE case_photo, case_unit, case_event, "case" RESTART IDENTITY'))
    insert_history(world)
    return world


def _by_key(report: dict) -> dict[str, dict]:
    return {g["key"]: g for g in report["groups"]}


def test_every_formula_on_the_known_history(history: Connection) -> None:
    a = _by_key(evaluate(history, KpiQuery("grid", START, END), by=ADMIN))[GRID_A]
    assert {k: a[k] for k in ("reported", "registered", "voided", "suspended", "due", "closed", "closed_on_time",
                              "handled", "handled_on_time", "reworked")} == {
        "reported": 11, "registered": 10, "voided": 1, "suspended": 1, "due": 8, "closed": 4, "closed_on_time": 3,
        "handled": 6, "handled_on_time": 5, "reworked": 1}
    assert (a["closure_rate"], a["on_time_closure_rate"], a["handling_rate"], a["on_time_handling_rate"],
            a["rework_rate"]) == (0.5, 0.375, 0.75, 0.625, 0.125)
    assert (a["score"], a["grade"]) == (70.0, "C")


def test_scores_grades_and_ranks(history: Connection) -> None:
    report = evaluate(history, KpiQuery("grid", START, END), by=ADMIN)
    assert [(g["key"], g["score"], g["grade"], g["rank"]) for g in report["groups"]] == [
        (GRID_B, 92.5, "A", 1), (GRID_E, 91.25, "A", 2), (GRID_A, 70.0, "C", 3)]
    community = _by_key(evaluate(history, KpiQuery("community", START, END), by=ADMIN))[GRID_A[:12]]
    # due 10, closed 6, handled on time 7, reworked 1: 10 + 18 + 21 + 27.
    assert (community["due"], community["score"], community["grade"], community["name"]) == (
        10, 76.0, "B", "测试1-1社区")


def test_departments_and_the_721_split(history: Connection) -> None:
    report = evaluate(history, KpiQuery("department", START, END), by=ADMIN)
    units = _by_key(report)
    assert set(units) == {"GRID_CHIEF", "WATER", "ENFORCE", "URBAN"}
    assert (units["WATER"]["name"], units["WATER"]["due"], units["WATER"]["grade"]) == ("水务局(水务集团)", 2, "A")
    assert units["GRID_CHIEF"]["name"] == "网格长"
    assert report["totals"]["split"] == {"grid": {"cases": 4, "share": round(4 / 7, 4)},
                                         "department": {"cases": 2, "share": round(2 / 7, 4)},
                                         "enforcement": {"cases": 1, "share": round(1 / 7, 4)}}
    assert units["ENFORCE"]["split"]["enforcement"]["cases"] == 1
    district = evaluate(history, KpiQuery("district", START, END), by=ADMIN)
    assert [(g["key"], g["due"], g["closed"]) for g in district["groups"]] == [(DISTRICT, 11, 7)]
    assert district["totals"]["closure_rate"] == round(7 / 11, 4)


ASSIST_FIGURES = ("assisting", "assist_due", "assist_handled", "assist_handled_on_time")


def test_every_unit_is_counted_by_department(history: Connection) -> None:
    units = _by_key(evaluate(history, KpiQuery("department", START, END), by=ADMIN))
    water, urban = units["WATER"], units["URBAN"]
    assert {k: water[k] for k in ("reported", "voided", "due", "closed", "handled_on_time", *ASSIST_FIGURES)} == {
        "reported": 3, "voided": 1, "due": 2, "closed": 2, "handled_on_time": 2,
        "assisting": 2, "assist_due": 1, "assist_handled": 1, "assist_handled_on_time": 1}
    assert (water["handling_rate"], water["on_time_handling_rate"], water["closure_rate"], water["rework_rate"],
            water["score"], water["grade"]) == (1.0, 1.0, 1.0, 0.0, 93.75, "A")
    assert {k: urban[k] for k in ("reported", "due", "closed", "reworked", *ASSIST_FIGURES)} == {
        "reported": 0, "due": 0, "closed": 0, "reworked": 0,
        "assisting": 6, "assist_due": 4, "assist_handled": 2, "assist_handled_on_time": 1}
    # Closure and rework belong to the lead: an assisting unit has neither rate; the split is the lead's.
    assert (urban["handling_rate"], urban["on_time_handling_rate"], urban["closure_rate"], urban["rework_rate"],
            urban["score"], urban["grade"]) == (0.5, 0.25, None, None, 31.25, "E")
    assert urban["split"]["department"]["cases"] == 0
    assert [(key, units[key]["rank"]) for key in ("WATER", "ENFORCE", "GRID_CHIEF", "URBAN")] == [
        ("WATER", 1), ("ENFORCE", 2), ("GRID_CHIEF", 3), ("URBAN", 4)]
    assert units["GRID_CHIEF"]["score"] == 70.0 and units["ENFORCE"]["score"] == 91.25  # busiest still 8
    # Case 10's assisting unit fed back on day 33 (late): counted handled from then on, never on time.
    later = _by_key(evaluate(history, KpiQuery("department", START, day(34)), by=ADMIN))["URBAN"]
    assert {k: later[k] for k in ASSIST_FIGURES} == {
        "assisting": 6, "assist_due": 4, "assist_handled": 3, "assist_handled_on_time": 1}
    # Area groups count the cases (the lead's work): no assisting rows.
    grid_a = _by_key(evaluate(history, KpiQuery("grid", START, END), by=ADMIN))[GRID_A]
    assert {k: grid_a[k] for k in ASSIST_FIGURES} == dict.fromkeys(ASSIST_FIGURES, 0)


def test_an_assisting_unit_sees_its_own_row(history: Connection) -> None:
    urban = Principal(3, "u", "handler", "URBAN")
    report = evaluate(history, KpiQuery("department", START, END), by=urban)
    assert [(g["key"], g["assisting"], g["assist_due"], g["reported"]) for g in report["groups"]] == [
        ("URBAN", 6, 4, 0)]
    assert evaluate(history, KpiQuery("grid", START, END), by=urban)["groups"] == []  # it leads no case
    water = Principal(2, "w", "handler", "WATER")
    rows = evaluate(history, KpiQuery("department", START, END), by=water)["groups"]
    assert [(g["key"], g["reported"], g["assisting"]) for g in rows] == [("WATER", 3, 2)]
    # Its assisted cases stay out of its area groups (they are the lead's work).
    assert [(g["key"], g["reported"]) for g in evaluate(history, KpiQuery("grid", START, END), by=water)["groups"]
            ] == [(GRID_B, 3)]


def test_the_period_judges_cases_as_they_stood_at_its_end(history: Connection) -> None:
    # Case 10 closes on day 32: in April it counts as closed; in March it stood handled.
    april = _by_key(evaluate(history, KpiQuery("grid", START, day(32.5)), by=ADMIN))[GRID_A]
    assert (april["closed"], april["closed_on_time"], april["handled"]) == (5, 3, 6)
    # Only case 11 was reported in February.
    february = _by_key(evaluate(history, KpiQuery("grid", day(-28), START), by=ADMIN))[GRID_A]
    assert (february["reported"], february["due"], february["closed_on_time"]) == (1, 1, 1)
    assert evaluate(history, KpiQuery("grid", day(40), day(50)), by=ADMIN)["groups"] == []


@pytest.mark.parametrize(("value", "letter"), [
    (100.0, "A"), (90.0, "A"), (89.99, "B"), (75.0, "B"), (74.99, "C"), (60.0, "C"), (59.99, "D"), (40.0, "D"),
    (39.99, "E"), (0.0, "E"), (None, None)])
def test_grade_boundaries(value: float | None, letter: str | None) -> None:
    assert grade(value) == letter


def test_score_weights() -> None:
    counts = {"due": 10, "closed": 10, "handled_on_time": 10, "reworked": 0}
    assert score(counts, busiest=10) == 100.0
    assert score(counts, busiest=20) == 95.0  # half the busiest unit's load: 10 % × 50
    assert score({**counts, "closed": 0}, busiest=10) == 70.0
    assert score({**counts, "handled_on_time": 0}, busiest=10) == 70.0
    assert score({**counts, "reworked": 10}, busiest=10) == 70.0
    assert score({**counts, "due": 0}, busiest=10) is None


@pytest.mark.parametrize(("query", "error"), [
    (KpiQuery("street", START, END), InvalidParameterError),
    (KpiQuery("grid", END, START), InvalidParameterError),
    (KpiQuery("grid", START, START), InvalidParameterError),
    (KpiQuery("grid", START, START + timedelta(days=401)), InvalidParameterError),
    (KpiQuery("grid", START, END, area="12345"), InvalidParameterError),
])
def test_bad_queries_are_refused(world: Connection, query: KpiQuery, error: type) -> None:
    with pytest.raises(error):
        evaluate(world, query, by=ADMIN)


def test_area_scopes_cannot_reach_out(world: Connection) -> None:
    town = Principal(1, "t", "dispatcher", f"{DISTRICT}001")
    with pytest.raises(ForbiddenError):
        evaluate(world, KpiQuery("district", START, END), by=town)
    with pytest.raises(ForbiddenError):
        evaluate(world, KpiQuery("grid", START, END, area=f"{DISTRICT}002"), by=town)


# -- over HTTP

@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


@pytest.fixture
def stored(client: TestClient, world_engine) -> TestClient:
    """The HTTP client over the world with ``HISTORY`` committed (``client`` empties the cases first)."""
    with world_engine.begin() as conn:
        insert_history(conn)
    return client


PERIOD = {"from": "2026-03-01", "to": "2026-04-01"}


def _get(client: TestClient, token: str | None = None, **params) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return client.get("/api/v1/kpi", params={**PERIOD, **params}, headers=headers)


def test_http_json_matches_the_domain(stored: TestClient) -> None:
    reply = _get(stored, group="grid")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [(g["key"], g["rank"], g["grade"]) for g in body["groups"]] == [
        (GRID_B, 1, "A"), (GRID_E, 2, "A"), (GRID_A, 3, "C")]
    assert body["from"] == "2026-02-28T16:00:00+00:00" and body["to"] == "2026-03-31T16:00:00+00:00"
    assert body["totals"]["due"] == 11


@pytest.mark.parametrize("how", [{"params": {"f": "csv"}}, {"headers": {"Accept": "text/csv"}}])
def test_http_csv(stored: TestClient, how: dict) -> None:
    reply = stored.get("/api/v1/kpi", params={**PERIOD, "group": "department", **how.get("params", {})},
                       headers=how.get("headers"))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(r["rank"], r["key"], r["grade"]) for r in rows] == [("1", "WATER", "A"), ("2", "ENFORCE", "A"),
                                                                ("3", "GRID_CHIEF", "C"), ("4", "URBAN", "E")]
    assert (rows[3]["assisting"], rows[3]["assist_due"], rows[3]["closure_rate"]) == ("6", "4", "")
    assert rows[2]["closure_rate"] == "0.5" and rows[2]["due"] == "8"


@pytest.mark.parametrize(("params", "status"), [
    ({"group": "street"}, 400), ({"group": "grid", "from": "2026-04-01", "to": "2026-03-01"}, 400),
    ({"group": "grid", "from": "2025-01-01"}, 400), ({"group": "grid", "area": "32050600"}, 400),
    ({"group": "grid", "f": "xml"}, 422), ({"group": "grid", "to": "yesterday"}, 422),
    ({"group": "grid", "from": "0001-01-01T00:00:00+14:00"}, 400),
])
def test_http_bad_parameters_are_problems(stored: TestClient, params: dict, status: int) -> None:
    reply = _get(stored, **params)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"


def test_http_needs_an_account(stored: TestClient) -> None:
    reply = stored.get("/api/v1/kpi", params={**PERIOD, "group": "grid"}, headers={"Authorization": ""})
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("login", "group", "area", "keys"), [
    ("kpi.town1", "grid", None, {GRID_A, GRID_B}),
    ("kpi.town1", "town", None, {GRID_A[:9]}),
    ("kpi.town1", "department", None, {"GRID_CHIEF", "WATER", "URBAN"}),
    ("kpi.town1", "grid", GRID_B[:12], {GRID_A, GRID_B}),
    ("kpi.community", "grid", GRID_B, {GRID_B}),
    ("kpi.water", "department", None, {"WATER"}),
    ("kpi.water", "grid", None, {GRID_B}),
    ("kpi.urban", "department", None, {"URBAN"}),
    ("kpi.urban", "grid", None, set()),
    ("kpi.scenic", "grid", None, {GRID_E}),
])
def test_http_groups_stay_inside_the_scope(stored: TestClient, tokens, login, group, area, keys) -> None:
    params = {"group": group} | ({"area": area} if area else {})
    reply = _get(stored, tokens[login], **params)
    assert reply.status_code == 200, reply.text
    assert {g["key"] for g in reply.json()["groups"]} == keys


@pytest.mark.parametrize(("login", "params"), [
    ("kpi.town1", {"group": "district"}),
    ("kpi.town1", {"group": "grid", "area": f"{DISTRICT}002"}),
    ("kpi.community", {"group": "town"}),
    ("kpi.community", {"group": "grid", "area": grid_code(1, 2, 1)}),
    ("kpi.scenic", {"group": "grid", "area": GRID_E}),
])
def test_http_outside_the_scope_is_403(stored: TestClient, tokens, login, params) -> None:
    reply = _get(stored, tokens[login], **params)
    assert reply.status_code == 403, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
