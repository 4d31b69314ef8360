"""Logging in under attack (issue 23, finding 7): failed logins are throttled per login and per client
address (429 with Retry-After, exponential back-off), the password hash is verified while no pooled database
connection is held and only a few at a time, and failed logins are audited."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from spatial.access import accounts

PASSWORD = "correct horse battery staple"
LOGINS = ("throttle.a", "throttle.b", "throttle.c")


class FrozenClock:
    """The throttle's clock, moved only by the test (no wall-clock thresholds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def login_app(world_engine):
    from api.app import create_app

    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM account WHERE login = ANY(:l)"), {"l": list(LOGINS)})
        for login in LOGINS:
            accounts.add_user(conn, login, role="dispatcher", scope="320506", password=PASSWORD)
    with TestClient(create_app(url=world_engine.url.render_as_string(hide_password=False))) as client:
        clock = FrozenClock()
        if hasattr(client.app.state, "login_throttle"):
            client.app.state.login_throttle.clock = clock
        yield client, clock


def _login(client: TestClient, login: str, password: str) -> int:
    return client.post("/api/v1/auth/token", data={"username": login, "password": password}).status_code


def test_wrong_passwords_then_the_right_one_is_throttled(login_app) -> None:
    client, clock = login_app
    statuses = [_login(client, "throttle.a", f"wrong guess number {n}") for n in range(25)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    refused = client.post("/api/v1/auth/token", data={"username": "throttle.a", "password": PASSWORD})
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert _login(client, "throttle.b", PASSWORD) == 200  # another login from the same address still may
    clock.now += int(refused.headers["retry-after"])  # the back-off has passed: the right password works
    assert _login(client, "throttle.a", PASSWORD) == 200
    assert _login(client, "throttle.a", "wrong again, once") == 401  # a success clears the login's failures


def test_the_back_off_doubles(login_app) -> None:
    client, clock = login_app
    waits = []
    for _ in range(5):
        assert _login(client, "throttle.a", "wrong guess again") == 401
    for _ in range(4):
        refused = client.post("/api/v1/auth/token", data={"username": "throttle.a", "password": "x" * 12})
        waits.append(int(refused.headers["retry-after"]))
        clock.now += waits[-1]
        assert _login(client, "throttle.a", "wrong guess again") == 401
    assert waits == [waits[0] * 2 ** n for n in range(4)]


def test_one_address_trying_many_logins_is_throttled(login_app) -> None:
    client, _ = login_app
    statuses = [_login(client, f"nobody{n:03d}", "wrong password guess") for n in range(40)]
    assert 401 in statuses and statuses[-1] == 429  # spraying one password over many logins
    assert _login(client, "throttle.c", PASSWORD) == 429  # that address waits, even with a right password


def test_the_hash_is_verified_outside_any_pooled_connection(login_app, monkeypatch) -> None:
    client, _ = login_app
    engine = client.app.state.engine
    held: list[int] = []

    class Watching(type(accounts._HASHER)):
        def verify(self, hash, password):
            held.append(engine.pool.checkedout())
            return super().verify(hash, password)

    monkeypatch.setattr(accounts, "_HASHER", Watching())
    assert _login(client, "throttle.b", PASSWORD) == 200
    assert _login(client, "throttle.b", "a wrong password") == 401
    assert _login(client, "nobody-at-all", "a wrong password") == 401
    assert held == [0, 0, 0]


def test_hashing_is_bounded_and_a_flood_is_told_to_come_back(login_app, monkeypatch) -> None:
    """At most ``login_hash_concurrency`` hashes at once (argon2id takes 64 MiB each), a few more waiting;
    beyond that a login is answered 429 at once instead of piling up threads and memory."""
    client, _ = login_app
    state = client.app.state
    entered, release = threading.Semaphore(0), threading.Event()

    class Blocking(type(accounts._HASHER)):
        def verify(self, hash, password):
            entered.release()
            release.wait(60)
            return super().verify(hash, password)

    monkeypatch.setattr(accounts, "_HASHER", Blocking())
    capacity = state.api_settings.login_hash_concurrency + state.api_settings.login_hash_queue
    with ThreadPoolExecutor(capacity) as pool:
        running = [pool.submit(_login, client, LOGINS[n % 3], f"wrong guess {n:04d}") for n in range(capacity)]
        for _ in range(state.api_settings.login_hash_concurrency):
            assert entered.acquire(timeout=60)
        while state.login_gate.waiting < state.api_settings.login_hash_queue:
            threading.Event().wait(0.01)
        busy = client.post("/api/v1/auth/token", data={"username": "throttle.c", "password": PASSWORD})
        release.set()
        assert [f.result() for f in running] == [401] * capacity
    assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
    assert "being checked right now" in busy.json()["detail"]
    assert client.get("/api/v1/health").status_code == 200


def test_failed_logins_are_audited(login_app, world_engine) -> None:
    client, _ = login_app
    with world_engine.connect() as conn:
        start = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    for _ in range(5):
        _login(client, "throttle.c", "wrong password guess")
    _login(client, "no\x00such login", "wrong password guess")
    with world_engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, action, target, client, detail FROM audit_log WHERE id > :s"
                                 " ORDER BY id"), {"s": start}).all()
    assert [r.action for r in rows] == ["login.fail"] * 6
    assert [r.target for r in rows] == ["throttle.c"] * 5 + [None]  # a login no account can have is not kept
    assert {r.client for r in rows} == {"testclient"}
    assert [r.detail["locked"] for r in rows] == [False] * 4 + [True, False]
    assert all(PASSWORD not in str(r) and "wrong password guess" not in str(r) for r in rows)
