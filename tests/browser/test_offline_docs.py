"""The documentation and OGC pages work on a machine without internet (issue 24, item 1): Chromium opens
``/docs``, ``/redoc`` and a collection's OGC HTML page on a live server with every request to any other
origin aborted, and finds them rendered from the pinned copies under ``/static/vendor``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.browser.conftest import screenshot
from tests.conftest import admin_headers
from tests.live import serving


@pytest.fixture(scope="module")
def server(world_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live ``gridlink serve`` on the world database; yields its origin."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(world_engine.url.render_as_string(hide_password=False), log=log) as port:
        yield f"http://127.0.0.1:{port}"


class Offline:
    """A page whose requests to any origin but the server's are aborted, and which records what it loaded."""

    def __init__(self, browser, origin: str, headers: dict[str, str] | None = None) -> None:
        self.origin = origin
        self.context = browser.new_context(extra_http_headers=headers or {})
        self.page = self.context.new_page()
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.served: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("response", lambda r: (self.failed if r.status >= 400 else self.served).append(r.url))

    def _route(self, route) -> None:
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("internetdisconnected")

    def open(self, path: str) -> None:
        self.page.goto(self.origin + path, wait_until="load")

    def shot(self, name: str) -> None:
        screenshot(self.page, name)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def offline(browser, server: str) -> Iterator[Offline]:
    page = Offline(browser, server)
    yield page
    page.close()


@pytest.fixture
def offline_admin(browser, server: str) -> Iterator[Offline]:
    """As ``offline``, calling as the world's administrator (the components collection needs an account)."""
    page = Offline(browser, server, admin_headers())
    yield page
    page.close()


def test_swagger_ui_renders_offline(offline: Offline) -> None:
    offline.open("/docs")
    title = offline.page.wait_for_selector(".swagger-ui .information-container .title", timeout=20_000)
    assert "gridlink" in title.inner_text()
    assert offline.page.locator(".opblock").count() > 20  # the operations are listed
    assert offline.page.locator("button.authorize").count() == 1  # the security schemes are declared
    assert any(url.endswith("/static/vendor/swagger-ui/swagger-ui-bundle.js") for url in offline.served)
    assert offline.failed == [] and not [u for u in offline.blocked if "favicon" not in u]
    offline.shot("docs")


def test_redoc_renders_offline(offline: Offline) -> None:
    offline.open("/redoc")
    heading = offline.page.wait_for_selector(".api-info h1", timeout=30_000)
    assert "gridlink" in heading.inner_text()
    assert offline.page.locator("[data-section-id^='operation/']").count() > 20
    assert any(url.endswith("/static/vendor/redoc/redoc.standalone.js") for url in offline.served)
    assert offline.failed == [] and offline.blocked == []
    offline.shot("redoc")


def test_an_ogc_collection_page_renders_offline_with_its_map(offline_admin: Offline) -> None:
    offline = offline_admin
    offline.open("/ogc/collections/components?f=html")
    offline.page.wait_for_selector("#gl-map.gl-map-ready .leaflet-interactive", timeout=20_000)
    assert offline.page.locator("h1").inner_text().strip()
    # The pinned Bootstrap and gridlink's stylesheet are applied: the header has the product's colour.
    header = offline.page.eval_on_selector(".gl-header", "e => getComputedStyle(e).backgroundColor")
    assert header == "rgb(44, 62, 80)"
    container = offline.page.eval_on_selector("main.container", "e => getComputedStyle(e).maxWidth")
    assert container not in ("none", "")  # Bootstrap's .container
    logo = offline.page.eval_on_selector(".gl-brand img", "e => e.naturalWidth")
    assert logo > 0
    assert offline.failed == []
    # Only the base map's tiles went elsewhere (and were aborted): no script, stylesheet or font.
    assert all("tile.openstreetmap.org" in url for url in offline.blocked)
    offline.shot("ogc-collection")


def test_an_ogc_items_page_and_item_page_render_offline(offline: Offline, server: str) -> None:
    offline.open("/ogc/collections/grids/items?f=html&limit=5")
    offline.page.wait_for_selector("#gl-map.gl-map-ready .leaflet-interactive", timeout=20_000)
    rows = offline.page.locator("table.gl-items tbody tr")
    assert rows.count() == 5
    rows.first.locator("a").click()
    offline.page.wait_for_selector("#gl-map.gl-map-ready .leaflet-interactive", timeout=20_000)
    assert offline.page.locator("table.gl-properties tr").count() > 2
    assert offline.failed == [] and all("tile.openstreetmap.org" in url for url in offline.blocked)
    offline.shot("ogc-item")


def test_authorize_logs_in_with_the_password_flow_and_try_it_out_uses_the_token(offline: Offline) -> None:
    from tests.conftest import TEST_ADMIN, TEST_PASSWORD

    offline.open("/docs")
    page = offline.page
    page.wait_for_selector("button.authorize", timeout=20_000).click()
    page.fill("#oauth_username", TEST_ADMIN)
    page.fill("#oauth_password", TEST_PASSWORD)
    page.click(".auth-container:has(#oauth_username) button.authorize")
    page.wait_for_selector(".auth-container:has-text('Authorized')", timeout=20_000)
    page.click("button.btn-done")
    operation = page.locator("[id^='operations-auth-session_api_v1_auth_session_get']")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=20_000)
    assert status.inner_text().strip().startswith("200")
    assert TEST_ADMIN in operation.locator(".live-responses-table .microlight").first.inner_text()
    offline.shot("docs-authorized")
