"""Issue 22 item 5: two ``gridlink serve`` processes on one database give the same answers — a case tile after
a write through the other process (tile generations are read from the database with every tile), and a token
revoked through the other process (announced by NOTIFY to every process's token cache)."""

from __future__ import annotations

import math
from contextlib import ExitStack

from sqlalchemy import Engine

from spatial.access.accounts import add_user, create_token
from tests.live import serving
from tests.standby import PASSWORD, eventually, report, request

LON, LAT, Z = 120.101, 31.151, 12  # inside the world (tests/world.py); report(0) lands in the same tile


def _tile_path(lon: float, lat: float, z: int) -> str:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/tiles/cases/{z}/{x}/{y}.mvt"


def test_two_servers_agree_on_tiles_after_a_write_and_on_tokens_after_a_revocation(world_engine: Engine,
                                                                                     no_cases) -> None:
    with world_engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM api_token WHERE account_id IN "
                             "(SELECT id FROM account WHERE login = 'two.servers')")
        conn.exec_driver_sql("DELETE FROM account WHERE login = 'two.servers'")
        add_user(conn, "two.servers", role="admin", scope="*", password=PASSWORD)
        token = create_token(conn, "two.servers", ttl=None)[0]
    url = world_engine.url.render_as_string(hide_password=False)
    with ExitStack() as stack:
        first, second = (stack.enter_context(serving(url)) for _ in range(2))
        path = _tile_path(LON, LAT, Z)
        before = [request(port, "GET", path, token) for port in (first, second)]
        assert [status for status, _, _ in before] == [204, 204]  # no case yet: both cache the empty tile

        location = {"type": "Point", "coordinates": [LON, LAT]}
        status, _, body = request(first, "POST", "/api/v1/cases", token, {**report(0), "location": location})
        assert status == 201, body
        after = [request(port, "GET", path, token) for port in (first, second)]
        assert [status for status, _, _ in after] == [200, 200]  # the other process saw the write at once
        assert after[0][2] == after[1][2] and after[0][1]["etag"] == after[1][1]["etag"]

        # the token is cached by both processes …
        for port in (first, second):
            assert request(port, "GET", "/api/v1/auth/session", token)[0] == 200
        # … revoked through the first …
        assert request(first, "DELETE", "/api/v1/auth/token", token)[0] == 204
        assert request(first, "GET", "/api/v1/auth/session", token)[0] == 401
        # … and refused by the second once the announcement arrives (NOTIFY on commit: milliseconds), long before
        # its cached entry would expire (PRINCIPAL_TTL_S)
        eventually(lambda: request(second, "GET", "/api/v1/auth/session", token)[0] == 401,
                   "the second server drops the revoked token", within_s=10)  # its cache TTL is 30 s
        for _ in range(3):
            assert request(second, "GET", path, token)[0] == 401
