"""The evaluation dashboard (/dashboard, issue 21 item 3) and a town's printable monthly report, in Chromium
against a live server on the small demo: the ranking table, the totals and the trends show the figures of
GET /api/v1/kpi for the same period, level and account (read from the cells, compared with the API's JSON),
for a district's viewer by town and a town viewer by grid over a custom period; sorting a column reorders the
rows; the heat map holds the cases GET /api/v1/kpi/heat counts; the monthly report opens with every origin but
the server's blocked, draws its grids with the pinned Leaflet and prints to A4 pages; screenshots at
1920 × 1080 in Chinese; axe-core finds no serious or critical violation. The page's scripts write no HTML and
name both languages' strings alike (checked without a browser)."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import text

from spatial.access.accounts import add_user
from tests.browser.conftest import PASSWORD, axe_violations, log_in, screenshot
from web.pages import STATIC_DIR

DASHBOARD = STATIC_DIR / "dashboard"
VIEWERS = {"district": ("b.dash.district", 6), "town": ("b.dash.town", 9)}  # scope: the busiest town's first digits
RATES = ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate", "rework_rate")
IDLE = """() => window.glDashboard.mapReady.then(m => new Promise(done => {
    if (m.loaded() && m.areTilesLoaded()) done(); else m.once('idle', done); }))"""
COLUMNS = ("rank", "name", "grade", "score", "reported", "due", "closed", "closure_rate", "on_time_closure_rate",
           "on_time_handling_rate", "rework_rate")


@pytest.fixture(scope="module")
def viewers(demo) -> dict[str, str]:
    """Two viewer accounts (read only): the district's and the busiest town's; made once, idempotently."""
    made = {}
    with demo.engine.begin() as conn:
        for name, (login, scope) in VIEWERS.items():
            if not conn.execute(text("SELECT 1 FROM account WHERE login = :l"), {"l": login}).first():
                add_user(conn, login, role="viewer", scope=demo.town[:scope], password=PASSWORD)
            made[name] = login
    return made


@pytest.fixture(scope="module")
def month(demo) -> str:
    """The demo's busiest month (Suzhou time), YYYY-MM."""
    with demo.engine.connect() as conn:
        return conn.execute(text(
            "SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') m FROM \"case\""
            " GROUP BY m ORDER BY count(*) DESC, m LIMIT 1")).scalar_one()


def _token(demo, login: str) -> dict[str, str]:
    reply = httpx.post(f"{demo.url}/api/v1/auth/token", data={"username": login, "password": PASSWORD})
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def _shown(field: str, value) -> str:
    """A figure as the dashboard writes it (static/dashboard/table.js: formatValue)."""
    if value is None:
        return "—"
    if field in RATES:
        return f"{value * 100:.2f}%"
    if field == "score":
        return f"{value:.2f}"
    return str(value)


def _open(page, demo, login: str, query: str) -> None:
    page.goto(f"{demo.url}/dashboard?{query}")
    page.wait_for_function("() => document.body.dataset.ready === 'shell'", timeout=30_000)
    assert page.is_visible("#db-anon") and page.is_hidden("#db-body")  # nothing to read before a login
    log_in(page, login)
    _wait_loaded(page)


def _wait_loaded(page, after: int = 0) -> None:
    """Wait until the latest choice is drawn (``loaded``: the number of the last evaluation shown whole)."""
    page.wait_for_function(f"() => Number(document.body.dataset.loaded || 0) > {after}"
                           " && Number(document.body.dataset.loaded) === window.glDashboard.loads", timeout=60_000)


def _table(page) -> list[dict[str, str]]:
    return page.eval_on_selector_all("#db-ranking tbody tr", """rows => rows.map(r => Object.fromEntries(
        [['key', r.dataset.key], ...[...r.querySelectorAll('[data-field]')].map(c => [c.dataset.field,
        c.textContent])]))""")


def _expected(groups: list[dict]) -> list[dict[str, str]]:
    return [{"key": g["key"], **{c: _shown(c, g[c]) for c in COLUMNS}} for g in groups]


def _compare(page, api: dict) -> None:
    rows = _table(page)
    assert rows, "the ranking table is empty"
    assert [{k: r[k] for k in ("key", *COLUMNS)} for r in rows] == _expected(api["groups"])
    totals = page.eval_on_selector_all("#db-totals dd", "ds => Object.fromEntries(ds.map(d => [d.dataset.field,"
                                       " d.textContent]))")
    assert totals == {k: _shown(k, api["totals"][k]) for k in totals} and len(totals) == 7


def test_the_dashboard_shows_the_figures_of_the_api(demo, page, viewers, month) -> None:
    _open(page, demo, viewers["district"], f"kind=month&month={month}&level=town")
    period = {"from": f"{month}-01", "to": _next_month(month)}
    headers = _token(demo, viewers["district"])
    api = httpx.get(f"{demo.url}/api/v1/kpi", params={"group": "town", **period}, headers=headers).json()
    _compare(page, api)
    assert page.text_content("#db-ranking-count") == f"共 {len(api['groups'])} 个"
    # The split's counts, the hot spots (grids) and the trend's last month are the same period's figures.
    split = page.eval_on_selector_all("#db-split li", "ls => ls.map(l => l.textContent)")
    assert [s.split(" ")[1] for s in split] == [str(api["totals"]["split"][w]["cases"])
                                                 for w in ("grid", "department", "enforcement")]
    trend = page.get_attribute("#db-trends svg:first-child", "aria-label")
    assert trend.endswith(f"{month[2:].replace('-', '/')}: {api['totals']['reported']}")
    grids = httpx.get(f"{demo.url}/api/v1/kpi", params={"group": "grid", **period}, headers=headers).json()
    worst = max(grids["groups"], key=lambda g: (g["reworked"], -int(g["key"])))
    if worst["reworked"]:
        assert page.get_attribute("#db-hot-rework li:first-child", "data-key") == worst["key"]
    heat = httpx.get(f"{demo.url}/api/v1/kpi/heat", params={"group": "town", **period}, headers=headers).json()
    assert heat["cases"] == api["totals"]["reported"]
    assert page.text_content("#db-heat-count") == f"{heat['cases']} 件"
    cells = page.evaluate("() => window.glDashboard.mapReady.then(m => m.getSource('heat').serialize().data"
                          ".features.length)")
    assert cells == len(heat["features"]) > 0
    # Every town row links to its printable report of the month.
    links = page.eval_on_selector_all("#db-ranking tbody a", "as => as.map(a => a.getAttribute('href'))")
    assert links == [f"/api/v1/kpi/report?town={g['key']}&month={month}" for g in api["groups"]]
    page.evaluate(IDLE)
    screenshot(page, "dashboard-1920x1080")
    assert axe_violations(page) == []
    assert page.errors.unexpected() == []


def test_a_town_viewer_ranks_its_grids_over_a_custom_period_and_sorts(demo, page, viewers, month) -> None:
    query = f"kind=custom&from={month}-05&to={month}-24&level=grid"
    _open(page, demo, viewers["town"], query)
    api = httpx.get(f"{demo.url}/api/v1/kpi", params={"group": "grid", "from": f"{month}-05", "to": f"{month}-25"},
                    headers=_token(demo, viewers["town"])).json()
    _compare(page, api)
    assert all(g["key"].startswith(demo.town) for g in api["groups"])
    assert page.locator("#db-ranking tbody a").count() == 0  # reports are monthly and by town
    # Sorting: by score, best first; again, worst first (groups with nothing due stay last).
    page.click("#db-ranking th[data-field='score'] button")
    scores = [r["score"] for r in _table(page)]
    scored = [float(s) for s in scores if s != "—"]
    assert scored == sorted(scored, reverse=True) and scores[len(scored):] == ["—"] * (len(scores) - len(scored))
    assert page.get_attribute("#db-ranking th[data-field='score']", "aria-sort") == "descending"
    page.click("#db-ranking th[data-field='score'] button")
    assert [float(r["score"]) for r in _table(page) if r["score"] != "—"] == sorted(scored)
    page.click("#db-ranking th[data-field='key'] button")
    assert [r["key"] for r in _table(page)] == sorted(g["key"] for g in api["groups"])
    # The form reads what the address asked for; English is a switch away, with the same figures.
    assert page.input_value("#db-kind") == "custom" and page.input_value("#db-level") == "grid"
    loaded = int(page.evaluate("document.body.dataset.loaded"))
    page.click("#gl-lang")
    _wait_loaded(page, loaded)
    assert page.text_content("#db-ranking th[data-field='grade'] button") == "Grade"
    _compare(page, api)
    page.click("#gl-lang")
    # A level coarser than the account's scope is the server's refusal, shown, not a blank page.
    loaded = int(page.evaluate("document.body.dataset.loaded"))
    page.select_option("#db-level", "town")
    page.click("#db-controls button[type=submit]")
    _wait_loaded(page, loaded)
    assert len(_table(page)) == 1 and _table(page)[0]["key"] == demo.town
    # Over a month, the town's own report is a link away (the scope names the town).
    assert page.is_hidden("#db-report")
    loaded = int(page.evaluate("document.body.dataset.loaded"))
    page.select_option("#db-kind", "month")
    page.fill("#db-month", month)
    page.click("#db-controls button[type=submit]")
    _wait_loaded(page, loaded)
    assert page.get_attribute("#db-report", "href") == f"/api/v1/kpi/report?town={demo.town}&month={month}"
    assert page.text_content("#db-period").endswith(f"数据范围 {demo.town}")


@pytest.mark.parametrize("kind", ["quarter", "year"])
def test_quarters_and_years_are_the_api_s_periods(demo, page, viewers, month, kind) -> None:
    year, number = map(int, month.split("-"))
    quarter = (number - 1) // 3 + 1
    period = ({"from": f"{year}-{3 * quarter - 2:02d}-01",
               "to": f"{year + quarter // 4}-{(3 * quarter) % 12 + 1:02d}-01"} if kind == "quarter"
              else {"from": f"{year}-01-01", "to": f"{year + 1}-01-01"})
    _open(page, demo, viewers["district"], f"kind={kind}&year={year}&quarter={quarter}&level=community")
    api = httpx.get(f"{demo.url}/api/v1/kpi", params={"group": "community", **period},
                    headers=_token(demo, viewers["district"])).json()
    _compare(page, api)
    assert page.text_content("#db-period").startswith(f"考核期 {period['from']} 至 ")
    csv = page.get_attribute("#db-csv", "href")
    assert csv == f"/api/v1/kpi?group=community&from={period['from']}&to={period['to']}&f=csv"


class Offline:
    """Aborts every request to another origin than the server's and records them."""

    def __init__(self, page, origin: str) -> None:
        self.origin, self.blocked = origin, []
        page.route("**/*", self._route)

    def _route(self, route) -> None:
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("internetdisconnected")


def test_the_monthly_report_opens_offline_and_prints(demo, page, viewers, month, tmp_path) -> None:
    offline = Offline(page, demo.url)
    _open(page, demo, viewers["district"], f"kind=month&month={month}&level=town")
    href = page.get_attribute(f"#db-ranking tbody tr[data-key='{demo.town}'] a", "href")
    page.goto(demo.url + href)
    page.wait_for_selector("path.leaflet-interactive", timeout=30_000)
    with demo.engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grid WHERE level = 4 AND code LIKE :t || '%'"),
                             {"t": demo.town}).scalar_one()
    assert page.locator("path.leaflet-interactive").count() == grids
    assert page.evaluate("typeof L") == "object" and page.evaluate("L.version") == "1.9.4"  # the pinned Leaflet
    api = httpx.get(f"{demo.url}/api/v1/kpi", params={"group": "grid", "area": demo.town, "from": f"{month}-01",
                                                     "to": _next_month(month)},
                    headers=_token(demo, viewers["district"])).json()
    rows = page.eval_on_selector_all("#kr-grids tbody tr[data-key]", "rs => rs.map(r => r.dataset.key)")
    assert rows == [g["key"] for g in api["groups"]]
    assert page.text_content("#kr-totals [data-field='due']") == str(api["totals"]["due"])
    # Drawn with nothing from outside: no request left the server, no policy violation, no error.
    assert offline.blocked == [] and page.errors.unexpected() == []
    screenshot(page, "dashboard-report")
    assert axe_violations(page) == []
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
    (tmp_path / "report.pdf").write_bytes(pdf)


def _next_month(month: str) -> str:
    y, m = map(int, month.split("-"))
    return f"{y + m // 12}-{m % 12 + 1:02d}-01"


# -- the page's files, without a browser

@pytest.mark.parametrize("path", sorted(DASHBOARD.glob("*.js")), ids=lambda p: p.name)
def test_scripts_never_write_html(path) -> None:
    js = path.read_text(encoding="utf-8")
    assert not re.search(r"(innerHTML|outerHTML)\s*=(?!=)|insertAdjacentHTML|document\.write|\beval\(", js)
    # No foreign origin: the one URL is SVG's namespace name (an identifier, never fetched).
    assert re.findall(r"https?://[^'\"\s]*", js) in ([], ["http://www.w3.org/2000/svg"])


def test_every_string_exists_in_chinese_and_english() -> None:
    js = (DASHBOARD / "strings.js").read_text(encoding="utf-8")
    zh, en = js.split("'zh-CN': {", 1)[1].split("\n  en: {", 1)
    en = en.split("\n  },", 1)[0]
    pairs = r"'?([\w-]+)'?:\s*'(?:[^'\\]|\\.)*'"
    keys = [set(re.findall(pairs, block)) for block in (zh, en)]
    assert keys[0] and keys[0] == keys[1], keys[0] ^ keys[1]
    used = set(re.findall(r'data-i18n(?:-aria-label)?="(\w+)"',
                          (STATIC_DIR.parent / "templates" / "dashboard.html").read_text(encoding="utf-8")))
    assert used and used <= keys[0], used - keys[0]
