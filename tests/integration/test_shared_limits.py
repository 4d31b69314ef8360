"""Issue 22 item 5: the login back-off and the public rate limit counted once for every server process
(``GRIDLINK_API_LIMITS=database``, spatial/access/limits.py): two throttles on one database — as two processes
have — share their counts, concurrent attempts are counted one after the other, and two ``gridlink serve``
processes behind one address refuse the guess that either alone would have refused."""

from __future__ import annotations

import http.client
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from sqlalchemy import Engine, text

from spatial.access.accounts import add_user
from spatial.access.limits import SharedLoginThrottle, SharedRateLimiter
from tests.live import serving
from tests.standby import PASSWORD


@pytest.fixture
def counters(world_engine: Engine) -> Engine:
    with world_engine.begin() as conn:
        conn.execute(text("TRUNCATE rate_counter"))
    return world_engine


def test_two_throttles_share_a_logins_failures(counters: Engine) -> None:
    one, two = (SharedLoginThrottle(lambda: counters, free_per_login=3, free_per_client=100) for _ in range(2))
    waits = [(one if n % 2 else two).attempt("Shared.Login", "10.0.0.1") for n in range(5)]
    assert waits[:3] == [0.0] * 3 and all(w > 0 for w in waits[3:])  # the 4th, on either, waits
    assert 0 < waits[3] <= 1.0 and one.locked("shared.login", "10.0.0.2")  # names case-folded, per login too
    assert two.attempt("another.login", "10.0.0.1") == 0.0  # another login from the address still may
    two.succeeded("another.login", "10.0.0.1")
    with counters.connect() as conn:
        rows = dict(conn.execute(text("SELECT key, value FROM rate_counter")).all())
    assert rows == {"login:shared.login": 3, "client:10.0.0.1": 3}  # the success gave its attempt back
    one.succeeded("shared.login", "10.0.0.1")  # a success forgets the login's failures
    assert two.attempt("shared.login", "10.0.0.1") == 0.0


def test_concurrent_guesses_on_two_throttles_are_counted_one_after_the_other(counters: Engine) -> None:
    throttles = [SharedLoginThrottle(lambda: counters, free_per_login=5, free_per_client=100) for _ in range(2)]
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda n: throttles[n % 2].attempt("burst.login", "10.0.0.9"), range(16)))
    assert sum(w == 0.0 for w in waits) == 5  # exactly the free failures went through, whichever process


def test_two_limiters_share_a_bucket(counters: Engine) -> None:
    one, two = (SharedRateLimiter(lambda: counters, per_minute=0.6, burst=3) for _ in range(2))
    waits = [(one if n % 2 else two).take("192.0.2.7") for n in range(5)]
    assert waits[:3] == [0.0] * 3
    assert all(90 < w <= 100 for w in waits[3:])  # one token per 100 s
    assert one.take("192.0.2.8") == 0.0  # another address has its own bucket


def _login(port: int, password: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/auth/token", urllib.parse.urlencode({"username": "two.limits", "password": password}),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    status = conn.getresponse().status
    conn.close()
    return status


def test_two_servers_back_off_together(counters: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with counters.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE account_id IN"
                          " (SELECT id FROM account WHERE login = 'two.limits')"))
        conn.execute(text("DELETE FROM account WHERE login = 'two.limits'"))
        add_user(conn, "two.limits", role="dispatcher", scope="320506", password=PASSWORD)
    monkeypatch.setenv("GRIDLINK_API_LIMITS", "database")
    monkeypatch.setenv("GRIDLINK_API_LOGIN_BACKOFF_BASE_S", "600")  # no back-off runs out during the test
    url = counters.url.render_as_string(hide_password=False)
    with ExitStack() as stack:
        ports = [stack.enter_context(serving(url)) for _ in range(2)]
        statuses = [_login(ports[n % 2], f"wrong guess {n}") for n in range(8)]
        # five failures in a row are free (GRIDLINK_API_LOGIN_FREE_FAILURES), counted across both processes:
        # alone, each process would have let eight through
        assert statuses == [401] * 5 + [429] * 3
        assert _login(ports[0], PASSWORD) == 429 and _login(ports[1], PASSWORD) == 429
