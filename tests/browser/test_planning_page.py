"""The planner's grid editor (issue 21 items 2 and 4), driven in Chromium against a live server on the small demo:
a planner of the demo's busiest town draws a line across the shared boundary of two base grids by clicking the
map, reads the impact preview the server answered (the same numbers as ``GET /api/v1/plans/{id}/preview``),
commits it, and sees a moved component's new grid in the info panel (and in the database); the grids of the
day before are the old shapes; the plan is rolled back (other browser modules share the demo). A viewer reads
without planning tools; a planner of another town neither sees this town nor may touch its plans (the server
refuses). Screenshot planning-1920x1080; axe-core finds no serious violation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

import httpx
import pytest
from shapely import wkt
from shapely.geometry import shape
from sqlalchemy import text

from bench.planning import move_line
from spatial.access.accounts import add_user
from tests.browser.conftest import PASSWORD, axe_violations, log_in, screenshot

PLANNER, OTHER, VIEWER = "b.plan", "b.plan2", "b.view"


@pytest.fixture(scope="module")
def people(demo) -> dict[str, str]:
    """A planner of the demo's busiest town, a planner of another town, a viewer (idempotent)."""
    with demo.engine.begin() as conn:
        other = conn.execute(text("SELECT code FROM grid WHERE level = 2 AND code <> :t ORDER BY code LIMIT 1"),
                             {"t": demo.town}).scalar_one()
        for login, role, scope in ((PLANNER, "planner", demo.town), (OTHER, "planner", other),
                                   (VIEWER, "viewer", demo.town)):
            if not conn.execute(text("SELECT 1 FROM account WHERE login = :l"), {"l": login}).first():
                add_user(conn, login, role=role, scope=scope, password=PASSWORD)
    return {"other_town": other}


def _token(demo, login: str) -> dict[str, str]:
    reply = httpx.post(f"{demo.url}/api/v1/auth/token", data={"username": login, "password": PASSWORD})
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def _boundary_move(demo) -> tuple[str, str, list[list[float]]]:
    """The town's base grid with the most components, its longest-border sibling, and a line cutting about half
    of the grid off towards it, its ends a little beyond the shared border (so that the line crosses the grid)."""
    with demo.engine.connect() as conn:
        codes = conn.execute(text(
            "SELECT g.code FROM grid g LEFT JOIN component c ON c.grid_code = g.code WHERE g.level = 4"
            " AND g.retired_at IS NULL AND g.code LIKE :t || '%' GROUP BY g.code ORDER BY count(c.code) DESC, g.code"
            " LIMIT 5"), {"t": demo.town}).scalars().all()
        for code in codes:
            found = move_line(conn, code)
            if found is not None:
                (a, bend, b), neighbour = found[0]["coordinates"], found[1]
                out = [[a[0] + 0.15 * (a[0] - bend[0]), a[1] + 0.15 * (a[1] - bend[1])], list(bend),
                       [b[0] + 0.15 * (b[0] - bend[0]), b[1] + 0.15 * (b[1] - bend[1])]]
                return code, neighbour, out
    raise AssertionError(f"no base grid of {demo.town} with a sibling")


def _open(page, demo, login: str) -> None:
    page.goto(f"{demo.url}/planning")
    page.wait_for_function("() => document.body.dataset.ready === 'map'", timeout=30_000)
    page.wait_for_function("() => Number(document.body.dataset.gridsLoaded || 0) > 0", timeout=30_000)
    seen = _loads(page)
    log_in(page, login)
    _grids_loaded(page, seen)  # the grids of the account's area


def _grids_loaded(page, seen: int) -> None:
    page.wait_for_function(f"() => Number(document.body.dataset.gridsLoaded || 0) > {seen}", timeout=30_000)


def _loads(page) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.gridsLoaded || 0)"))


def _grid_of(demo, component: str) -> str:
    with demo.engine.connect() as conn:
        return str(conn.execute(text("SELECT grid_code FROM component WHERE code = :c"), {"c": component}).scalar())


def _current_version(demo, code: str) -> int:
    with demo.engine.connect() as conn:
        return int(conn.execute(text("SELECT version_id FROM grid_geometry WHERE grid_code = :c AND valid_to IS NULL"),
                                {"c": code}).scalar_one())


def _version_shown(page, code: str) -> int:
    return int(page.evaluate("(c) => window.glPlanning.grids.find(f => f.properties.code === c).properties.version_id",
                             code))


def _click_grid(page, demo, code: str) -> None:
    """Click the map inside grid ``code`` (its current shape's point on surface)."""
    with demo.engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM"
                                     " grid_geometry WHERE grid_code = :c AND valid_to IS NULL) q"), {"c": code}).one()
    x, y = page.evaluate("(c) => { const m = window.glPlanning.map; m.jumpTo({center: c});"
                         " const p = m.project(c); return [p.x, p.y]; }", [lon, lat])
    page.wait_for_function("() => window.glPlanning.map.loaded()")  # the tiles and the new grids drawn
    box = page.locator("#pl-map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_selector(f"#pl-info[data-kind='grid'][data-code='{code}']")


def _draw(page, coords: list[list[float]]) -> None:
    """Click the map at the screen positions of ``coords`` (map.project), double-clicking the last one."""
    pixels = page.evaluate("(cs) => cs.map((c) => { const p = window.glPlanning.map.project(c); return [p.x, p.y]; })",
                           coords)
    box = page.locator("#pl-map").bounding_box()
    for x, y in pixels[:-1]:
        page.mouse.click(box["x"] + x, box["y"] + y)
    x, y = pixels[-1]
    page.mouse.dblclick(box["x"] + x, box["y"] + y)


def test_a_planner_moves_a_boundary_previews_commits_sees_the_new_grid_and_rolls_back(demo, people, page) -> None:
    code, neighbour, line = _boundary_move(demo)
    old_version = _current_version(demo, code)
    _open(page, demo, PLANNER)
    page.wait_for_function("() => document.querySelectorAll('#pl-town option').length === 1")
    towns = page.eval_on_selector_all("#pl-town option", "os => os.map(o => o.value)")
    assert towns == [demo.town]  # the planner's area only
    seen = _loads(page)
    page.select_option("#pl-community", code[:12])
    _grids_loaded(page, seen)
    codes = set(page.evaluate("() => window.glPlanning.grids.map(f => f.properties.code)"))
    assert {code, neighbour} <= codes and all(c.startswith(code[:12]) for c in codes)
    west, south, east, north = shape({"type": "LineString", "coordinates": line}).buffer(0.0005).bounds
    page.evaluate(f"() => window.glPlanning.map.fitBounds([[{west}, {south}], [{east}, {north}]],"
                  " {padding: 80, duration: 0})")
    page.wait_for_function("() => window.glPlanning.map.loaded()")

    page.click("#pl-edit-submit")  # the default gesture: move a shared boundary, drawn on the map
    page.wait_for_selector("#pl-draw-bar:not([hidden])")
    _draw(page, line)
    page.wait_for_selector("#pl-preview[data-drawn]", timeout=30_000, state="attached")
    plan = int(page.get_attribute("#pl-plan-box", "data-plan-id") or 0)
    edited = page.eval_on_selector_all("#pl-edits li", "ls => ls.map(l => l.dataset.op)")
    assert edited and set(edited) <= {"reshape", "create"}, edited  # the move, as the server stored it
    preview = httpx.get(f"{demo.url}/api/v1/plans/{plan}/preview", headers=_token(demo, PLANNER)).json()
    assert preview["numbers"]["components"] > 0 and not preview["problems"]
    numbers = page.text_content("#pl-numbers") or ""
    assert f"变更网格的部件 {preview['numbers']['components']} 个" in numbers
    assert f"未结案件 {preview['numbers']['open_cases']} 件" in numbers
    shown = page.eval_on_selector_all("#pl-workload tbody tr", "rs => rs.map(r => r.cells[0].textContent)")
    assert shown == [w["code"] for w in preview["workload"]] and {code, neighbour} <= set(shown)
    drawn = page.evaluate("() => window.glPlanning.map.querySourceFeatures('pl-moved').length")
    assert drawn >= 1  # the moved components and cases are on the map
    screenshot(page, "planning-1920x1080")
    assert axe_violations(page) == []

    moved = preview["components"][0]
    assert _grid_of(demo, moved["code"]) == moved["before"]
    seen = _loads(page)
    page.click("#pl-commit-button")  # "now" is ticked
    page.wait_for_selector("#pl-plan-box[data-state='committed']", timeout=30_000)
    _grids_loaded(page, seen)  # the live grids again, as committed
    assert "方案已生效" in (page.text_content("#pl-commit-result") or "")
    page.click(f"#pl-moved-components button:text-is('{moved['code']}')")
    page.wait_for_selector(f"#pl-info[data-kind='component'][data-code='{moved['code']}']")
    assert page.get_attribute("#pl-info", "data-grid") == moved["after"] != moved["before"]
    assert _grid_of(demo, moved["code"]) == moved["after"]
    assert _current_version(demo, code) != old_version
    _click_grid(page, demo, code)  # its versions: the demo's shape, closed by the commit, and the plan's
    page.wait_for_selector("#pl-version-list li >> nth=1")
    versions = page.eval_on_selector_all("#pl-version-list li", "ls => ls.map(l => Number(l.dataset.version))")
    assert versions == [old_version, _current_version(demo, code)]
    assert f"方案 #{plan}" in (page.text_content("#pl-version-list li:last-child") or "")

    yesterday = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).date().isoformat()
    seen = _loads(page)
    page.fill("#pl-date-input", yesterday)
    page.click("#pl-date button[type=submit]")
    _grids_loaded(page, seen)
    assert page.is_visible("#pl-banner") and yesterday in (page.text_content("#pl-banner") or "")
    then = _version_shown(page, code)
    assert then == old_version  # the shape valid yesterday, not today's
    assert page.is_hidden("#pl-edit")  # the past is read-only
    seen = _loads(page)
    page.click("#pl-date-now")
    _grids_loaded(page, seen)
    now = _version_shown(page, code)
    assert now == _current_version(demo, code) != old_version

    page.click("#pl-rollback-button")
    page.wait_for_function("() => (document.querySelector('#pl-commit-result').textContent || '').includes('已回滚')",
                           timeout=30_000)
    assert _grid_of(demo, moved["code"]) == moved["before"]  # the demo as it was for the other modules
    assert page.errors == []


def test_a_viewer_reads_only_and_another_towns_planner_is_refused(demo, people, page) -> None:
    _open(page, demo, VIEWER)
    assert page.is_visible("#pl-readonly") and page.is_hidden("#pl-plan-box") and page.is_hidden("#pl-import-box")
    assert page.locator("#gl-nav a[href='/planning']").count() == 0  # not in a viewer's navigation
    assert page.evaluate("() => window.glPlanning.grids.length") > 0  # the grids are there to read
    assert axe_violations(page) == []
    viewer = _token(demo, VIEWER)
    assert httpx.post(f"{demo.url}/api/v1/plans", headers=viewer, json={"title": "x"}).status_code == 403

    _, _, line = _boundary_move(demo)
    mine = httpx.post(f"{demo.url}/api/v1/plans", headers=_token(demo, PLANNER), json={"title": "b.plan"}).json()["id"]
    other = _token(demo, OTHER)
    theirs = httpx.post(f"{demo.url}/api/v1/plans", headers=other, json={"title": "b.plan2"}).json()["id"]
    move = {"op": "move", "level": 4, "line": {"type": "LineString", "coordinates": line}}
    assert httpx.post(f"{demo.url}/api/v1/plans/{theirs}/edits", headers=other, json=move).status_code == 403
    for path in (f"plans/{mine}/preview", f"plans/{mine}"):
        assert httpx.get(f"{demo.url}/api/v1/{path}", headers=other).status_code == 403
    for path in (f"plans/{mine}/commit", f"plans/{mine}/rollback", f"plans/{mine}/edits"):
        assert httpx.post(f"{demo.url}/api/v1/{path}", headers=other, json=move if "edits" in path else None
                          ).status_code == 403
    assert httpx.get(f"{demo.url}/api/v1/plans/{mine}/preview", headers=viewer).status_code == 403

    page.click("#gl-logout")
    page.wait_for_selector("#gl-login-open:not([hidden])")
    log_in(page, OTHER)
    page.wait_for_function("() => document.querySelectorAll('#pl-town option').length === 1")  # its town
    towns = page.eval_on_selector_all("#pl-town option", "os => os.map(o => o.value)")
    assert towns == [people["other_town"]] and not page.is_hidden("#pl-plan-box")
    assert page.errors == []


def _free_code(demo, community: str) -> str:
    with demo.engine.connect() as conn:
        taken = set(conn.execute(text("SELECT code FROM grid WHERE code LIKE :c || '%'"), {"c": community}).scalars())
    return next(f"{community}{n:03d}" for n in range(999, 0, -1) if f"{community}{n:03d}" not in taken)


def test_a_drawn_split_and_a_rename_scheduled_then_cancelled_and_the_page_in_english(demo, people, page) -> None:
    code, neighbour, line = _boundary_move(demo)
    new_code = _free_code(demo, code[:12])
    _open(page, demo, PLANNER)
    seen = _loads(page)
    page.select_option("#pl-community", code[:12])
    _grids_loaded(page, seen)
    page.fill("#pl-plan-title", "浏览器测试：拆分")
    page.click("#pl-plan-pick button[type=submit]")
    page.wait_for_selector("#pl-plan-state:has-text('浏览器测试：拆分')")
    plan = int(page.get_attribute("#pl-plan-box", "data-plan-id") or 0)

    page.select_option("#pl-op", "rename")
    assert page.is_hidden("#pl-new-code") and page.is_visible("#pl-name")  # the fields of the gesture only
    page.fill("#pl-code", neighbour)
    page.fill("#pl-name", "浏览器测试网格")
    page.click("#pl-edit-submit")
    page.wait_for_selector(f"#pl-edits li:has-text('{neighbour} · 浏览器测试网格')")  # kept as the grid's edit
    page.wait_for_selector("#pl-preview[data-drawn]", state="attached", timeout=30_000)

    page.select_option("#pl-op", "split")
    page.fill("#pl-code", code)
    page.fill("#pl-new-code", new_code)
    west, south, east, north = shape({"type": "LineString", "coordinates": line}).buffer(0.0005).bounds
    page.evaluate(f"() => window.glPlanning.map.fitBounds([[{west}, {south}], [{east}, {north}]],"
                  " {padding: 80, duration: 0})")
    page.click("#pl-edit-submit")
    page.wait_for_selector("#pl-draw-bar:not([hidden])")
    _draw(page, line)
    page.wait_for_selector(f"#pl-edits li:has-text('{new_code}')", timeout=30_000)  # the split's new grid
    page.wait_for_selector("#pl-preview[data-drawn]", state="attached", timeout=30_000)
    stored = httpx.get(f"{demo.url}/api/v1/plans/{plan}", headers=_token(demo, PLANNER)).json()
    names = {e["code"]: e["name"] for e in stored["edits"]}
    assert names[neighbour] == "浏览器测试网格" and new_code in names and code in names
    page.wait_for_selector(f"#pl-workload tbody tr:has-text('{new_code}')", timeout=30_000)  # this edit's preview
    shown = page.eval_on_selector_all("#pl-workload tbody tr", "rs => rs.map(r => r.cells[0].textContent)")
    assert new_code in shown and code in shown
    planned = page.evaluate("() => window.glPlanning.map.querySourceFeatures('pl-planned').map(f => f.properties.code)")
    assert {code, new_code} <= set(planned)

    tomorrow = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).replace(second=0, microsecond=0)
    page.check("#pl-commit input[value=at]")
    page.fill("#pl-effective", tomorrow.strftime("%Y-%m-%dT%H:%M"))
    page.click("#pl-commit-button")
    page.wait_for_selector("#pl-plan-box[data-state='scheduled']", timeout=30_000)
    with demo.engine.connect() as conn:
        at = conn.execute(text("SELECT effective_at FROM grid_plan WHERE id = :p"), {"p": plan}).scalar_one()
        assert not conn.execute(text("SELECT 1 FROM grid WHERE code = :c"), {"c": new_code}).first()  # not yet
    assert at == tomorrow  # the time picked in Suzhou, stored as that instant
    page.click("#pl-cancel-button")
    page.wait_for_selector("#pl-plan-box[data-state='draft']", timeout=30_000)

    page.fill("#pl-plan-title", "浏览器测试：合并")  # a second draft: a grid merged through the form
    page.click("#pl-plan-pick button[type=submit]")
    page.wait_for_selector("#pl-plan-state:has-text('浏览器测试：合并')")
    merged = int(page.get_attribute("#pl-plan-box", "data-plan-id") or 0)
    page.select_option("#pl-op", "merge")
    page.fill("#pl-code", neighbour)
    page.fill("#pl-into", code)
    page.click("#pl-edit-submit")
    page.wait_for_selector("#pl-edits li[data-op='retire']", timeout=30_000)
    page.wait_for_selector("#pl-preview[data-drawn]", state="attached", timeout=30_000)
    preview = httpx.get(f"{demo.url}/api/v1/plans/{merged}/preview", headers=_token(demo, PLANNER)).json()
    gone = next(w for w in preview["workload"] if w["code"] == neighbour)
    assert gone["components"]["after"] == 0 and gone["area_m2"]["after"] == 0
    assert f"变更网格的部件 {preview['numbers']['components']} 个" in (page.text_content("#pl-numbers") or "")

    page.fill("#pl-plan-title", "浏览器测试：新建")  # a third draft: a grid drawn as a polygon
    page.click("#pl-plan-pick button[type=submit]")
    page.wait_for_selector("#pl-plan-state:has-text('浏览器测试：新建')")
    created = int(page.get_attribute("#pl-plan-box", "data-plan-id") or 0)
    with demo.engine.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM"
                                 " grid_geometry WHERE grid_code = :c AND valid_to IS NULL) q"), {"c": code}).one()
    triangle = [[x - 0.0004, y - 0.0003], [x + 0.0004, y - 0.0003], [x, y + 0.0004]]
    page.evaluate(f"() => window.glPlanning.map.jumpTo({{center: [{x}, {y}], zoom: 16}})")
    page.select_option("#pl-op", "create")
    page.fill("#pl-code", new_code)
    page.fill("#pl-name", "浏览器测试新网格")
    page.click("#pl-edit-submit")
    page.wait_for_selector("#pl-draw-bar:not([hidden])")
    _draw(page, triangle)
    page.wait_for_selector(f"#pl-edits li[data-op='create']:has-text('{new_code}')", timeout=30_000)
    page.wait_for_selector("#pl-preview[data-drawn]", state="attached", timeout=30_000)
    stored = httpx.get(f"{demo.url}/api/v1/plans/{created}", headers=_token(demo, PLANNER)).json()
    new = next(e for e in stored["edits"] if e["code"] == new_code)
    assert new["op"] == "create" and new["name"] == "浏览器测试新网格"
    assert abs(shape(new["geometry"]).area - shape({"type": "Polygon", "coordinates": [[*triangle, triangle[0]]]}).area
               ) < 1e-9  # the drawn triangle (snapped within a metre), carved out of the grid under it
    assert any(e["code"] == code for e in stored["edits"])

    page.click("#gl-lang")
    assert page.text_content("#pl-preview-title") == "Impact preview"
    assert "Create (draw an area)" in (page.text_content("#pl-edits") or "")
    page.click("#gl-lang")
    assert page.text_content("#pl-preview-title") == "影响预览"
    assert page.errors == []


def _community_file(demo, community: str, path, drop: str | None = None):
    """The community's current base grids as a GeoJSON file (columns code, name), less ``drop``."""
    with demo.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, g.name, ST_AsGeoJSON(gg.geom, 9)::json FROM grid g JOIN grid_geometry gg"
            " ON gg.grid_code = g.code AND gg.valid_to IS NULL WHERE g.level = 4 AND g.retired_at IS NULL"
            " AND g.parent_code = :c ORDER BY g.code"), {"c": community}).all()
    features = [{"type": "Feature", "geometry": geom, "properties": {"code": code, "name": name}}
                for code, name, geom in rows if code != drop]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path, len(features)


def _import(page, path) -> None:
    if not page.evaluate("() => document.getElementById('pl-import-box').open"):
        page.click("#pl-import-box > summary")
    page.set_input_files("#pl-import-file", str(path))
    page.click("#pl-import button[type=submit]")
    page.wait_for_selector("#pl-import-result", timeout=60_000)


def test_a_grid_file_is_checked_and_a_gap_is_shown_on_the_map(demo, people, page, tmp_path) -> None:
    code, _, _ = _boundary_move(demo)
    whole, n = _community_file(demo, code[:12], tmp_path / "whole.geojson")
    holed, _ = _community_file(demo, code[:12], tmp_path / "holed.geojson", drop=code)
    token = _token(demo, PLANNER)
    checked = httpx.post(f"{demo.url}/api/v1/grids/imports", params={"level": 4, "store": "none"}, headers={
        **token, "Content-Type": "application/geo+json"}, content=whole.read_bytes(), timeout=60).json()
    assert checked["state"] == "checked" and checked["grids"] == n
    refused = httpx.post(f"{demo.url}/api/v1/grids/imports", params={"level": 4, "store": "none"}, headers={
        **token, "Content-Type": "application/geo+json"}, content=holed.read_bytes(), timeout=60)
    assert refused.status_code == 422
    problems = refused.json()["report"]["problems"]
    assert "gap" in {p["kind"] for p in problems}

    _open(page, demo, PLANNER)
    _import(page, whole)
    summary = page.text_content("#pl-import-result") or ""
    assert f"{n} 个网格，修复 {len(checked['repairs'])} 处，问题 {len(checked['problems'])} 处" in summary
    _import(page, holed)  # refused (422): the report still shows where
    page.wait_for_selector("#pl-import-result[data-ok='false']")
    assert "缝隙" in (page.text_content("#pl-import-result") or "")
    assert axe_violations(page) == []  # the import form and its report too
    drawn = page.evaluate("async () => (await window.glPlanning.map.getSource('pl-problems').getData())"
                          ".features.length")
    assert drawn == sum(1 for p in problems if p.get("geometry"))
    assert [e for e in page.errors if "422" not in e] == []  # the refusal is the only failed request


def _community_line(demo) -> tuple[str, list[list[float]]]:
    """A community of the town with the most base grids and a line cutting a third of it off towards its
    longest-border sibling community (the base grids under the swept area are left outside their parent)."""
    with demo.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, ST_AsText(gg.geom) FROM grid g JOIN grid_geometry gg ON gg.grid_code = g.code"
            " AND gg.valid_to IS NULL WHERE g.level = 3 AND g.parent_code = :t ORDER BY g.code"),
            {"t": demo.town}).all()
    shapes = {code: wkt.loads(w) for code, w in rows}
    best = None
    for a, b in combinations(shapes, 2):
        border = shapes[a].boundary.intersection(shapes[b].buffer(0.00001))
        parts = [p for p in getattr(border, "geoms", [border]) if p.geom_type == "LineString"]
        longest = max(parts, key=lambda p: p.length, default=None)
        if longest is not None and (best is None or longest.length > best[1].length):
            best = (a, longest)
    assert best is not None, f"no two communities of {demo.town} share a border"
    code, border = best
    (ax, ay), (bx, by) = border.coords[0], border.coords[-1]
    middle, inside = border.interpolate(0.5, normalized=True), shapes[code].representative_point()
    bend = [middle.x + 0.4 * (inside.x - middle.x), middle.y + 0.4 * (inside.y - middle.y)]
    return code, [[ax + 0.15 * (ax - bend[0]), ay + 0.15 * (ay - bend[1])], bend,
                  [bx + 0.15 * (bx - bend[0]), by + 0.15 * (by - bend[1])]]


def test_a_community_move_leaves_base_grids_outside_and_the_problems_are_drawn_and_refuse_the_commit(
        demo, people, page) -> None:
    code, line = _community_line(demo)
    _open(page, demo, PLANNER)
    seen = _loads(page)
    page.select_option("#pl-level", "3")
    _grids_loaded(page, seen)
    assert {f[:9] for f in page.evaluate("() => window.glPlanning.grids.map(f => f.properties.code)")} == {demo.town}
    page.fill("#pl-plan-title", "浏览器测试：社区边界")
    page.click("#pl-plan-pick button[type=submit]")
    page.wait_for_selector("#pl-plan-state:has-text('浏览器测试：社区边界')")
    plan = int(page.get_attribute("#pl-plan-box", "data-plan-id") or 0)
    west, south, east, north = shape({"type": "LineString", "coordinates": line}).buffer(0.001).bounds
    page.evaluate(f"() => window.glPlanning.map.fitBounds([[{west}, {south}], [{east}, {north}]],"
                  " {padding: 80, duration: 0})")
    page.wait_for_function("() => window.glPlanning.map.loaded()")
    page.click("#pl-edit-submit")
    _draw(page, line)
    page.wait_for_selector("#pl-preview[data-drawn]", state="attached", timeout=60_000)
    assert code in (page.text_content("#pl-edits") or "")  # the community cut, and its sibling
    problems = httpx.get(f"{demo.url}/api/v1/plans/{plan}/preview", headers=_token(demo, PLANNER),
                         timeout=60).json()["problems"]
    assert problems and {p["kind"] for p in problems} <= {"gap", "outside_parent", "overlap"}
    listed = page.locator("#pl-problem-list li").count()
    drawn = page.evaluate("async () => (await window.glPlanning.map.getSource('pl-problems').getData())"
                          ".features.length")
    assert listed == len(problems) and drawn == sum(1 for p in problems if p.get("geometry"))
    assert f"拓扑问题 {len(problems)} 处" in (page.text_content("#pl-numbers") or "")
    page.click("#pl-commit-button")  # refused, saying where: nothing stored
    page.wait_for_selector("#gl-notice[data-kind='error']:has-text('方案未能提交')")
    assert page.get_attribute("#pl-plan-box", "data-state") == "draft"
    with demo.engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM grid_plan WHERE id = :p"), {"p": plan}).scalar_one() == "draft"
    assert [e for e in page.errors if "422" not in e and "409" not in e] == []  # the refused commit only
