"""Bulk intake on the known-answer world: every row assigned or refused with its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.cli import main as cli
from tests.world import grid_code


def _feature(lon, lat, category="E010101", **props) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"category": category, "description": "批量", **props}}


BATCH = {"type": "FeatureCollection", "features": [
    _feature(120.06, 31.17),                                         # 1 created
    _feature(120.0601, 31.17),                                       # 2 duplicate of row 1 (in batch)
    _feature(121.5, 31.1),                                           # 3 outside coverage
    _feature(31.17, 120.06),                                         # 4 swapped
    _feature(120.06, 31.17, category="E999999"),                     # 5 unknown category
    {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[120, 31], [120.1, 31]]},
     "properties": {"category": "E010101"}},                         # 6 not a point
    _feature(120.03005, 31.15, category="E010401"),                  # 7 created, bound to the manhole cover
    _feature(120.02, 31.15, category="E010402", component_code="3205069999000001"),  # 8 unknown component
]}


def _stored(world_engine) -> list[tuple]:
    with world_engine.connect() as conn:
        return conn.execute(text('SELECT id, grid_code, duplicate_of, component_code FROM "case" ORDER BY id')).all()


def test_geojson_batch(client: TestClient, world_engine) -> None:
    reply = client.post("/api/v1/cases/bulk", json=BATCH)
    assert reply.status_code == 200, reply.text
    report = reply.json()
    status = {r["row"]: r["status"] for r in report["results"]}
    assert status == {1: "created", 2: "duplicate", 3: "refused", 4: "refused", 5: "refused", 6: "refused",
                      7: "created", 8: "refused"}
    reasons = {r["row"]: r["reason"] for r in report["results"] if r["reason"]}
    assert "nearest is" in reasons[3] and "look swapped" in reasons[4]
    assert "unknown event category" in reasons[5] and "Point" in reasons[6] and "unknown component" in reasons[8]
    assert (report["received"], report["created"], report["duplicates"], report["refused"]) == (8, 2, 1, 5)
    stored = _stored(world_engine)
    assert len(stored) == 3
    first = next(r for r in report["results"] if r["row"] == 1)
    second = next(r for r in report["results"] if r["row"] == 2)
    assert second["duplicate_of"] == first["case_id"] and first["grid"] == grid_code(1, 1, 2)
    assert ("3205060101000001",) in [(r[3],) for r in stored]
    case = client.get(f"/api/v1/cases/{first['case_id']}").json()
    assert case["case_no"] == first["case_no"] and case["history"][0]["kind"] == "report"
    # The evaluation's summary and rollup as the per-event triggers would have kept them (the batch writes the
    # duplicate's summary with its row and defers the trigger for its events): the rebuilds change nothing.
    with world_engine.begin() as conn:
        voided = conn.execute(text('SELECT kpi_voided_at = reported_at AND kpi_through = reported_at FROM "case"'
                                   " WHERE id = :id"), {"id": second["case_id"]}).scalar_one()
        assert voided
        assert conn.execute(text("SELECT gridlink_case_kpi_rebuild()")).scalar_one() == 0
        assert conn.execute(text("SELECT gridlink_kpi_rollup_rebuild()")).scalar_one() == 0


def test_all_or_nothing(client: TestClient, world_engine) -> None:
    reply = client.post("/api/v1/cases/bulk", json=BATCH, params={"all_or_nothing": "true"})
    assert reply.status_code == 200 and reply.json()["stored"] is False
    assert _stored(world_engine) == []


def test_csv_batch_and_bad_bodies(client: TestClient, world_engine) -> None:
    csv_body = ("category,lon,lat,description,source,reported_at\n"
                f"E010103,120.26,31.12,道路不洁,hotline,{_ago(days=1)}\n"
                "E010103,abc,31.12,坏行,hotline,\n"
                "E010103,120.36,31.02,未来,hotline,2099-01-01T00:00:00+08:00\n")
    reply = client.post("/api/v1/cases/bulk", content=csv_body.encode(), headers={"content-type": "text/csv"})
    report = reply.json()
    assert [r["status"] for r in report["results"]] == ["created", "refused", "refused"]
    assert "not a number" in report["results"][1]["reason"] and "future" in report["results"][2]["reason"]
    assert report["results"][0]["owner"] == "SANITATION"
    assert len(_stored(world_engine)) == 1
    wrong = client.post("/api/v1/cases/bulk", content=b"x", headers={"content-type": "text/plain"})
    assert wrong.status_code == 415 and wrong.headers["content-type"] == "application/problem+json"
    not_fc = client.post("/api/v1/cases/bulk", json={"type": "Feature"})
    assert not_fc.status_code == 400 and "FeatureCollection" in not_fc.json()["detail"]
    no_header = client.post("/api/v1/cases/bulk", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"})
    assert no_header.status_code == 400 and "header lacks" in no_header.json()["detail"]


def test_cli_import(world_engine, no_cases, tmp_path: Path, monkeypatch, capsys) -> None:
    source = tmp_path / "batch.geojson"
    source.write_text(json.dumps(BATCH, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "report.json"
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", world_engine.url.render_as_string(hide_password=False))
    assert cli(["import", "cases", str(source), "--report", str(out)]) == 4  # partly imported: some refused
    assert "8 rows: 2 created, 1 linked as duplicates, 5 refused" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["created"] == 2
    assert len(_stored(world_engine)) == 3


def test_fast_path_gives_the_same_report(client: TestClient, world_engine, monkeypatch) -> None:
    import spatial.cases.bulk

    slow = client.post("/api/v1/cases/bulk", json=BATCH, params={"all_or_nothing": "true"}).json()
    monkeypatch.setattr(spatial.cases.bulk, "FAST_MIN_ROWS", 1)
    fast = client.post("/api/v1/cases/bulk", json=BATCH, params={"all_or_nothing": "true"}).json()
    assert fast == slow
    monkeypatch.setattr(spatial.cases.bulk, "BIG_BODY_BYTES", 1)  # components read while the body is parsed
    prefetched = client.post("/api/v1/cases/bulk", json=BATCH, params={"all_or_nothing": "true"}).json()
    assert prefetched == slow


def test_fast_path_agrees_with_sql_on_the_demo(small_demo) -> None:
    """Random reports over the small demo: the in-process indexes assign exactly as assign_core.sql."""
    import random
    from datetime import UTC, datetime, timedelta

    from spatial.cases.assignment.batch import assign_batch
    from spatial.cases.assignment.index import prefetch_usable
    from spatial.cases.assignment.rules import AssignmentInput, assign_rows, finish
    from spatial.errors import GridlinkError
    from spatial.reference.cache import ReferenceCache

    rng = random.Random(5)
    with small_demo.connect() as conn:
        ref = ReferenceCache.load(conn)
        anchors = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM component, ST_PointOnSurface(geom) p"
                                    " ORDER BY code LIMIT 400")).all()
        cats = [ref.categories[c] for c in sorted(ref.categories)]
        now = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
        sources = ("inspector", "dispatcher", "video", "hotline", "public")  # each trusted as rules.TRUST says
        reports = [AssignmentInput(rng.choice(cats), x + rng.uniform(-3e-4, 3e-4), y + rng.uniform(-3e-4, 3e-4), now,
                                   source=rng.choice(sources)) for x, y in anchors]
        reports += [AssignmentInput(cats[0], 121.9, 31.5, now)]  # outside coverage
        # Near lines and polygons: the distance is to the shape, not to a point on it.
        by_class = {}
        for cat in cats:
            for cls in (cat.component_classes or ()) if cat.flow == "component" else ():
                by_class.setdefault(cls, cat)
        shapes = conn.execute(text(
            "SELECT class_code, ST_X(p), ST_Y(p) FROM component, ST_ClosestPoint(geom, ST_Centroid(geom)) p"
            " WHERE ST_GeometryType(geom) <> 'ST_Point' ORDER BY code LIMIT 150")).all()
        first_shape = len(reports)
        wildcard = next(c for c in cats if c.flow == "component" and c.component_classes is None)
        reports += [AssignmentInput(by_class.get(cls, wildcard), x + rng.uniform(-2e-4, 2e-4),
                                    y + rng.uniform(-2e-4, 2e-4), now) for cls, x, y in shapes]
        last_shape = len(reports)
        # Named components of every status, some far from the report or in another district.
        named = conn.execute(text("SELECT code, ST_X(p), ST_Y(p) FROM component, ST_PointOnSurface(geom) p"
                                  " ORDER BY status = 'intact', md5(code) LIMIT 80")).all()
        reports += [AssignmentInput(rng.choice(cats), x + rng.uniform(-1e-3, 1e-3), y + rng.uniform(-1e-3, 1e-3),
                                    now, code) for code, x, y in named]
        reports += [AssignmentInput(cats[0], *anchors[0], now, "3205069999999999")]  # unknown code
        # Beside the open cases of the last day, of their category, from every source: duplicates or not
        # by the trust of the case and of the report (spatial/cases/assignment/rules.py: TRUST).
        first_near = len(reports)
        near = conn.execute(text(
            "SELECT category_code, ST_X(location), ST_Y(location) FROM \"case\" WHERE state NOT IN ('closed', 'voided')"
            " AND duplicate_of IS NULL AND reported_at > :since AND reported_at <= :now ORDER BY id"),
            {"since": now - timedelta(hours=24), "now": now}).all()
        reports += [AssignmentInput(ref.categories[code], x + 1e-4, y, now, source=rng.choice(sources))
                    for code, x, y in near if code in ref.categories]
        fast = assign_batch(conn, ref, reports)
        prefetched = assign_batch(conn, ref, reports, usable=prefetch_usable(small_demo))
        sql = []
        for report, row in zip(reports, assign_rows(conn, reports), strict=True):
            try:
                sql.append(finish(conn, ref, row, category=report.category))
            except GridlinkError as exc:
                sql.append(exc)

    def key(outcome):
        if isinstance(outcome, GridlinkError):
            return ("refused", outcome.detail)
        return (outcome.grid.code, [s.code for s in outcome.special_grids], outcome.component_code,
                outcome.component_distance_m, outcome.owner_key, outcome.owner_area_code, outcome.duplicate_of)

    assert [key(o) for o in fast] == [key(o) for o in sql]
    assert [key(o) for o in prefetched] == [key(o) for o in sql]
    assert sum(1 for o in fast if not isinstance(o, GridlinkError) and o.component_code) >= 10
    linked = [o.duplicate_of is not None for o in fast[first_near:] if not isinstance(o, GridlinkError)]
    assert sum(linked) >= 3, "too few reports beside open cases were linked"
    near_shapes = [o for o in fast[first_shape:last_shape] if not isinstance(o, GridlinkError) and o.component_code]
    assert len(near_shapes) >= 5, "too few reports bound to a line or polygon component"
    refused = [o.detail for o in fast[last_shape:] if isinstance(o, GridlinkError)]
    assert any("is removed" in r or "is abandoned" in r for r in refused) and any("unknown" in r for r in refused)


# Issue 23, finding 4: who may date a row in the past, and whose source a row carries.
BULK_ACCOUNTS = (("bulk.inspector", "inspector", "320506001"), ("bulk.partner", "partner", "*"),
                 ("bulk.dispatcher", "dispatcher", "320506001"), ("bulk.viewer", "viewer", "320506001"),
                 ("bulk.inspector.east", "inspector", "320506002"))


@pytest.fixture(scope="module")
def bulk_tokens(world_engine) -> dict[str, str]:
    """Bearer tokens of inspectors (town 001, town 002), a partner system, a dispatcher and a viewer."""
    from spatial.access.accounts import add_user, create_token

    with world_engine.begin() as conn:
        known = {login for (login,) in conn.execute(text("SELECT login FROM account"))}
        for login, role, scope in BULK_ACCOUNTS:
            if login not in known:
                add_user(conn, login, role=role, scope=scope, password="a long enough password")
        return {login: create_token(conn, login)[0] for login, _, _ in BULK_ACCOUNTS}


def _as(tokens: dict[str, str], login: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[login]}"}


def _rows(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def _sources_and_times(world_engine) -> dict[int, tuple[str, datetime, str]]:
    with world_engine.connect() as conn:
        return {i: (s, at, no) for i, s, at, no in conn.execute(text(
            'SELECT id, source, reported_at, case_no FROM "case"'))}


def test_a_rows_source_follows_the_account(client: TestClient, world_engine, bulk_tokens) -> None:
    """An inspector's rows are ``inspector`` and a partner's come from the channels a partner relays
    (``hotline``, ``public``): a row naming another source is refused on its own; a row naming none takes
    the account's. Accounts that import history (admin, dispatcher) name any source."""
    inspector = client.post("/api/v1/cases/bulk", headers=_as(bulk_tokens, "bulk.inspector"), json=_rows(
        _feature(120.01, 31.11), _feature(120.06, 31.11, source="public"), _feature(120.11, 31.11, source="inspector")))
    assert [r["status"] for r in inspector.json()["results"]] == ["created", "refused", "created"], inspector.text
    assert "source" in inspector.json()["results"][1]["reason"]
    partner = client.post("/api/v1/cases/bulk", headers=_as(bulk_tokens, "bulk.partner"), json=_rows(
        _feature(120.21, 31.11), _feature(120.26, 31.11, source="public"), _feature(120.31, 31.11, source="inspector"),
        _feature(120.36, 31.11, source="dispatcher")))
    assert [r["status"] for r in partner.json()["results"]] == ["created", "created", "refused", "refused"]
    dispatcher = client.post("/api/v1/cases/bulk", headers=_as(bulk_tokens, "bulk.dispatcher"), json=_rows(
        _feature(120.01, 31.01, source="video"), _feature(120.06, 31.01)))
    assert [r["status"] for r in dispatcher.json()["results"]] == ["created", "created"]
    stored = _sources_and_times(world_engine)
    by_id = {r["case_id"]: stored[r["case_id"]][0] for reply in (inspector, partner, dispatcher)
             for r in reply.json()["results"] if r["case_id"]}
    assert sorted(by_id.values()) == ["hotline", "hotline", "inspector", "inspector", "public", "video"]
    assert len(stored) == 6  # nothing of the refused rows


def test_only_history_importers_date_a_row_in_the_past(client: TestClient, world_engine, bulk_tokens) -> None:
    """Admins and dispatchers may date a row up to 30 days back; other accounts only within the clock skew
    (5 minutes); nobody before that or in the future. A refused row is refused on its own."""
    times = [_ago(minutes=1), _ago(hours=2), _ago(days=29), _ago(days=31), "2020-03-01T09:00:00+08:00",
             _ago(minutes=-30)]

    def rows(lat: float) -> dict:  # each account reports elsewhere: no row is a duplicate of another's
        return _rows(*(_feature(120.01 + 0.03 * n, lat, reported_at=at) for n, at in enumerate(times)))

    expected = {"bulk.inspector": ["created", "refused", "refused", "refused", "refused", "refused"],
                "bulk.partner": ["created", "refused", "refused", "refused", "refused", "refused"],
                "bulk.dispatcher": ["created", "created", "created", "refused", "refused", "refused"]}
    for lat, (login, statuses) in zip((31.11, 31.13, 31.15), expected.items(), strict=True):
        reply = client.post("/api/v1/cases/bulk", headers=_as(bulk_tokens, login), json=rows(lat)).json()
        assert [r["status"] for r in reply["results"]] == statuses, (login, reply)
        reasons = [r["reason"] for r in reply["results"] if r["reason"]]
        assert "future" in reasons[-1] and all("future" not in r for r in reasons[:-1]), reasons
    admin = client.post("/api/v1/cases/bulk", json=rows(31.17)).json()  # the world's admin
    assert [r["status"] for r in admin["results"]] == expected["bulk.dispatcher"]
    stored = _sources_and_times(world_engine)
    assert min(at for _, at, _ in stored.values()) > datetime.now(UTC) - timedelta(days=30)
    assert all(no[:4] != "2020" for _, _, no in stored.values())  # no case number of a backdated year
    assert len(stored) == 2 + 3 + 3  # inspector 1, partner 1, dispatcher 3, admin 3



# Issue 23, finding 8: who may report is decided before the body is read; the body is streamed against a cap
# of bytes and one of rows (413); every refused batch leaves an audit row; rows outside the reporter's area
# are refused before any of them is assigned.
CAP_BYTES, CAP_ROWS = 20_000, 10


@pytest.fixture(scope="module")
def capped(world_engine, bulk_tokens):
    """A client of an app whose bulk limits are small: CAP_BYTES bytes, CAP_ROWS rows."""
    from api.app import create_app
    from api.settings import ApiSettings

    app = create_app(api_settings=ApiSettings(max_bulk_bytes=CAP_BYTES, max_bulk_rows=CAP_ROWS),
                     url=world_engine.url.render_as_string(hide_password=False))
    with TestClient(app) as capped_client:
        yield capped_client


def _post_streamed(client: TestClient, headers: dict[str, str], chunks, length: int | None) -> tuple[int, dict, int]:
    """POST to the bulk route through the app's ASGI interface, offering the body chunk by chunk (lazily);
    return the status, the reply and how many body bytes the app took."""
    taken, sent = 0, []
    source = iter(chunks)

    async def call() -> None:
        async def receive() -> dict:
            nonlocal taken
            chunk = next(source, None)
            if chunk is None:
                return {"type": "http.request", "body": b"", "more_body": False}
            taken += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: dict) -> None:
            sent.append(message)

        head = {"content-type": "application/geo+json", **headers}
        if length is not None:
            head["content-length"] = str(length)
        await client.app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                          "scheme": "http", "path": "/api/v1/cases/bulk", "raw_path": b"/api/v1/cases/bulk",
                          "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
                          "server": ("testserver", 80),
                          "headers": [(k.lower().encode(), v.encode()) for k, v in head.items()]}, receive, send)

    client.portal.call(call)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), taken


def _refusals(world_engine, login: str) -> list[dict]:
    with world_engine.connect() as conn:
        return [detail for (detail,) in conn.execute(text(
            "SELECT detail FROM audit_log WHERE action = 'case.bulk.refused' AND actor = :a ORDER BY id"),
            {"a": login})]


def _megabytes(count: int):
    return (b" " * 1_000_000 for _ in range(count))


def test_a_caller_who_does_not_report_is_refused_before_the_body(capped, world_engine, bulk_tokens) -> None:
    """A viewer posting 58 MB is refused (403) without one byte of it being read, and the refusal is
    audited; so is an anonymous caller (401), who is not audited (there is no account to name)."""
    before = len(_refusals(world_engine, "bulk.viewer"))
    status, reply, taken = _post_streamed(capped, _as(bulk_tokens, "bulk.viewer"), _megabytes(58), 58_000_000)
    assert (status, taken) == (403, 0), reply
    refusals = _refusals(world_engine, "bulk.viewer")
    assert len(refusals) == before + 1 and refusals[-1]["status"] == 403
    status, reply, taken = _post_streamed(capped, {}, _megabytes(58), 58_000_000)
    assert (status, taken) == (401, 0), reply


def test_a_batch_is_streamed_against_a_cap_and_refusals_are_audited(capped, world_engine, bulk_tokens) -> None:
    """Over the byte cap: by Content-Length before any byte is read, and a body without one is refused as
    soon as it passes the cap; over the row cap: refused whole. Each is a 413 problem, stores nothing and
    leaves an audit row."""
    before, stored = len(_refusals(world_engine, "bulk.inspector")), len(_stored(world_engine))
    inspector = _as(bulk_tokens, "bulk.inspector")
    status, reply, taken = _post_streamed(capped, inspector, _megabytes(58), 58_000_000)
    assert (status, taken, reply["status"]) == (413, 0, 413), reply
    status, reply, taken = _post_streamed(capped, inspector, (b" " * 4096 for _ in range(100_000)), None)
    assert status == 413 and CAP_BYTES < taken <= CAP_BYTES + 4096, (reply, taken)
    many = json.dumps(_rows(*(_feature(120.01 + 0.001 * n, 31.11) for n in range(CAP_ROWS + 1)))).encode()
    status, reply, _ = _post_streamed(capped, inspector, [many], len(many))
    assert status == 413 and f"{CAP_ROWS}" in reply["detail"], reply
    refusals = _refusals(world_engine, "bulk.inspector")[before:]
    assert [r["status"] for r in refusals] == [413, 413, 413]
    assert len(_stored(world_engine)) == stored


def test_rows_outside_the_area_are_refused_before_assignment(client: TestClient, world_engine, bulk_tokens,
                                                             monkeypatch) -> None:
    """An inspector of town 001 sending rows of town 002: each is refused without being assigned (the
    assignment sees none of them), nothing is stored, and the refused batch is audited. Rows on the town's
    own edge still go through the assignment, whose shared-edge rule decides."""
    import spatial.cases.bulk

    assigned: list[int] = []
    real = spatial.cases.bulk._assign_all

    def counting(conn, ref, rows, *args, **kwargs):
        assigned.append(len(rows))
        return real(conn, ref, rows, *args, **kwargs)

    monkeypatch.setattr(spatial.cases.bulk, "_assign_all", counting)
    before = len(_refusals(world_engine, "bulk.inspector"))
    far = [_feature(120.21 + 0.0005 * n, 31.01 + 0.0005 * n) for n in range(300)]
    reply = client.post("/api/v1/cases/bulk", headers=_as(bulk_tokens, "bulk.inspector"), json=_rows(*far))
    report = reply.json()
    assert (reply.status_code, report["refused"], report["created"]) == (200, 300, 0), reply.text
    assert all(r["reason"] == "this location lies outside your area 320506001" for r in report["results"])
    assert assigned == [0] and _stored(world_engine) == []
    refusals = _refusals(world_engine, "bulk.inspector")
    assert len(refusals) == before + 1
    assert (refusals[-1]["received"], refusals[-1]["refused"], refusals[-1]["outside_area"]) == (300, 300, 300)
    # On the towns' shared edge the grid with the smaller code, town 001's, holds the point (README).
    edge = client.post("/api/v1/cases/bulk", headers=_as(bulk_tokens, "bulk.inspector.east"),
                       json=_rows(_feature(120.2, 31.15), _feature(120.21, 31.15))).json()
    assert assigned[-1] == 2 and [r["status"] for r in edge["results"]] == ["refused", "created"]
    assert edge["results"][0]["reason"] == "this location (grid 320506001001004) lies outside your area 320506002"


def test_a_real_server_answers_a_viewer_without_waiting_for_the_body(world_engine, bulk_tokens) -> None:
    """Through uvicorn: a viewer announcing 58 MB and sending none of it still gets its 403 (the server does
    not wait for the body), as does an inspector announcing more than the 64 MiB cap, with 413."""
    import socket

    from tests.live import serving

    def status(port: int, login: str, length: int) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            head = ("POST /api/v1/cases/bulk HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/geo+json",
                    f"Authorization: Bearer {bulk_tokens[login]}", f"Content-Length: {length}", "", "")
            sock.sendall("\r\n".join(head).encode())
            return sock.recv(65536).decode("latin-1").split(" ", 2)[1]

    with serving(world_engine.url.render_as_string(hide_password=False)) as port:
        assert status(port, "bulk.viewer", 58_000_000) == "403"
        assert status(port, "bulk.inspector", 70_000_000) == "413"
