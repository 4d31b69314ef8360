"""Response headers (issue 23): security headers on pages and API replies (finding 14), and links, redirects
and client addresses that come from configuration, not from what a client claims (finding 13)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from web.pages import PAGE_CSP, STATIC_DIR


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.parametrize("path", ["/", "/static/console/console.js", "/api/v1/health", "/api/v1/locate?lon=1&lat=1",
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
    # The only thing fetched from elsewhere: the optional online base map's tiles (MapLibre fetches them).
    origin = re.search(r'data-base-map="([^"]+)"', page.text).group(1)
    assert origin in policy["img-src"] and origin in policy["connect-src"], f"tiles of {origin} would be blocked"
    assert (STATIC_DIR / "console" / "console.js").is_file()


# -- finding 13: the configured public URL, never the Host header; forwarding headers only from proxies -----

PUBLIC = "https://grid.example.cn"


@pytest.fixture(scope="module")
def public_client(world_engine):
    from api.app import create_app
    from api.settings import ApiSettings

    app = create_app(api_settings=ApiSettings(public_url=PUBLIC + "/"),
                     url=world_engine.url.render_as_string(hide_password=False))
    with TestClient(app, follow_redirects=False, headers={"Host": "evil.example"}) as client:
        yield client


def test_links_use_the_public_url_not_the_host_header(public_client: TestClient) -> None:
    discovery = public_client.get("/open311/v2/discovery.json").json()
    assert [e["url"] for e in discovery["endpoints"]] == [PUBLIC + "/open311/v2"]
    tilejson = public_client.get("/tiles/grids.json").json()
    assert tilejson["tiles"] == [PUBLIC + "/tiles/grids/{z}/{x}/{y}.mvt"]
    assert "evil.example" not in public_client.get("/ogc/?f=json").text


@pytest.mark.parametrize(("path", "target"), [("/ogc", "/ogc/"), ("/ogc?f=html", "/ogc/?f=html"),
                                              ("/api/v1/health/", "/api/v1/health"), ("/static", "/static/")])
def test_redirects_point_at_the_public_url(public_client: TestClient, path: str, target: str) -> None:
    reply = public_client.get(path)
    assert reply.is_redirect and reply.headers["location"] == PUBLIC + target


def _submit(port: int, forwarded_for: str) -> int:
    import http.client
    from urllib.parse import urlencode

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/open311/v2/requests.json", urlencode({
        "service_code": "E010101", "lat": "31.17", "long": "120.06", "description": "路边暴露垃圾"}),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": forwarded_for})
    status = connection.getresponse().status
    connection.close()
    return status


def test_forwarded_for_is_ignored_unless_the_peer_is_a_configured_proxy(world_engine, no_cases, monkeypatch) -> None:
    """The public rate limit keys on the client address: a client on the same machine (the finding: any loopback
    peer) must not pick a fresh address per request with X-Forwarded-For."""
    from tests.live import serving

    url = world_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("GRIDLINK_API_PUBLIC_PER_MINUTE", "1")
    monkeypatch.setenv("GRIDLINK_API_PUBLIC_BURST", "2")
    monkeypatch.delenv("GRIDLINK_API_TRUSTED_PROXIES", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    with serving(url) as port:
        assert [_submit(port, f"203.0.113.{n}") for n in range(3)] == [201, 201, 429]
    monkeypatch.setenv("GRIDLINK_API_TRUSTED_PROXIES", "127.0.0.1")  # behind a proxy on this machine
    with serving(url) as port:
        assert [_submit(port, f"198.51.100.{n}") for n in range(3)] == [201, 201, 201]
        assert [_submit(port, "198.51.100.77") for _ in range(3)] == [201, 201, 429]
