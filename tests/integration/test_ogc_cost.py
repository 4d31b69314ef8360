"""Cost limits on /ogc (SECURITY.md "Cost limits on /ogc"; issue 23, findings 6 and 11) on the known-answer
world: odd languages fall back to the default, CQL2 filters are bounded (vertices, predicates no index can
serve on the large collections), a statement over the time budget is a 503 OGC exception, and one caller's
expensive requests cannot take every thread that serves /ogc.

No assertion here reads a clock: slow statements are made by holding a table lock in another transaction
(a statement waiting for a lock counts against ``statement_timeout`` like one that computes), and the tests
wait for conditions (backends waiting on that lock), with generous timeouts only so that a failure does not
hang the run.
"""

from __future__ import annotations

import math
import urllib.parse

import pytest
from fastapi.testclient import TestClient


def ring(vertices: int, lon: float = 120.06, lat: float = 31.17, radius: float = 0.005) -> str:
    """A closed polygon (WKT) with ``vertices`` distinct vertices around a point of grid 320506001001002."""
    points = [(lon + radius * math.cos(2 * math.pi * i / vertices), lat + radius * math.sin(2 * math.pi * i / vertices))
              for i in range(vertices)]
    points.append(points[0])
    return "POLYGON((" + ",".join(f"{x:.6f} {y:.6f}" for x, y in points) + "))"


def _ogc_exception(reply, status: int, code: str) -> dict:
    """The OGC API exception JSON of ``reply``, checked for ``status`` and ``code``."""
    assert reply.status_code == status, reply.text[:500]
    assert reply.headers["content-type"].startswith("application/json"), reply.headers["content-type"]
    body = reply.json()
    assert body["code"] == code, body
    return body


# --- finding 11: Accept-Language and ?lang= ------------------------------------------------------------------

ODD_LANGUAGES = ["fr", "*", "garbage!!", "", "x" * 300, "fr-FR,de;q=0.8", "de-DE;q=oops", "zh", "zh-CN", "zh-TW",
                 "en", "en-GB", "en-US,en;q=0.9"]
OGC_PAGES = ["/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/grids",
             "/ogc/collections/grids/queryables", "/ogc/collections/grids/items?limit=2",
             "/ogc/collections/grids/items/320506001001002", "/ogc/collections/grids/items?f=html&limit=1"]


@pytest.mark.parametrize("value", ODD_LANGUAGES)
def test_any_language_falls_back_to_the_default(world_client: TestClient, value: str) -> None:
    english = value.startswith("en")
    for path in OGC_PAGES:
        for reply in (world_client.get(path, headers={"Accept-Language": value}),
                      world_client.get(path + ("&" if "?" in path else "?") + urllib.parse.urlencode({"lang": value}))):
            assert reply.status_code == 200, (path, value, reply.text[:300])
            assert reply.headers["content-language"] == ("en-US" if english else "zh"), (path, value)
            if "f=html" not in path:
                assert isinstance(reply.json(), dict)
