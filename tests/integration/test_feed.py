"""The live feed (issue 17 item 6): ``GET /api/v1/events/stream`` on a real server (uvicorn, SSE over HTTP) and
real PostGIS. A client that drops and reconnects with ``Last-Event-ID`` during 1,000 actions receives each event
exactly once; a transaction that took an earlier id but commits later is not skipped; scope and filters hold,
and an assisting unit follows the cases it assists on. The per-process follower's fan-out: subscribers with the
same filter share one batch per poll page, others get theirs; a client too slow for its backlog is cut off and
its backlog dropped."""

from __future__ import annotations

import asyncio
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
from spatial.cases.feed import Feed, FeedEvent, FeedFilter
from spatial.cases.intake import create_case
from spatial.cases.schemas import CASE_CREATE
from tests.conftest import admin_headers
from tests.live import serving
from tests.world import DISTRICT, fresh_accounts

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
    """Let the follower catch up with ``expected`` (bounded: a failure, not a speed check, if it never does).
    Waits for those events, not for as many events: a follower may also receive events written before it
    connected (CI once stopped one that had the two reports of its test, before their registrations came)."""
    wanted = set(expected)
    for _ in range(600):
        if wanted <= {e["id"] for e in list(follower.received)}:
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


def _report(engine, reference, n: int, lon: float = 120.01) -> list[int]:
    """``n`` reports (each its own transaction) far enough apart not to be duplicates; their event ids."""
    ids = []
    for i in range(n):
        with engine.begin() as conn:
            case = create_case(conn, reference, CASE_CREATE.validate_python(
                {"category": "E010101", "source": "inspector", "description": f"fan-out {i}",
                 "location": {"type": "Point", "coordinates": [lon + 0.011 * (i % 30), 31.02 + 0.005 * (i // 30)]}}),
                actor=None)[0]
            ids.append(conn.execute(text("SELECT id FROM case_event WHERE case_id = :c AND kind = 'report'"),
                                    {"c": case["id"]}).scalar_one())
    return ids


def _drain(sub) -> list:
    """The batches queued for ``sub``, taken out (its backlog back to none)."""
    batches = []
    while not sub.queue.empty():
        batches.append(sub.queue.get_nowait())
    sub.queued = 0
    return batches


async def _until(condition, bound_s: float = 30) -> None:
    """Wait for ``condition()`` (bounded: a failure, not a speed check, if it never holds)."""
    for _ in range(int(bound_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the follower never got there")


def test_one_follower_fans_out_shared_batches_and_cuts_off_a_slow_client(world_engine, no_cases,
                                                                            reference) -> None:
    town = Principal(2, "feed.town.b", "dispatcher", TOWN1)

    async def scenario() -> None:
        feed = Feed(world_engine, reference, interval=0.05, queue_size=5)
        try:
            a, b = [await feed.subscribe(FeedFilter(ADMIN), None) for _ in range(2)]
            in_town = await feed.subscribe(FeedFilter(town), None)
            other = await feed.subscribe(FeedFilter(Principal(3, "feed.admin.2", "admin", "*")), None)
            first = await asyncio.to_thread(_report, world_engine, reference, 3)  # towns 001 and beyond
            await _until(lambda: a.queued == 3 and other.queued == 3)
            batches = {name: _drain(sub) for name, sub in (("a", a), ("b", b), ("other", other), ("town", in_town))}
            # Same filter (scope, area, states, grades), even from another account: the same lists for all.
            assert all(x is y is z for x, y, z in zip(batches["a"], batches["b"], batches["other"], strict=True))
            assert [e.id for batch in batches["a"] for e in batch] == first
            assert [e.id for batch in batches["town"] for e in batch] == [
                e.id for batch in batches["a"] for e in batch if e.grid_code.startswith(TOWN1)]

            # ``a`` keeps up (its own limit is larger), ``b`` never reads: 6 more events pass its backlog limit of
            # 5, so it is cut off at once.
            a.limit = 100
            received: list[int] = []

            async def keep_up() -> None:
                async for page in feed.events(a, heartbeat=0.1):
                    received.extend(e.id for e in page)

            reader = asyncio.create_task(keep_up())
            more = await asyncio.to_thread(_report, world_engine, reference, 6, 120.21)
            await _until(lambda: b.overflowed and received == more)
            assert b.queued == 0 and b.queue.qsize() == 1  # its backlog dropped: only the end of its stream
            assert [page async for page in feed.events(b)] == []  # ends without delivering anything
            assert not a.overflowed and received == more  # the one that keeps up got each event once
            reader.cancel()
        finally:
            await feed.close()

    asyncio.run(scenario())


PARKS_ACCOUNTS = {"feed.parks": ("handler", "PARKS"), "feed.lights": ("handler", "LIGHTING")}


def test_an_assisting_unit_follows_the_cases_it_assists_on(world_engine, no_cases, reference, server) -> None:
    tokens = fresh_accounts(world_engine, PARKS_ACCOUNTS, "a long enough password")
    parks = Follower(server, {"Authorization": f"Bearer {tokens['feed.parks']}"})
    lights = Follower(server, {"Authorization": f"Bearer {tokens['feed.lights']}"})
    threads = [_follow(parks), _follow(lights)]
    with world_engine.begin() as conn:
        case = create_case(conn, reference, CASE_CREATE.validate_python(
            {"category": "E010101", "source": "inspector",
             "location": {"type": "Point", "coordinates": [120.06, 31.17]}}), actor=None)[0]
    steps = [("register", ActionInput()), ("dispatch", ActionInput(assist=[{"key": "PARKS"}])),
             ("assist_accept", ActionInput(data={"unit": "PARKS"}))]
    for revision, (action, given) in enumerate(steps, start=1):
        with world_engine.begin() as conn:
            act(conn, reference, case["id"], action, given, by=ADMIN, expected_revision=revision)
    later = _events_since(world_engine, 0, f"e.case_id = {case['id']} AND e.kind IN ('dispatch', 'assist_accept')")
    for _ in range(600):  # bounded: a failure, not a speed check
        if {e["id"] for e in parks.received} >= set(later):
            break
        parks.stop.wait(0.1)
    lights.stop.wait(0.5)  # the other department's stream had as long as parks' to (wrongly) see them
    parks.stop.set(), lights.stop.set()
    for thread in threads:
        thread.join(40)
    assert parks.errors == [] and lights.errors == []
    assert {e["id"] for e in parks.received} >= set(later)  # the dispatch naming it, and its own acceptance
    assert {e["case_id"] for e in parks.received} == {case["id"]}
    assert lights.received == []


def test_a_stream_too_slow_for_its_backlog_ends_with_a_retry_hint(world_engine, no_cases, reference) -> None:
    from api.routes.events import SLOW_RETRY_MS, _messages

    async def scenario() -> list[bytes]:
        feed = Feed(world_engine, reference, interval=0.05, queue_size=3)
        try:
            stream = _messages(feed, FeedFilter(ADMIN), None, 60)
            first = await anext(stream)  # subscribed; the client then reads nothing while 4 events arrive
            await asyncio.to_thread(_report, world_engine, reference, 4, 120.31)
            sub = next(iter(feed.subscribers))
            await _until(lambda: sub.overflowed)
            return [first] + [chunk async for chunk in stream]
        finally:
            await feed.close()

    chunks = asyncio.run(scenario())
    assert chunks == [b"retry: 1000\n\n", f": too slow, resume with Last-Event-ID\nretry: {SLOW_RETRY_MS}\n\n".encode()]
