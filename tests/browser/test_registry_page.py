"""The asset owners' registry (/registry, issue 21 items 1 and 4) in Chromium at 1920 × 1080 against a live
server on the small demo: an owner's table holds only its own components, filters and keyset pages (next and
back), selects a component from the table (highlighted and flown to on the map) and from the map, edits its
attributes and status with a reason and sees the history grow, meets a 412 (someone saved first: the newer
version is shown), moves it on the map, exports the current filter, and imports a survey with a refused row —
dry run with the column mapping, then for real with progress, the diff summary and the refused rows downloaded.
A viewer reads the registry without a single edit, import or export control. Screenshot in Chinese; axe-core
finds no serious violation. Everything the owner changed is put back at the end (other modules share the demo)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from spatial.access.accounts import add_user, create_token
from tests.browser.conftest import PASSWORD, axe_violations, log_in, screenshot

OWNER, OWNER_LOGIN, VIEWER_LOGIN = "LIGHTING", "b.reg.lamps", "b.reg.viewer"
NEW_CODES = ("3205060106900001", "3205060106900002")  # the survey's two new lamps (serials no demo row has)
COLUMNS = ("name", "note", "status", "manager_key", "maintainer_key", "revision", "changed_at", "geom", "grid_code")


@pytest.fixture(scope="module")
def registry(demo):
    """The owner and viewer accounts of this module; afterwards the components it changed are as they were
    and the survey's new ones are gone (history rows stay: the table is append-only, and nobody else reads it)."""
    with demo.engine.begin() as conn:
        for login, role, scope in ((OWNER_LOGIN, "owner", OWNER), (VIEWER_LOGIN, "viewer", demo.town[:6])):
            if not conn.execute(text("SELECT 1 FROM account WHERE login = :l"), {"l": login}).first():
                add_user(conn, login, role=role, scope=scope, password=PASSWORD)
        first = conn.execute(text("SELECT code FROM component WHERE owner_key = :o AND geometrytype(geom) = 'POINT'"
                                  " ORDER BY code LIMIT 1"), {"o": OWNER}).scalar_one()
        saved = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM component WHERE code = :c"), {"c": first}).one()
        token = create_token(conn, OWNER_LOGIN, ttl=None)[0]
    yield {"code": first, "token": token}
    with demo.engine.begin() as conn:
        conn.execute(text(f"UPDATE component SET ({', '.join(COLUMNS)}) = ({', '.join(':' + c for c in COLUMNS)})"
                          " WHERE code = :code"), {**saved._asdict(), "code": first})
        conn.execute(text("DELETE FROM component WHERE code = ANY(:c)"), {"c": list(NEW_CODES)})


def _rows(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('#rg-rows tr')].map((tr) => ({
        code: tr.dataset.code, owner: tr.children[5].textContent, status: tr.children[3].textContent}))""")


def _wait_rows(page, before: str | None = None) -> list[dict]:
    """The table's rows once a page other than ``before`` (the first row's code) is shown."""
    page.wait_for_function("""(before) => { const tr = document.querySelector('#rg-rows tr');
        return document.querySelector('#rg-filter').getAttribute('aria-busy') === null && tr
          && tr.dataset.code !== before; }""", arg=before)
    return _rows(page)


def _history_count(page) -> int:
    return page.locator("#rg-history li").count()


def _survey(tmp_path, district_edge: tuple[float, float]) -> str:
    """A GeoJSON survey of the owner: two new lamps and one row whose status the registry does not know."""
    lon, lat = district_edge
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon + i * 1e-4, lat]},
                 "properties": {"编码": code, "名称": name, "状态": status}}
                for i, (code, name, status) in enumerate(((NEW_CODES[0], "新路灯一", "intact"),
                                                          (NEW_CODES[1], "新路灯二", "damaged"),
                                                          ("3205060106900003", "坏行", "broken")))]
    path = tmp_path / "lamps.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return str(path)


def test_an_owner_filters_edits_moves_exports_and_imports(demo, registry, page, tmp_path) -> None:
    code = registry["code"]
    with demo.engine.connect() as conn:
        own = conn.execute(text("SELECT count(*) FROM component WHERE owner_key = :o"), {"o": OWNER}).scalar_one()
        klass, in_class = conn.execute(text("SELECT class_code, count(*) FROM component WHERE owner_key = :o"
                                            " GROUP BY 1 ORDER BY 2 DESC LIMIT 1"), {"o": OWNER}).one()
        at = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM component WHERE code = :c"), {"c": code}).one()
    assert own > 200  # several pages of 100
    page.goto(f"{demo.url}/registry")
    log_in(page, OWNER_LOGIN)
    first = _wait_rows(page)
    assert len(first) == 100 and {r["owner"] for r in first} == {OWNER}  # issue 21 item 4: its own only
    assert page.locator("#gl-nav a[aria-current=page]").inner_text() == "部件台账"
    assert page.locator("#rg-owner-field").is_hidden()

    # keyset pages: next, next, back — the same rows as before, never one twice
    page.click("#rg-next")
    second = _wait_rows(page, first[0]["code"])
    assert not {r["code"] for r in first} & {r["code"] for r in second}
    assert min(r["code"] for r in second) > max(r["code"] for r in first)
    page.click("#rg-prev")
    assert _wait_rows(page, second[0]["code"]) == first
    assert page.locator("#rg-prev").is_disabled()

    # filter by class, sorted by code descending: every row of the class, on one page
    page.fill("#rg-filter input[name=class]", klass)
    page.select_option("#rg-sort", "-code")
    page.click("#rg-filter button[type=submit]")
    page.wait_for_function("""(k) => { const rows = [...document.querySelectorAll('#rg-rows tr')];
        return rows.length && rows.every((tr) => tr.dataset.code.slice(6, 10) === k)
          && rows[0].dataset.code > rows[rows.length - 1].dataset.code; }""", arg=klass)
    filtered = _rows(page)
    assert len(filtered) == min(in_class, 100)
    assert [r["code"] for r in filtered] == sorted((r["code"] for r in filtered), reverse=True)
    assert all(r["code"][6:10] == klass for r in filtered)
    export = page.get_attribute("#rg-export", "href")
    assert f"class={klass}" in export and "sort" not in export
    page.select_option("#rg-export-format", "geojson")
    with page.expect_download() as download:
        page.click("#rg-export")
    exported = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert len(exported["features"]) == in_class
    assert {f["properties"]["owner_key"] for f in exported["features"]} == {OWNER}
    page.click("#rg-filter button[type=reset]")
    _wait_rows(page, filtered[0]["code"])

    # select in the table: highlighted on the map, panel with attributes and history
    page.click(f"#rg-rows tr[data-code='{code}'] .rg-code")
    page.wait_for_selector("#rg-panel:not([hidden]) #rg-edit")
    assert page.locator(f"#rg-rows tr[data-code='{code}']").get_attribute("aria-current") == "true"
    assert page.evaluate("() => glRegistry.map.selectedCode") == code
    page.wait_for_function("() => !glRegistry.map.map.isMoving() && glRegistry.map.map.getZoom() >= 16.9")
    centre = page.evaluate("() => glRegistry.map.map.getCenter().toArray()")  # flown to it
    assert abs(centre[0] - at[0]) < 1e-5 and abs(centre[1] - at[1]) < 1e-5
    page.wait_for_function("""(code) => glRegistry.map.map.queryRenderedFeatures({layers: ['component-selected-point']})
        .some((f) => f.properties.code === code)""", arg=code)  # drawn highlighted
    # both highlight layers exist beside the shared map's own 'selected-line' (the clicked grid's outline)
    assert page.evaluate("""() => ['component-selected-line', 'component-selected-point', 'selected-line']
        .every((id) => glRegistry.map.map.getLayer(id) !== undefined)""")
    before = _history_count(page)

    # edit attributes: the history grows, the table shows the new name
    page.fill("#rg-edit input[name=name]", "东门路灯")
    page.fill("#rg-edit textarea[name=note]", "浏览器测试修改")
    page.click("#rg-edit button[type=submit]")
    page.wait_for_selector("#rg-message[data-kind=ok]")
    assert _history_count(page) == before + 1
    page.wait_for_selector(f"#rg-rows tr[data-code='{code}'] td:has-text('东门路灯')")

    # status with a reason
    page.select_option("#rg-status select[name=status]", "damaged")
    page.fill("#rg-status input[name=reason]", "灯杆倾斜")
    page.click("#rg-status button[type=submit]")
    page.wait_for_selector("#rg-history li:has-text('灯杆倾斜')")
    assert _history_count(page) == before + 2

    # someone else saves first: the page shows the newer version instead of failing silently
    import urllib.request

    with demo.engine.connect() as conn:
        revision = conn.execute(text("SELECT revision FROM component WHERE code = :c"), {"c": code}).scalar_one()
    other = urllib.request.Request(f"{demo.url}/api/v1/components/{code}", method="PATCH",
                                   data=json.dumps({"properties": {"name": "别人改的名字"}}).encode(),
                                   headers={"Authorization": f"Bearer {registry['token']}",
                                            "Content-Type": "application/json", "If-Match": f'"{revision}"'})
    assert urllib.request.urlopen(other).status == 204
    page.fill("#rg-edit input[name=name]", "我的名字")
    page.click("#rg-edit button[type=submit]")
    page.wait_for_selector("#rg-message[data-kind=warn]")
    assert "别人改的名字" in page.locator("#rg-panel dl").inner_text()
    assert "我的名字" in page.locator("#rg-message").inner_text()
    assert page.input_value("#rg-edit input[name=name]") == "别人改的名字"

    # move it on the map: click a new place 60 px east of it, save; stored as a geometry patch
    page.click("#rg-move-start")
    assert page.locator("#rg-move-hint").is_visible() and page.locator("#rg-move-save").is_disabled()
    marker = page.locator(".maplibregl-marker").bounding_box()  # dragged 40 px south first: a new place to save
    page.mouse.move(marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2)
    page.mouse.down()
    page.mouse.move(marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2 + 40, steps=5)
    page.mouse.up()
    page.wait_for_selector("#rg-move-save:not([disabled])")
    box = page.locator("#rg-map canvas").bounding_box()  # then a click on the map: the place that is saved
    page.mouse.click(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2)
    page.click("#rg-move-save")
    page.wait_for_selector("#rg-message[data-kind=ok]")
    with demo.engine.connect() as conn:
        moved = conn.execute(text("SELECT ST_X(geom), ST_Y(geom), revision FROM component WHERE code = :c"),
                             {"c": code}).one()
    assert moved[0] > at[0] + 1e-5 and abs(moved[1] - at[1]) < 1e-4 and moved[2] == revision + 2
    assert _history_count(page) == before + 4  # edit, status, the other's edit, the move

    # the map selects too: click the component where it now is (the map's centre after flying to it)
    page.click("#rg-panel .rg-panel-head button")
    page.wait_for_selector("#rg-panel", state="hidden")
    page.evaluate("([lon, lat]) => glRegistry.map.map.jumpTo({center: [lon, lat], zoom: 17})", [moved[0], moved[1]])
    page.wait_for_function("""(code) => glRegistry.map.map.queryRenderedFeatures({layers: ['page-rows-points']})
        .some((f) => f.properties.code === code)""", arg=code)
    box = page.locator("#rg-map canvas").bounding_box()  # wider now that the panel is closed
    point = page.evaluate("([lon, lat]) => glRegistry.map.map.project([lon, lat])", [moved[0], moved[1]])
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_selector(f"#rg-panel:not([hidden]) h2:has-text('{code}')")

    page.evaluate("() => glRegistry.map.map.jumpTo({zoom: 12.5})")  # the page's rows across the district
    page.wait_for_function("() => glRegistry.map.map.loaded() && !glRegistry.map.map.isMoving()")
    screenshot(page, "registry-1920x1080")
    assert axe_violations(page) == []

    # import a survey: dry run (mapping shown, nothing stored), then for real; the refused row downloaded
    with demo.engine.connect() as conn:
        edge = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM grid_geometry g, ST_PointOnSurface(g.geom) p"
                                 " WHERE g.valid_to IS NULL AND g.kind = 'base' ORDER BY g.grid_code LIMIT 1")).one()
    page.click("#rg-import-open")
    assert page.input_value("#rg-import-owner") == OWNER
    page.set_input_files("#rg-import-file", _survey(tmp_path, edge))
    page.click("#rg-import-run")
    page.wait_for_selector("#rg-summary")
    summary = lambda: {k: page.inner_text(f"#rg-summary dd[data-key={k}]") for k in ("new", "refused", "rows")}  # noqa: E731
    assert summary() == {"new": "2", "refused": "1", "rows": "3"}
    assert page.locator("#rg-mapping-rows select").count() == 3
    assert page.input_value("#rg-mapping-rows select[data-column='名称']") == "name"
    # the mapping is editable: a second dry run with 名称 read as the note comes back with that mapping
    page.select_option("#rg-mapping-rows select[data-column='名称']", "note")
    page.evaluate("() => { document.querySelector('#rg-mapping-rows select').dataset.old = '1'; }")
    page.click("#rg-import-run")
    page.wait_for_function("""() => !document.getElementById('rg-import-run').disabled
        && !document.getElementById('rg-report').hidden
        && !document.querySelector('#rg-mapping-rows select[data-old]')""")  # the mapping drawn from the report
    assert page.input_value("#rg-mapping-rows select[data-column='名称']") == "note"
    page.select_option("#rg-mapping-rows select[data-column='名称']", "name")
    with demo.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM component WHERE code = ANY(:c)"),
                            {"c": list(NEW_CODES)}).scalar_one() == 0
    page.uncheck("#rg-import-dry")
    page.click("#rg-import-run")
    page.wait_for_selector("#rg-report .rg-ok")
    assert summary() == {"new": "2", "refused": "1", "rows": "3"}
    assert page.locator("#rg-progress").get_attribute("value") == "3"
    assert "行 3：status must be one of" in page.locator("#rg-report .rg-refusals").inner_text()
    with page.expect_download() as download:
        page.click("#rg-rejects")
    rejects = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert [f["properties"]["编码"] for f in rejects["features"]] == ["3205060106900003"]
    assert "status must be one of" in rejects["features"][0]["properties"]["reason"]
    with demo.engine.connect() as conn:
        stored = conn.execute(text("SELECT code, name, owner_key FROM component WHERE code = ANY(:c) ORDER BY code"),
                              {"c": list(NEW_CODES)}).all()
    assert [tuple(r) for r in stored] == [(NEW_CODES[0], "新路灯一", OWNER), (NEW_CODES[1], "新路灯二", OWNER)]
    page.click("#rg-import-close")
    stale = [e for e in page.errors.unexpected() if "status of 412" in e]  # the browser logs the refused save
    assert len(stale) == 1 and page.errors.unexpected() == stale


def test_a_viewer_reads_without_edit_controls(demo, registry, page) -> None:
    page.goto(f"{demo.url}/registry")
    log_in(page, VIEWER_LOGIN)
    rows = _wait_rows(page)
    assert {r["owner"] for r in rows} - {OWNER}  # a viewer reads every owner's components
    assert page.locator("#gl-nav a[href='/registry']").count() == 0  # not a page of its role
    for control in ("#rg-export", "#rg-export-format", "#rg-import-open"):
        assert page.locator(control).is_hidden()
    assert page.locator("#rg-owner-field").is_visible()
    page.fill("#rg-filter input[name=owner]", OWNER)
    page.click("#rg-filter button[type=submit]")
    assert {r["owner"] for r in _wait_rows(page, rows[0]["code"])} == {OWNER}
    page.click(f"#rg-rows tr[data-code='{registry['code']}'] .rg-code")
    page.wait_for_selector("#rg-panel:not([hidden]) dl")
    assert page.locator("#rg-panel form, #rg-move-start, #rg-history").count() == 0
    assert "变更记录仅对权属单位和管理员可见" in page.locator("#rg-panel").inner_text()
    assert page.inner_text("#rg-scope") == "只读：查看者不能修改部件"
    page.click("#gl-lang")
    assert page.inner_text("#rg-scope") == "Read only: a viewer cannot change components"
    page.click("#gl-lang")
    assert axe_violations(page) == []
    assert page.errors.unexpected() == []
