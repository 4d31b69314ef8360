"""Compressed replies (issue 24, item 6): gzip where the client accepts it — the map's first load, API
replies, OGC pages, documentation assets — and never on the live feed, which must reach its client event by
event (an SSE stream behind a compressor would wait for its buffer to fill)."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import admin_headers
from tests.live import serving

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}
FIRST_LOAD = ["/", "/static/common/shell.js", "/static/common/common.css", "/static/console/console.js",
              "/static/console/map.js", "/static/console/console.css", "/static/vendor/maplibre-gl/maplibre-gl.mjs",
              "/static/vendor/maplibre-gl/maplibre-gl-worker.mjs", "/static/vendor/maplibre-gl/maplibre-gl.css",
              "/api/v1/stats"]


def _raw(client: TestClient, path: str, headers: dict[str, str]) -> httpx.Response:
    with client.stream("GET", path, headers=headers) as reply:
        reply.raw = b"".join(reply.iter_raw())  # type: ignore[attr-defined]  # the bytes on the wire
    return reply


@pytest.mark.parametrize("path", [*FIRST_LOAD, "/ogc/collections/grids/items?limit=50", "/openapi.json",
                                  "/static/vendor/swagger-ui/swagger-ui-bundle.js", "/tiles/grids.json",
                                  "/ogc/collections?f=html"])
def test_replies_are_gzipped_when_the_client_accepts_it(client: TestClient, path: str) -> None:
    plain, packed = _raw(client, path, IDENTITY), _raw(client, path, GZIP)
    assert plain.status_code == packed.status_code == 200
    if len(plain.raw) < 1024:  # GRIDLINK_API_GZIP_MIN_BYTES: not worth it
        assert "content-encoding" not in packed.headers
        return
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip" and "accept-encoding" in packed.headers["vary"].lower()
    assert len(packed.raw) < len(plain.raw)
    unpacked = gzip.decompress(packed.raw)
    if "json" in plain.headers["content-type"]:  # an OGC page carries the time it was made
        assert _timeless(json.loads(unpacked)) == _timeless(json.loads(plain.raw))
    else:
        assert unpacked == plain.raw


def _timeless(document: object) -> object:
    return {k: v for k, v in document.items() if k != "timeStamp"} if isinstance(document, dict) else document


def test_the_first_map_load_shrinks(client: TestClient) -> None:
    plain = sum(len(_raw(client, path, IDENTITY).raw) for path in FIRST_LOAD)
    packed = sum(len(_raw(client, path, GZIP).raw) for path in FIRST_LOAD)
    print(f"first map load on the test world: {plain:,} bytes raw, {packed:,} gzipped")
    assert packed * 2 < plain


@pytest.fixture(scope="module")
def server(world_engine: Engine) -> Iterator[str]:
    with serving(world_engine.url.render_as_string(hide_password=False)) as port:
        yield f"http://127.0.0.1:{port}"


def test_the_live_feed_is_neither_compressed_nor_buffered(server: str, no_cases: None) -> None:
    """The stream, asked for with Accept-Encoding: gzip, comes uncompressed, and an event reaches the client
    while the stream is open: were it buffered, the read would wait until the read timeout and fail."""
    headers = {**admin_headers(), **GZIP}
    with httpx.Client(base_url=server, timeout=httpx.Timeout(20, connect=10)) as http, \
            http.stream("GET", "/api/v1/events/stream", headers=headers) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("retry:"))  # subscribed

        def report() -> None:
            with httpx.Client(base_url=server, headers=admin_headers()) as other:
                made = other.post("/api/v1/cases", json={"category": "E010101", "location": {
                    "type": "Point", "coordinates": [120.06, 31.17]}})
                assert made.status_code == 201

        reporter = threading.Thread(target=report)
        reporter.start()
        data = next(line for line in lines if line.startswith("data: "))
        reporter.join()
        assert json.loads(data[6:])["kind"] == "report"


def test_static_assets_are_compressed_once_and_kept(client: TestClient) -> None:
    """A page asset is gzip-compressed once per process (api/app.py ``gzipped_asset``), not on every request;
    a range request and a revalidation get what they asked for."""
    from api.app import gzipped_asset

    path = "/static/vendor/maplibre-gl/maplibre-gl.mjs"
    first = _raw(client, path, GZIP)
    hits = gzipped_asset.cache_info().hits
    again = _raw(client, path, GZIP)
    assert gzipped_asset.cache_info().hits == hits + 1  # the second reply reused the first one's bytes
    assert first.raw == again.raw and first.headers["content-encoding"] == "gzip"
    assert first.headers["content-security-policy"] == again.headers["content-security-policy"]
    assert "accept-encoding" in first.headers["vary"].lower()
    assert int(first.headers["content-length"]) == len(first.raw)
    plain = _raw(client, path, IDENTITY).raw
    assert gzip.decompress(first.raw) == plain
    part = client.get(path, headers={**GZIP, "Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == plain[:100]  # a range is of the file itself
    assert client.get(path, headers={**GZIP, "If-None-Match": first.headers["etag"]}).status_code == 304
