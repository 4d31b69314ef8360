"""The documentation pages and the OGC HTML pages load nothing from elsewhere (issue 24, item 1): checked here
on the HTML itself for every kind of page; tests/browser/test_offline_docs.py opens them in Chromium."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from web.pages import STATIC_DIR

VENDOR = STATIC_DIR / "vendor"
ASSET = re.compile(r'<(?:script|link|img)\b[^>]*?\s(?:src|href)="([^"]+)"')


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect", "/ogc/?f=html", "/ogc/collections?f=html",
                                  "/ogc/collections/grids?f=html", "/ogc/collections/grids/items?f=html&limit=3",
                                  "/ogc/collections/components?f=html", "/ogc/conformance?f=html",
                                  "/ogc/openapi?f=html", "/ogc/openapi?f=html&ui=redoc",
                                  "/ogc/collections/grids/queryables?f=html"])
def test_every_asset_of_a_page_is_served_by_gridlink(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = [url for url in ASSET.findall(page.text) if not url.startswith(("https://pygeoapi.io",))]
    assert assets or path == "/docs/oauth2-redirect"
    public = client.app.state.api_settings.base_url()  # pygeoapi's links are absolute, on the public URL
    for url in assets:
        local = url.removeprefix(public)
        assert local.startswith("/"), f"{path} loads {url} from elsewhere"
        if not re.search(r"/(openapi|collections|conformance)\b|\?", local):  # a stylesheet, script or image
            assert client.get(local).status_code == 200, f"{path} loads {url}, which answers no 200"


def test_an_item_page_has_its_map_and_properties(client: TestClient) -> None:
    items = client.get("/ogc/collections/grids/items", params={"f": "json", "limit": 1}).json()
    first = items["features"][0]["id"]
    page = client.get(f"/ogc/collections/grids/items/{first}", params={"f": "html"}).text
    assert 'id="gl-map"' in page and "data-features=" in page and "gl-properties" in page


def test_the_docs_pages_set_a_policy_with_no_other_origin(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        policy = client.get(path).headers["content-security-policy"]
        assert "http" not in policy and "img-src 'self' data:;" in policy


def test_the_vendored_files_match_the_checksums_of_the_vendor_readme() -> None:
    listed = dict(reversed(line.split("  ", 1)) for line in (VENDOR / "README.md").read_text().splitlines()
                  if re.fullmatch(r"[0-9a-f]{64}  \S+", line))
    for name in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "redoc/redoc.standalone.js",
                 "bootstrap/bootstrap.min.css", "swagger-ui/LICENSE", "redoc/LICENSE", "bootstrap/LICENSE"):
        assert listed[name] == hashlib.sha256((VENDOR / name).read_bytes()).hexdigest(), name
    on_disk = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file() and p.name != "README.md"}
    assert on_disk == set(listed), "every vendored file is listed with its checksum, and only those"
