"""The live feed (issue 17 item 6): ``GET /api/v1/events/stream`` on a real server (uvicorn, SSE over HTTP) and
real PostGIS. A client that drops and reconnects with ``Last-Event-ID`` during 1,000 actions receives each event
exactly once; a transaction that took an earlier id but commits later is not skipped; scope and filters hold."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from spatial.access.accounts import add_user, create_token
from spatial.access.principal import Principal
from spatial.cases.actions import ActionInput, act
from spatial.cases.feed import FeedEvent
from spatial.cases.intake import create_case
from spatial.cases.schemas import CASE_CREATE
from tests.conftest import admin_headers
from tests.live import serving
from tests.world import DISTRICT

ADMIN = Principal(1, "feed.admin", "admin", "*")
TOWN1 = f"{DISTRICT}001"
STEPS = [("register", {}), ("dispatch", {}), ("handle", {}), ("check", {"result": "pass"}), ("close", {})]


@pytest.fixture(scope="module")
def server(world_engine) -> Iterator[str]:
    """A live server on the world (streams last 2 s, so the server ends streams too)."""
    url = world_engine.url.render_as_string(hide_password=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("GRIDLINK_API_FEED_MAX_SECONDS", "2")
    with serving(url) as port:
        yield f"http://127.0.0.1:{port}"
    mp.undo()


@pytest.fixture(scope="module")
def town_token(world_engine) -> str:
    """A dispatcher of town 001."""
    with world_engine.begin() as conn:
        add_user(conn, "feed.town", role="dispatcher", scope=TOWN1, password="a long enough password")
        return create_token(conn, "feed.town")[0]


class Follower:
    """An SSE client that keeps what it receives and reconnects with the last id it saw."""

    def __init__(self, base: str, headers: dict[str, str], query: str = "", drop_every: int | None = None) -> None:
        self.base, self.headers, self.query, self.drop_every = base, headers, query, drop_every
        self.received: list[dict] = []
        self.connections = 0
        self.errors: list[Exception] = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.rng = random.Random(17)

    def run(self) -> None:
        """Follow until stopped, reconnecting after a drop (ours) or the end of a stream (the server's)."""
        with httpx.Client(timeout=httpx.Timeout(30, connect=10)) as http:
            while not self.stop.is_set():
                try:
                    self._one_stream(http)
                except Exception as exc:  # the test asserts there was none
                    self.errors.append(exc)
                    return

    def _one_stream(self, http: httpx.Client) -> None:
        headers = dict(self.headers)
        if self.received:
            headers["Last-Event-ID"] = str(self.received[-1]["id"])
        quota = self.rng.randint(1, self.drop_every) if self.drop_every else None
        with http.stream("GET", f"{self.base}/api/v1/events/stream{self.query}", headers=headers) as reply:
            assert reply.status_code == 200, reply.read()
            assert reply.headers["content-type"].startswith("text/event-stream")
            self.connections += 1
            message: dict[str, str] = {}
            for line in reply.iter_lines():
                if line.startswith("retry:"):
                    self.ready.set()  # subscribed: the server sends this after registering the stream
                elif line.startswith("id: "):
                    message["id"] = line[4:]
                elif line.startswith("data: "):
                    message["data"] = line[6:]
                elif line == "" and message:
                    event = json.loads(message.pop("data"))
                    assert str(event["id"]) == message.pop("id")
                    self.received.append(event)
                    if quota is not None:
                        quota -= 1
                        if quota <= 0:
                            return  # drop the connection in the middle of the feed
                if self.stop.is_set():
                    return


def _follow(follower: Follower) -> threading.Thread:
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    assert follower.ready.wait(30), "the stream never started"
    return thread


def _walk(engine, reference, index: int) -> None:
    """One case reported and taken to closure: six events, each action its own transaction."""
    rng = random.Random(index)
    lon, lat = 120.001 + rng.random() * 0.398, 31.001 + rng.random() * 0.198
    report = CASE_CREATE.validate_python({"category": "E010101", "source": "inspector", "description": f"feed {index}",
                                        "location": {"type": "Point", "coordinates": [lon, lat]}})
    with engine.begin() as conn:
        case = create_case(conn, reference, report, actor=None)[0]
    if case["state"] == "voided":  # a duplicate of a nearby case: its trail ends there
        return
    revision = 1
    for action, data in STEPS:
        with engine.begin() as conn:
            revision = act(conn, reference, case["id"], action, ActionInput(note="n", data=data), by=ADMIN,
                           expected_revision=revision).revision


def _events_since(engine, after: int, where: str = "TRUE") -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            f'SELECT e.id FROM case_event e JOIN "case" c ON c.id = e.case_id WHERE e.id > :a AND {where}'
            " ORDER BY e.id"), {"a": after}).scalars())


def _wait_until(follower: Follower, expected: list[int]) -> None:
    """Let the follower catch up with ``expected`` (bounded: a failure, not a speed check, if it never does)."""
    for _ in range(600):
        if len(follower.received) >= len(expected):
            break
        follower.stop.wait(0.1)
    follower.stop.set()


def test_a_client_that_drops_and_reconnects_during_1000_actions_gets_each_event_once(
        world_engine, no_cases, reference, server, town_token) -> None:
    with world_engine.connect() as conn:
        start = conn.execute(text("SELECT coalesce(max(id), 0) FROM case_event")).scalar_one()
    dropper = Follower(server, admin_headers(), drop_every=60)
    town = Follower(server, {"Authorization": f"Bearer {town_token}"}, query="?state=closed,dispatched&grade=A,B,C")
    threads = [_follow(dropper), _follow(town)]
    with ThreadPoolExecutor(4) as pool:  # four writers at once: ids commit out of order
        list(pool.map(lambda i: _walk(world_engine, reference, i), range(175)))
    everything = _events_since(world_engine, start)
    assert len(everything) >= 1000
    _wait_until(dropper, everything)
    town_expected = _events_since(world_engine, start, f"c.grid_code LIKE '{TOWN1}%'"
                                  " AND e.kind IN ('dispatch', 'close')")
    _wait_until(town, town_expected)
    for thread in threads:
        thread.join(40)
    assert dropper.errors == [] and town.errors == []
    got = [e["id"] for e in dropper.received]
    assert len(got) == len(set(got)), "an event came twice"
    assert sorted(got) == everything, "an event was missed"
    assert dropper.connections > 10  # it really dropped and resumed, many times
    town_got = [e["id"] for e in town.received]
    assert sorted(town_got) == town_expected and len(town_got) == len(set(town_got))
    assert {e["state"] for e in town.received} == {"closed", "dispatched"}
    assert all(e["grid_code"].startswith(TOWN1) for e in town.received)


def test_an_earlier_id_that_commits_later_is_not_skipped(world_engine, no_cases, reference, server) -> None:
    with world_engine.begin() as conn:
        ids = [create_case(conn, reference, CASE_CREATE.validate_python(
            {"category": "E010101", "source": "inspector",
             "location": {"type": "Point", "coordinates": [120.01 + 0.1 * i, 31.05]}}), actor=None)[0]["id"]
            for i in range(2)]
    follower = Follower(server, admin_headers())
    thread = _follow(follower)
    first, second = world_engine.connect(), world_engine.connect()
    with first.begin() as slow:
        act(first, reference, ids[0], "register", ActionInput(), by=ADMIN, expected_revision=1)  # takes id n
        with second.begin():
            act(second, reference, ids[1], "register", ActionInput(), by=ADMIN, expected_revision=1)  # n + 1
        follower.stop.wait(1.0)  # several polls see n + 1 committed while n is still open
        assert slow.is_active
    first.close(), second.close()
    expected = _events_since(world_engine, 0, "e.kind = 'register'")
    _wait_until(follower, expected)
    thread.join(40)
    assert follower.errors == []
    # Both registrations, once, n first (the reports written before the follower connected may reach it too:
    # the server's poller can still stand before them, ids restarting with each test's empty world).
    assert [e["id"] for e in follower.received if e["kind"] == "register"] == expected


def test_refusals_are_problems(server, town_token) -> None:
    town = {"Authorization": f"Bearer {town_token}"}
    with httpx.Client(base_url=server, timeout=10) as http:
        assert http.get("/api/v1/events/stream").status_code == 401
        outside = http.get("/api/v1/events/stream?area=320506002", headers=town)
        assert outside.status_code == 403 and outside.headers["content-type"] == "application/problem+json"
        for query in ("?state=open", "?grade=Z", "?area=12x"):
            bad = http.get(f"/api/v1/events/stream{query}", headers=town)
            assert bad.status_code == 400, (query, bad.text)
        for last in ("abc", "999999999", "-1"):
            bad = http.get("/api/v1/events/stream", headers={**town, "Last-Event-ID": last})
            assert bad.status_code == 400 and bad.json()["parameter"] == "Last-Event-ID", bad.text


def test_a_message_is_one_data_line_whatever_the_text() -> None:
    from datetime import UTC, datetime

    from api.routes.events import sse_message

    event = FeedEvent(7, 1, 3, datetime(2026, 1, 1, tzinfo=UTC), "handle", "handled", "a\nb\r\nc\rd", None,
                      "320506001001001", (), "LIGHTING", "E010101", "B")
    lines = sse_message(event).decode().split("\n")
    assert lines[0] == "id: 7" and lines[1].startswith("data: ") and lines[2:] == ["", ""]
    assert json.loads(lines[1][6:])["actor"] == "a\nb\r\nc\rd"
