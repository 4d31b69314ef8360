"""Response headers (issue 23): security headers on pages and API replies (finding 14), and links, redirects
and client addresses that come from configuration, not from what a client claims (finding 13)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from web.pages import PAGE_CSP, STATIC_DIR


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/v1/health", "/api/v1/locate?lon=1&lat=1",
                                  "/open311/v2/services.json", "/open311/v2/services.xml", "/ogc/?f=json",
                                  "/ogc/?f=html", "/tiles/grids.json", "/api/v1/no-such-route", "/docs"])
def test_every_reply_carries_the_security_headers(client: TestClient, path: str) -> None:
    reply = client.get(path)
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["referrer-policy"] in ("no-referrer", "strict-origin-when-cross-origin")
    policy = _directives(reply.headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src" if "object-src" in policy
                                                              else "default-src"] == ["'none'"]
    if not reply.headers["content-type"].startswith("text/html"):
        assert policy["default-src"] == ["'none'"]  # an API reply loads nothing, ever


def test_the_map_page_policy_is_strict_and_allows_what_the_page_loads(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-security-policy"] == PAGE_CSP
    policy = _directives(PAGE_CSP)
    assert policy["default-src"] == ["'self'"] and policy["base-uri"] == ["'none'"]
    assert all("unsafe" not in value for values in policy.values() for value in values)  # no inline script
    assert not re.search(r"<script(?![^>]*\ssrc=)", page.text), "an inline script would be blocked"
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert src.startswith("/"), f"{src} is not served by gridlink itself"
    # The only thing fetched from elsewhere: the OpenStreetMap base map's tiles (images).
    for url in re.findall(r"'(https://[^']+)'", (STATIC_DIR / "app.js").read_text(encoding="utf-8")):
        if "{z}" in url:
            origin = "/".join(url.split("/")[:3])
            assert origin in policy["img-src"], f"tiles of {origin} would be blocked"
