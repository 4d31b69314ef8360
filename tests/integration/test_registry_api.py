"""REST registry ``/api/v1/components`` (issue 18, item 4) over HTTP against real PostGIS: search filters and
keyset pages, one component with its history (admins and its owner only), PATCH with If-Match under the Part
4 rules, status changes with a reason, retirement, and the order of refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import migrated_engine
from tests.world import build_world

WATER_COVER = "3205060101000001"


@pytest.fixture(scope="module")
def api():
    """An app on a database of its own (the world), and tokens of an admin, WATER and LIGHTING owners, a viewer."""
    from api.app import create_app
    from spatial.access.accounts import add_user, create_token
    from spatial.reference.load import load_reference

    eng = migrated_engine("gridlink_test_registry_api")
    tokens = {}
    with eng.begin() as conn:
        load_reference(conn)
        build_world(conn)
        conn.execute(text("UPDATE component c SET grid_code = (SELECT min(grid_code) FROM grid_geometry g WHERE"
                          " g.kind = 'base' AND ST_Covers(g.geom, c.geom))"))  # the world leaves them unassigned
        for login, role, scope in (("boss", "admin", "*"), ("water", "owner", "WATER"),
                                   ("lamps", "owner", "LIGHTING"), ("eyes", "viewer", "320506")):
            add_user(conn, login, role=role, scope=scope, password="correct horse battery staple")
            tokens[login] = {"Authorization": f"Bearer {create_token(conn, login, ttl=None)[0]}"}
    with TestClient(create_app(url=eng.url.render_as_string(hide_password=False))) as client:
        yield client, tokens, eng
    eng.dispose()


def test_search_filters_and_keyset_pages(api) -> None:
    client, tokens, _ = api
    assert client.get("/api/v1/components").status_code == 401
    everything = client.get("/api/v1/components", headers=tokens["eyes"]).json()
    assert [f["id"] for f in everything["features"]] == sorted(f["id"] for f in everything["features"])
    assert len(everything["features"]) == 5 and everything["next"] is None
    water = client.get("/api/v1/components?owner=WATER&status=intact", headers=tokens["eyes"]).json()
    assert [f["id"] for f in water["features"]] == [WATER_COVER]
    assert [f["id"] for f in client.get("/api/v1/components?area=320506002&class=0136",
                                        headers=tokens["eyes"]).json()["features"]] == ["3205060136000001"]
    boxed = client.get("/api/v1/components?bbox=120.0,31.1,120.02,31.2", headers=tokens["eyes"]).json()
    assert [f["id"] for f in boxed["features"]] == ["3205060118000001"]
    pages, cursor = [], None
    while True:
        page = client.get("/api/v1/components", params={"limit": 2, "sort": "-code", **({"cursor": cursor} if cursor
                          else {})}, headers=tokens["eyes"]).json()
        pages.append([f["id"] for f in page["features"]])
        cursor = page["next"]
        if cursor is None:
            break
    assert [c for p in pages for c in p] == sorted((f["id"] for f in everything["features"]), reverse=True)
    assert [len(p) for p in pages] == [2, 2, 1]
    for bad in ("sort=geom", "area=12", "status=broken", "cursor=xyz", "text=a%00b"):
        reply = client.get(f"/api/v1/components?{bad}", headers=tokens["eyes"])
        assert reply.status_code in (400, 422) and reply.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("sort", ["name", "-name", "changed_at", "-changed_at"])
def test_keyset_pages_by_name_and_change_time_walk_every_row_once(api, sort) -> None:
    """The sorts the registry page offers (their keys are the indexes' expressions, compared as one row):
    walking pages of 2 gives every component once, in the order of one big page, NULLs lowest."""
    client, tokens, eng = api
    with eng.begin() as conn:  # a name and a change time missing, and two equal names: ties go by code
        conn.execute(text("UPDATE component SET name = NULL, changed_at = NULL WHERE code = :c"), {"c": WATER_COVER})
        conn.execute(text("UPDATE component SET name = '同名' WHERE code IN (SELECT code FROM component"
                          " WHERE code <> :c ORDER BY code LIMIT 2)"), {"c": WATER_COVER})
    whole = [f["id"] for f in client.get("/api/v1/components", params={"sort": sort},
                                          headers=tokens["eyes"]).json()["features"]]
    walked, cursor = [], None
    while True:
        page = client.get("/api/v1/components", params={"sort": sort, "limit": 2, **({"cursor": cursor} if cursor
                          else {})}, headers=tokens["eyes"]).json()
        walked += [f["id"] for f in page["features"]]
        if (cursor := page["next"]) is None:
            break
    assert walked == whole and len(set(walked)) == 5
    assert (whole.index(WATER_COVER) == 0) is (not sort.startswith("-"))


def test_an_owner_lists_only_its_own_components(api) -> None:
    """Issue 21 item 4: the registry list of an owner account holds its own components only (another owner named:
    403, nothing listed); admins and viewers list every owner's; one component stays readable by code."""
    client, tokens, _ = api
    everyone = client.get("/api/v1/components", headers=tokens["eyes"]).json()["features"]
    owners = {f["properties"]["owner_key"] for f in everyone}
    assert {"WATER", "LIGHTING"} <= owners
    for login, key in (("water", "WATER"), ("lamps", "LIGHTING")):
        own = client.get("/api/v1/components", headers=tokens[login]).json()["features"]
        assert own and {f["properties"]["owner_key"] for f in own} == {key}
        assert sorted(f["id"] for f in own) == sorted(f["id"] for f in everyone if f["properties"]["owner_key"] == key)
        assert client.get(f"/api/v1/components?owner={key}", headers=tokens[login]).json()["features"] == own
    other = client.get("/api/v1/components?owner=LIGHTING", headers=tokens["water"])
    assert other.status_code == 403 and other.headers["content-type"] == "application/problem+json"
    assert len(client.get("/api/v1/components", headers=tokens["boss"]).json()["features"]) == len(everyone)
    lamp = next(f["id"] for f in everyone if f["properties"]["owner_key"] == "LIGHTING")
    read = client.get(f"/api/v1/components/{lamp}", headers=tokens["water"])
    assert read.status_code == 200 and "history" not in read.json()


def test_item_history_patch_status_and_retire(api) -> None:
    client, tokens, eng = api
    item = client.get(f"/api/v1/components/{WATER_COVER}", headers=tokens["water"])
    assert item.status_code == 200 and item.headers["etag"] == '"1"' and item.json()["history"] == []
    assert "history" not in client.get(f"/api/v1/components/{WATER_COVER}", headers=tokens["eyes"]).json()
    url = f"/api/v1/components/{WATER_COVER}"
    assert client.patch(url, json={"properties": {"name": "x"}}, headers=tokens["eyes"]).status_code == 403
    assert client.patch(url, json={"properties": {"name": "x"}}, headers=tokens["lamps"]).status_code == 403
    assert client.patch("/api/v1/components/3205060101999999", json={},
                        headers={**tokens["water"], "If-Match": '"1"'}).status_code == 404
    assert client.patch(url, json={"properties": {"name": "x"}}, headers=tokens["water"]).status_code == 428
    outside = {"properties": {}, "geometry": {"type": "Point", "coordinates": [120.5, 31.1]}}
    refused = client.patch(url, json=outside, headers={**tokens["water"], "If-Match": '"1"'})
    assert refused.status_code == 422 and "outside district 320506" in refused.json()["detail"]
    done = client.patch(url, json={"properties": {"name": "东门井盖", "note": "复测"}},
                        headers={**tokens["water"], "If-Match": '"1"'})
    assert done.status_code == 204 and done.headers["etag"] == '"2"'
    assert client.patch(url, json={"properties": {"name": "y"}},
                        headers={**tokens["water"], "If-Match": '"1"'}).status_code == 412
    no_reason = client.post(f"{url}/status", json={"status": "damaged"}, headers={**tokens["water"], "If-Match": '"2"'})
    assert no_reason.status_code == 400
    changed = client.post(f"{url}/status", json={"status": "damaged", "reason": "盖板破裂"},
                          headers={**tokens["water"], "If-Match": '"2"'})
    assert changed.status_code == 204
    retired = client.post(f"{url}/retire", json={"reason": "道路改造"}, headers={**tokens["boss"], "If-Match": '"3"'})
    assert retired.status_code == 204
    feature = client.get(url, headers=tokens["water"]).json()
    assert feature["properties"]["name"] == "东门井盖" and feature["properties"]["status"] == "removed"
    assert [(h["action"], h["actor"], (h["changes"] or {}).get("reason")) for h in feature["history"]] == [
        ("update", "water", None), ("status", "water", "盖板破裂"), ("status", "boss", "道路改造")]
    with eng.connect() as conn:
        audit = conn.execute(text("SELECT action FROM audit_log WHERE target = :c ORDER BY id"),
                             {"c": WATER_COVER}).scalars().all()
    assert audit == ["component.patch", "component.status", "component.retire"]


def test_export_over_http_in_every_format(api, tmp_path) -> None:
    import io
    import zipfile

    from pyogrio import read_info
    from pyogrio.raw import read

    client, tokens, eng = api
    assert client.get("/api/v1/components/export", headers=tokens["eyes"]).status_code == 403
    assert client.get("/api/v1/components/export?owner=WATER", headers=tokens["lamps"]).status_code == 403
    gpkg = client.get("/api/v1/components/export?format=gpkg", headers=tokens["lamps"])
    assert gpkg.status_code == 200 and gpkg.headers["content-type"] == "application/geopackage+sqlite3"
    (tmp_path / "l.gpkg").write_bytes(gpkg.content)
    _, _, _, fields = read(tmp_path / "l.gpkg")
    info = read_info(tmp_path / "l.gpkg")
    codes = list(fields[list(info["fields"]).index("code")])
    assert codes == ["3205060118000001", "3205070118000001"]  # LIGHTING's own, in code order
    geojson = client.get("/api/v1/components/export?format=geojson&class=0136", headers=tokens["boss"]).json()
    assert [f["properties"]["code"] for f in geojson["features"]] == ["3205060136000001"]
    assert geojson["features"][0]["geometry"] == {"type": "Point", "coordinates": [120.3, 31.05]}
    csv = client.get("/api/v1/components/export?format=csv&area=320506001", headers=tokens["boss"]).text
    assert csv.splitlines()[0].startswith("WKT,code,class_code") and len(csv.splitlines()) == 4
    shp = client.get("/api/v1/components/export?format=shp&status=removed", headers=tokens["boss"])
    names = zipfile.ZipFile(io.BytesIO(shp.content)).namelist()
    assert "components_point.shp" in names and "components_point.prj" in names
    bad = client.get("/api/v1/components/export?format=kml", headers=tokens["boss"])
    assert bad.status_code == 400 and json.loads(bad.text)["title"] == "Invalid parameter"
    with eng.connect() as conn:  # every export sent is audited: who, which slice, how many rows
        audits = conn.execute(text("SELECT actor, target, detail FROM audit_log WHERE action = 'component.export'"
                                   " ORDER BY id")).all()
    assert [(a, t, d["format"], d["rows"]) for a, t, d in audits] == [
        ("lamps", "LIGHTING", "gpkg", 2), ("boss", None, "geojson", 1), ("boss", None, "csv", 3),
        ("boss", None, "shp", 2)]  # the removed ones: the world's and the test before's
    assert audits[2][2]["area"] == "320506001"


def test_export_then_reimport_is_unchanged(api, tmp_path, monkeypatch, capsys) -> None:
    from api.cli import main

    _, _, eng = api
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", eng.url.render_as_string(hide_password=False))
    out = tmp_path / "water.gpkg"
    assert main(["export", "components", str(out), "--owner", "WATER", "--quiet"]) == 0
    assert "2 components exported" in capsys.readouterr().out
    # an export's own columns map back by themselves (those the registry computes are left out)
    assert main(["import", "components", str(out), "--owner", "WATER", "--dry-run", "--quiet"]) == 0
    assert "2 rows — 0 new (0 codes allocated), 0 changed, 2 unchanged, 0 refused" in capsys.readouterr().out


def _finished(client, location: str, headers: dict) -> dict:
    """The job at ``location`` once it has ended (polled; the import runs in a thread of the server)."""
    import time

    give_up = time.monotonic() + 600  # a hung import, not a slow machine: the shared CI machine may be loaded
    while True:
        job = client.get(location, headers=headers).json()
        if job["state"] != "running" or time.monotonic() > give_up:
            assert job["state"] != "running", f"import still running after 10 minutes: {job}"
            return job
        time.sleep(0.05)


def test_survey_upload_runs_in_the_background(api, tmp_path, monkeypatch) -> None:
    import io
    import zipfile

    import shapely
    from pyogrio.raw import write

    client, tokens, eng = api
    geoms = shapely.to_wkb(shapely.points([[120.051, 31.111], [120.052, 31.111], [120.053, 31.111]]))
    codes = np.array(["3205060118000500", "3205060118000501", "3205060118000501"], dtype=object)
    names = np.array(["路灯一", "路灯二", "路灯三"], dtype=object)
    write(tmp_path / "lamps.shp", geoms, [codes, names], ["编码", "名称"], driver="ESRI Shapefile",
          crs="EPSG:4490", geometry_type="Point", encoding="GBK")
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as z:
        for part in tmp_path.glob("lamps.*"):
            z.write(part, part.name)
    url = "/api/v1/components/imports?owner=LIGHTING&filename=lamps.zip"
    # who first: a water owner may not import the lighting office's survey, whatever the body
    assert client.post(url, content=b"\x00garbage", headers=tokens["water"]).status_code == 403
    assert client.post(url, content=b"", headers=tokens["eyes"]).status_code == 403
    started = client.post(url, content=bundle.getvalue(), headers=tokens["lamps"])
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    assert client.get(location, headers=tokens["water"]).status_code == 403
    job = _finished(client, location, tokens["lamps"])
    assert job["state"] == "done" and job["rows_read"] == 3
    assert (job["report"]["new"], job["report"]["refused"], job["report"]["stored"]) == (2, 1, True)
    rejects = client.get(f"{location}/rejects", headers=tokens["lamps"])
    assert rejects.status_code == 200
    assert "rejects.shp" in zipfile.ZipFile(io.BytesIO(rejects.content)).namelist()
    with eng.connect() as conn:
        assert conn.execute(text("SELECT name FROM component WHERE code = '3205060118000500'")).scalar() == "路灯一"
    bad = client.post("/api/v1/components/imports?owner=LIGHTING&filename=cut.gpkg", content=b"SQLite format 3\x00",
                      headers=tokens["lamps"])
    failed = _finished(client, bad.headers["location"], tokens["lamps"])
    assert failed["state"] == "failed" and failed["problem"]["status"] == 422
    with eng.connect() as conn:  # a refused upload is audited (a stored one by its component.import row)
        refused = conn.execute(text("SELECT actor, target, detail FROM audit_log WHERE action ="
                                    " 'component.import_refused' ORDER BY id DESC LIMIT 1")).one()
    assert refused[:2] == ("lamps", "LIGHTING") and refused[2]["job"] == bad.headers["location"].rsplit("/", 1)[1]
    import api.routes.components as routes

    monkeypatch.setattr(routes, "MAX_SURVEY_BYTES", 100)
    too_big = client.post(url, content=bundle.getvalue(), headers=tokens["lamps"])
    assert too_big.status_code == 413 and too_big.headers["content-type"] == "application/problem+json"


def _lamps_geojson(path, codes: list[str]) -> bytes:
    """A GeoJSON survey of LIGHTING lamps in Wuzhong (320506), one per code, 1 m apart."""
    import shapely
    from pyogrio.raw import write

    geoms = shapely.to_wkb(shapely.points([[120.051 + i * 1e-5, 31.112] for i in range(len(codes))]))
    write(path, geoms, [np.array(codes, dtype=object)], ["code"], driver="GeoJSON", crs="EPSG:4326",
          geometry_type="Point")
    return path.read_bytes()


def test_an_upload_takes_a_column_mapping(api, tmp_path) -> None:
    """``mapping`` (issue 21: the registry page lets the owner correct the guessed columns): a column the guess
    cannot place imports once it is mapped; a malformed mapping is 400 before the body is read."""
    import shapely
    from pyogrio.raw import write

    client, tokens, eng = api
    geoms = shapely.to_wkb(shapely.points([[120.054, 31.113]]))
    write(tmp_path / "odd.geojson", geoms, [np.array(["3205060118000800"], dtype=object),
                                             np.array(["新路灯"], dtype=object)], ["code", "lamp_label"],
          driver="GeoJSON", crs="EPSG:4326", geometry_type="Point")
    body = (tmp_path / "odd.geojson").read_bytes()
    url, query = "/api/v1/components/imports", {"owner": "LIGHTING", "filename": "odd.geojson"}
    for bad in ("not json", '["name"]', '{"lamp_label": 3}'):
        refused = client.post(url, params={**query, "mapping": bad}, content=b"", headers=tokens["lamps"])
        assert refused.status_code == 400 and refused.json()["detail"].startswith("mapping"), refused.text
    started = client.post(url, params=query, content=body, headers=tokens["lamps"])
    guessed = _finished(client, started.headers["location"], tokens["lamps"])
    assert guessed["state"] == "failed" and "lamp_label" in guessed["problem"]["detail"]
    mapped = client.post(url, params={**query, "mapping": '{"lamp_label": "name"}'}, content=body,
                         headers=tokens["lamps"])
    job = _finished(client, mapped.headers["location"], tokens["lamps"])
    assert job["state"] == "done" and job["report"]["mapping"] == {"code": "code", "lamp_label": "name"}
    with eng.connect() as conn:
        assert conn.execute(text("SELECT name FROM component WHERE code = '3205060118000800'")).scalar() == "新路灯"


def test_upload_jobs_are_read_from_another_app_and_run_by_one(api, tmp_path) -> None:
    """A job lives in the database: a second app instance (another server process) reads its progress, report
    and rejects; while it runs its lock is held, so nobody else can run it and no reader fails it."""
    from api.app import create_app
    from spatial.components.jobs import TRY_LOCK

    client, tokens, eng = api
    body = _lamps_geojson(tmp_path / "lamps.geojson", ["3205060118000600", "3205060118000601", "3205060118000601"])
    with TestClient(create_app(url=eng.url.render_as_string(hide_password=False))) as other, \
            eng.connect() as blocker:
        blocker.execute(text("LOCK TABLE component IN ACCESS EXCLUSIVE MODE"))  # the import waits at its first read
        started = client.post("/api/v1/components/imports?owner=LIGHTING&filename=lamps.geojson", content=body,
                              headers=tokens["lamps"])
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        seen = other.get(location, headers=tokens["boss"]).json()
        assert (seen["state"], seen["rows_read"], seen["rejects"]) == ("running", 0, False)
        assert other.get(location, headers=tokens["water"]).status_code == 403
        job_id = location.rsplit("/", 1)[1]
        with eng.connect() as probe:  # the running process holds the job: no one else can take it
            assert probe.execute(text(TRY_LOCK), {"id": job_id}).scalar() is False
            assert probe.execute(text("SELECT worker FROM component_upload_jobs WHERE id = :id"),
                                 {"id": job_id}).scalar().endswith(f":{__import__('os').getpid()}")
        assert other.get(f"{location}/rejects", headers=tokens["lamps"]).status_code == 404
        assert other.get(location, headers=tokens["lamps"]).json()["state"] == "running"  # not failed by a reader
        blocker.rollback()
        job = _finished(other, location, tokens["lamps"])
        assert job["state"] == "done" and (job["rows_read"], job["rows_total"]) == (3, 3)
        assert (job["report"]["new"], job["report"]["refused"], job["rejects"]) == (2, 1, True)
        rejects = other.get(f"{location}/rejects", headers=tokens["lamps"])
        assert rejects.status_code == 200 and '"reason"' in rejects.text and "3205060118000601" in rejects.text
    assert client.get("/api/v1/components/imports/nosuchjob", headers=tokens["boss"]).status_code == 404


def _serve(url: str, log):
    """A ``gridlink serve`` process on a free port (killed by the test, not stopped)."""
    import http.client
    import os
    import subprocess
    import sys
    import time

    from spatial.store.cluster import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level", "error"],
                              env=dict(os.environ, GRIDLINK_DATABASE_URL=url), stdout=log, stderr=log)
    for _ in range(200):
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/api/v1/health")
            probe.getresponse().read()
            return server, port
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("gridlink serve did not start")


def test_an_upload_whose_server_is_killed_ends_failed_not_lost(api, tmp_path) -> None:
    """A server killed mid-import (SIGKILL: no chance to write anything) leaves its job readable as failed
    (interrupted, with the reason) from another server, and nothing of the survey stored."""
    import http.client
    import time

    client, tokens, eng = api
    url = eng.url.render_as_string(hide_password=False)
    body = _lamps_geojson(tmp_path / "lamps.geojson", ["3205060118000700", "3205060118000701"])
    with open(tmp_path / "server.log", "a") as log, eng.connect() as blocker:
        server, port = _serve(url, log)
        try:
            blocker.execute(text("LOCK TABLE component IN ACCESS EXCLUSIVE MODE"))
            http_ = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            http_.request("POST", "/api/v1/components/imports?owner=LIGHTING&filename=lamps.geojson", body=body,
                          headers=tokens["lamps"])
            started = http_.getresponse()
            assert started.status == 202, started.read()
            location = started.getheader("location")
            assert client.get(location, headers=tokens["lamps"]).json()["state"] == "running"
        finally:
            server.kill()
            server.wait(timeout=30)
        give_up = time.monotonic() + 300  # bounded: a failure, not a speed check
        while True:  # PostgreSQL ends the dead server's sessions (and their locks) as it sees them close
            job = client.get(location, headers=tokens["lamps"]).json()
            if job["state"] != "running" or time.monotonic() > give_up:
                break
            time.sleep(0.05)
        assert job["state"] == "failed" and job["problem"]["title"] == "Import interrupted", job
        assert "stopped before it ended" in job["problem"]["detail"] and job["ended_at"]
        blocker.rollback()
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM component WHERE code LIKE '32050601180007%'")).scalar() == 0
