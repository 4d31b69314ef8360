"""The town's printable monthly report (``GET /api/v1/kpi/report``, ``gridlink report town``) and the dashboard's
heat map (``GET /api/v1/kpi/heat``), issue 21 item 3, on test_kpi.py's known-answer history: the report's tables
are ``GET /api/v1/kpi``'s figures for the same month and town; its map colours each base grid by its grade; it
names nothing outside gridlink (offline, no CDN) and its policy allows exactly the inline code folium wrote;
scope: a town's dispatcher gets another town's report as 403 problem+json, unknown towns 404, bad months 400,
no account 401; the heat map counts what the evaluation counts, inside the same scope."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api import cli
from tests.integration.test_kpi import ACCOUNTS, GRID_A, GRID_B, GRID_E, PASSWORD, insert_history
from tests.world import DISTRICT, fresh_accounts

TOWN1, TOWN2 = f"{DISTRICT}001", f"{DISTRICT}002"
ONLY_ASSISTED_BY_WATER = 2  # test_kpi.ASSISTS: cases 1 and 9 (led by the grid chief), both reported in March
MARCH = {"town": TOWN1, "month": "2026-03"}
ROW = re.compile(r'<tr data-key="([^"]+)"><td>([^<]*)</td><td>[^<]*</td><td>[^<]*</td>\s*'
                 r'<td class="kr-grade" data-grade="([A-E]?)">')


@pytest.fixture(scope="module")
def tokens(world_engine) -> dict[str, str]:
    """A bearer token for each account of test_kpi.py's ``ACCOUNTS``."""
    return fresh_accounts(world_engine, ACCOUNTS, PASSWORD)


@pytest.fixture
def stored(client: TestClient, world_engine) -> TestClient:
    """The HTTP client over the world with the known history committed (``client`` empties the cases first)."""
    with world_engine.begin() as conn:
        insert_history(conn)
    return client


def _report(client: TestClient, token: str | None = None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return client.get("/api/v1/kpi/report", params={**MARCH, **params}, headers=headers)


def _table(page: str, table_id: str) -> list[tuple[str, str, str]]:
    """(key, rank, grade) of each row of one of the report's tables."""
    body = page[page.index(f'id="{table_id}"'):]
    body = body[:body.index("</table>")]
    return ROW.findall(body)


def test_the_report_shows_the_evaluation_of_the_month(stored: TestClient) -> None:
    reply = _report(stored)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/html")
    page = reply.text
    for group, table in (("grid", "kr-grids"), ("community", "kr-communities")):
        api = stored.get("/api/v1/kpi", params={"group": group, "area": TOWN1, "from": "2026-03-01",
                                                "to": "2026-04-01"}).json()
        expected = [(g["key"], str(g["rank"]) if g["rank"] else "—", g["grade"] or "") for g in api["groups"]]
        assert _table(page, table) == expected
    assert [key for key, _, _ in _table(page, "kr-grids")] == [GRID_B, GRID_A]  # test_kpi: B is A, A is C
    totals = stored.get("/api/v1/kpi", params={"group": "grid", "area": TOWN1, "from": "2026-03-01",
                                               "to": "2026-04-01"}).json()["totals"]
    assert f'<dd data-field="due">{totals["due"]}</dd>' in page
    assert f'<dd data-field="reported">{totals["reported"]}</dd>' in page
    assert GRID_E not in page  # another town's grid is neither drawn nor listed


def test_the_map_colours_each_grid_by_its_grade(stored: TestClient) -> None:
    page = _report(stored).text
    assert 'L.geoJson(' in page and 'fitBounds(' in page
    # The page reads top to bottom: totals, the map, the tables (each table on a page of its own when printed).
    assert page.index('id="kr-totals"') < page.index('class="folium-map"') < page.index('id="kr-grids"')
    # folium writes each feature's style into a switch on its id: B is graded A (green), A is C (yellow); the
    # town's other base grids (nothing due) take the default, grey.
    assert re.search(rf'case "{GRID_B}":\s*return {{[^}}]*"fillColor": "#1a9850"', page)
    assert re.search(rf'case "{GRID_A}":\s*return {{[^}}]*"fillColor": "#fee08b"', page)
    assert re.search(r'default:\s*return {[^}]*"fillColor": "#d9d9d9"', page)
    assert '"name"' not in page.split("<script>")[-1]  # names stay out of the script
    drawn = re.findall(r'"id": "(\d{15})"', page.split("<script>")[-1])
    assert GRID_A in drawn and GRID_B in drawn and all(code.startswith(TOWN1) for code in drawn)


def test_the_report_is_offline_and_its_policy_names_its_inline_code(stored: TestClient) -> None:
    reply = _report(stored)
    page, policy = reply.text, reply.headers["content-security-policy"]
    assert not re.search(r'(?:src|href)="(?!/static/)', page), "the page loads something from outside /static"
    assert "https://" not in policy and "http://" not in policy and "unsafe" not in policy
    for kind, body in re.findall(r"<(script|style)>(.*?)</\1>", page, re.S):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy.split(f"{kind}-src")[1].split(";")[0]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert stored.get(asset).status_code == 200, asset
    assert "@page" in stored.get("/static/dashboard/report.css").text


def test_names_are_text_in_the_page_and_absent_from_its_script() -> None:
    from datetime import datetime

    from spatial.cases.schemas import LOCAL
    from web.report import render_town_report

    evil = '</title><script>alert(1)</script>'
    group = {"key": GRID_A, "name": evil, "rank": 1, "grade": "A", "score": 95.0, "reported": 1, "due": 1,
             "closed": 1, "closure_rate": 1.0, "on_time_closure_rate": 1.0, "on_time_handling_rate": 1.0,
             "rework_rate": 0.0}
    split = {w: {"cases": 0, "share": None} for w in ("grid", "department", "enforcement")}
    totals = {**{k: v for k, v in group.items() if k not in ("key", "name")}, "handling_rate": 1.0, "split": split}
    shape = {"type": "Feature", "id": GRID_A, "properties": {"code": GRID_A, "name": evil},
             "geometry": {"type": "Polygon", "coordinates": [[[120, 31], [120.01, 31], [120.01, 31.01], [120, 31]]]}}
    page = render_town_report({
        "town": {"code": TOWN1, "name": evil}, "month": "2026-03", "from": datetime(2026, 3, 1, tzinfo=LOCAL),
        "to": datetime(2026, 4, 1, tzinfo=LOCAL), "scope": "*", "grids": {"groups": [group], "totals": totals},
        "communities": {"groups": [], "totals": totals},
        "shapes": {"type": "FeatureCollection", "features": [shape]}})
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert page.count("<title>") == 1
    assert "alert(1)" not in page[page.rindex("<script>"):]  # the map's script holds codes and grades only


@pytest.mark.parametrize(("login", "town", "status"), [
    ("kpi.town1", TOWN2, 403),       # a town's dispatcher asks for another town
    ("kpi.community", TOWN1, 403),   # a community's viewer asks for its whole town
    ("kpi.scenic", TOWN1, 403),      # a special grid's chief
    ("kpi.town1", TOWN1, 200),
    ("kpi.water", TOWN1, 200),       # a unit reads the cases it leads in the town
])
def test_the_report_stays_inside_the_scope(stored: TestClient, tokens, login, town, status) -> None:
    reply = _report(stored, tokens[login], town=town)
    assert reply.status_code == status, reply.text
    if status != 200:
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["status"] == status


def test_a_unit_sees_only_the_grids_of_its_own_cases(stored: TestClient, tokens) -> None:
    page = _report(stored, tokens["kpi.water"]).text
    assert [key for key, _, _ in _table(page, "kr-grids")] == [GRID_B]  # test_kpi: WATER leads cases in B only


@pytest.mark.parametrize(("params", "status"), [
    ({"town": f"{DISTRICT}009"}, 404), ({"month": "2026-13"}, 400), ({"month": "March"}, 400),
    ({"town": "32"}, 400), ({"month": "2026-03-01"}, 422), ({"town": TOWN1 + "0"}, 422),
])
def test_bad_reports_are_problems(stored: TestClient, params: dict, status: int) -> None:
    reply = _report(stored, **params)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"


def test_the_report_needs_an_account(stored: TestClient) -> None:
    reply = stored.get("/api/v1/kpi/report", params=MARCH, headers={"Authorization": ""})
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"


def test_the_command_line_writes_the_same_page(stored: TestClient, world_engine, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", world_engine.url.render_as_string(hide_password=False))
    out = tmp_path / "march.html"
    assert cli.main(["report", "town", TOWN1, "--month", "2026-03", "--out", str(out)]) == cli.EXIT_OK
    written = out.read_text(encoding="utf-8")
    assert _table(written, "kr-grids") == _table(_report(stored).text, "kr-grids")
    assert cli.main(["report", "town", TOWN2, "--month", "2026-03", "--out", str(out), "--as", "kpi.town1"]) \
        == cli.EXIT_REFUSED
    assert cli.main(["report", "town", TOWN1, "--month", "2026-3", "--out", str(out)]) == cli.EXIT_REFUSED


def test_the_heat_map_counts_what_the_evaluation_counts(stored: TestClient, tokens) -> None:
    period = {"from": "2026-03-01", "to": "2026-04-01"}
    for token, group in ((None, "district"), (tokens["kpi.town1"], "grid"), (tokens["kpi.water"], "department")):
        headers = {"Authorization": f"Bearer {token}"} if token else None
        heat = stored.get("/api/v1/kpi/heat", params={**period, "group": group}, headers=headers)
        assert heat.status_code == 200, heat.text
        assert heat.headers["content-type"] == "application/geo+json"
        kpi = stored.get("/api/v1/kpi", params={**period, "group": group}, headers=headers).json()
        cells = heat.json()["features"]
        assert sum(f["properties"]["n"] for f in cells) == heat.json()["cases"]
        if group == "department":  # the cases the unit leads (``reported``) and those it only assists
            assert heat.json()["cases"] == kpi["totals"]["reported"] + ONLY_ASSISTED_BY_WATER
        else:
            assert heat.json()["cases"] == kpi["totals"]["reported"] > 0
        assert all(-180 <= f["geometry"]["coordinates"][0] <= 180 for f in cells)
    outside = stored.get("/api/v1/kpi/heat", params={**period, "group": "grid", "area": TOWN2},
                         headers={"Authorization": f"Bearer {tokens['kpi.town1']}"})
    assert outside.status_code == 403
    assert outside.headers["content-type"] == "application/problem+json"


def test_a_heat_map_over_its_time_budget_is_a_503_problem(world_engine) -> None:
    """A statement waiting for a lock counts against ``statement_timeout`` like one that computes: with the case
    table locked by another transaction, the heat map's statement is cancelled and refused, not a 500."""
    from datetime import datetime

    from spatial.access.principal import Principal
    from spatial.cases.kpi import KpiQuery
    from spatial.cases.kpi_report import case_heat
    from spatial.cases.schemas import LOCAL
    from spatial.errors import QueryBudgetError

    with world_engine.connect() as locker, world_engine.connect() as conn:
        locker.execute(text('LOCK TABLE "case" IN ACCESS EXCLUSIVE MODE'))
        conn.execute(text("SET LOCAL statement_timeout = 300"))
        with pytest.raises(QueryBudgetError) as refused:
            case_heat(conn, KpiQuery("town", datetime(2026, 3, 1, tzinfo=LOCAL), datetime(2026, 4, 1, tzinfo=LOCAL)),
                      by=Principal(0, "t", "admin", "*"))
        assert refused.value.status == 503
        locker.rollback()
