"""The shared page shell (issue 20 item 6) on the console page, in Chromium against a live server: an
anonymous load asks nothing that answers 401 and logs no error, the map (MapLibre) draws our grid tiles,
login changes the navigation and the layers, refusals are readable, the language is switchable and remembered,
and axe-core finds no serious violation."""

from __future__ import annotations

from tests.browser.conftest import PASSWORD, axe_violations, log_in, screenshot

RENDERED = "layer => window.glConsole.map.queryRenderedFeatures({layers: [layer]}).length"


def _wait_map(page) -> None:
    page.wait_for_function("() => document.body.dataset.ready === 'map' && window.glConsole.map.loaded()",
                           timeout=30_000)


def _nav(page) -> list[str]:
    return page.eval_on_selector_all("#gl-nav a", "links => links.map(a => a.getAttribute('href'))")


def test_anonymous_console_draws_grids_without_errors(demo, page) -> None:
    statuses: list[tuple[int, str]] = []
    page.on("response", lambda r: statuses.append((r.status, r.url)))
    page.goto(f"{demo.url}/console")
    _wait_map(page)
    page.wait_for_function(f"() => ({RENDERED})('towns-line') > 0", timeout=30_000)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.text_content("#gl-login-open") == "登录"
    assert _nav(page) == []  # every page but the landing page needs an account
    assert not page.evaluate("Boolean(window.glConsole.map.getLayer('cases-points'))")
    assert [s for s in statuses if s[0] >= 400] == []
    assert page.errors == []
    screenshot(page, "console-anonymous")
    assert axe_violations(page) == []


def test_login_changes_navigation_and_layers(demo, page) -> None:
    page.goto(f"{demo.url}/console")
    _wait_map(page)
    page.click("#gl-login-open")
    page.fill("#gl-login-user", demo.accounts["dispatcher"])
    page.fill("#gl-login-pass", "not the password at all")
    page.click("#gl-login-form button[type=submit]")
    error = page.wait_for_selector("#gl-login-error:not([hidden])")
    assert "(401)" in (error.text_content() or "")  # the server's problem title and status, readable
    assert page.errors == ["console: Failed to load resource: the server responded with a status of 401 "
                           f"(Unauthorized) {demo.url}/api/v1/auth/session"]  # the refused login, nothing else
    page.errors.clear()
    page.fill("#gl-login-pass", PASSWORD)
    page.click("#gl-login-form button[type=submit]")
    page.wait_for_selector(f"#gl-who:has-text('{demo.accounts['dispatcher']}')")
    assert "调度员" in (page.text_content("#gl-who") or "")
    assert "/console" in _nav(page)
    assert "/planning" not in _nav(page)
    assert page.evaluate("Boolean(window.glConsole.map.getLayer('cases-points'))")
    page.wait_for_function(f"() => ({RENDERED})('cases-points') > 0", timeout=30_000)
    # the session survives a reload (cookie + the browser's flag), and logging out removes the layers
    page.reload()
    _wait_map(page)
    page.wait_for_selector(f"#gl-who:has-text('{demo.accounts['dispatcher']}')")
    assert page.evaluate("Boolean(window.glConsole.map.getLayer('cases-points'))")
    page.click("#gl-logout")
    page.wait_for_selector("#gl-login-open:not([hidden])")
    assert not page.evaluate("Boolean(window.glConsole.map.getLayer('cases-points'))")
    assert page.errors.unexpected() == []


def test_language_switch_is_remembered(demo, page) -> None:
    page.goto(f"{demo.url}/console?lang=en")
    _wait_map(page)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.text_content("#gl-login-open") == "Log in"
    assert page.title().startswith("Console")
    page.goto(f"{demo.url}/console")  # no ?lang=: the choice was remembered
    _wait_map(page)
    assert page.text_content("#gl-login-open") == "Log in"
    page.click("#gl-lang")
    assert page.text_content("#gl-login-open") == "登录"
    assert page.title().startswith("指挥台")
    log_in(page, demo.accounts["admin"])
    assert "管理员" in (page.text_content("#gl-who") or "")


def test_landing_page_is_the_console_with_real_popups_at_every_level(demo, page) -> None:
    """Item 7's defects: every grid level answers a click (also with the community layer drawn), with names and
    codes from the server; no request fails for an anonymous visitor."""
    statuses: list[tuple[int, str]] = []
    page.on("response", lambda r: statuses.append((r.status, r.url)))
    page.goto(f"{demo.url}/")
    _wait_map(page)
    with demo.engine.connect() as conn:
        from sqlalchemy import text

        lon, lat, grid, community, town = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p), g.code, g.parent_code, left(g.code, 9) FROM grid g JOIN grid_geometry gg"
            " ON gg.grid_code = g.code AND gg.valid_to IS NULL, LATERAL (SELECT ST_PointOnSurface(gg.geom) p) q"
            " WHERE g.level = 4 ORDER BY g.code LIMIT 1")).one()
    page.evaluate(f"() => window.glConsole.map.jumpTo({{center: [{lon}, {lat}], zoom: 14}})")
    page.wait_for_function("() => window.glConsole.map.loaded()")
    box = page.locator("#cl-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#cl-here .cl-here-server dl")
    layers = page.eval_on_selector_all("#cl-here .cl-here-item", "s => s.map(x => x.dataset.layer)")
    assert {"grids", "communities", "towns", "districts"} <= set(layers)
    here = page.text_content("#cl-here") or ""
    for code in (grid, community, town):
        assert code in here
    assert not page.is_visible("#cl-new-here")  # reporting needs an account
    assert [s for s in statuses if s[0] >= 400] == []
    assert page.errors == []
