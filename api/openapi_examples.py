"""Examples for every operation of the REST API's OpenAPI document (api/openapi_document.py puts them in).

``EXAMPLES[(method, path)]`` holds an operation's examples: ``"request"`` maps a media type to its example
body (``BODIES`` adds the bodies FastAPI cannot see: the bulk file, the Open311 form, uploads) and
``"responses"`` maps a status to its example reply. Replies were taken from a server on the known-answer world
of tests/world.py (grid codes 320506…, the 测试区 district); tests/integration/test_interfaces_openapi.py
checks that every operation has one and that the GET examples still have the keys real replies have.
"""

from __future__ import annotations

import json
from typing import Any

POINT = {"type": "Point", "coordinates": [120.06, 31.17]}
GRID = {"code": "320506001001002", "name": "测试1-1第2网格", "level": 4}
CASE: dict[str, Any] = {
    "id": 1, "case_no": "2026120300000001", "state": "reported", "category": "E010101", "source": "inspector",
    "description": "路边暴露垃圾", "location": POINT, "grid": GRID,
    "community": {"code": "320506001001", "name": "测试1-1社区", "level": 3},
    "town": {"code": "320506001", "name": "测试1街道", "level": 2},
    "district": {"code": "320506", "name": "测试区", "level": 1}, "special_grids": [],
    "owner": {"key": "GRID_CHIEF", "name": "测试1-1第2网格 网格长", "area": "320506001001002"},
    "component": None, "deadline": "2026-12-04T14:00:00+08:00", "duplicate_of": None,
    "reported_at": "2026-12-03T13:41:22+00:00", "closed_at": None,
}
CASE_REPORT = {"category": "E010101", "location": POINT, "description": "路边暴露垃圾",
               "reporter": {"name": "王芳", "phone": "13800000000"}}
HISTORY = [{"id": 1, "at": "2026-12-03T13:41:22+00:00", "kind": "report", "state": "reported",
            "actor": "api:inspector", "role": None, "note": None,
            "data": {"grid": "320506001001002", "owner": "GRID_CHIEF", "component": None}}]
CASE_FULL = {**CASE, "reporter": {"name": "王芳", "phone": "13800000000"}, "history": HISTORY,
             "workflow": {"revision": 1, "step_deadline": None, "pending_action": None,
                          "allowed_actions": ["verify", "register", "void"]}}
COMPONENT = {"type": "Feature", "id": "3205060101000001", "geometry": {"type": "Point", "coordinates": [120.03, 31.15]},
             "properties": {"code": "3205060101000001", "class_code": "0101", "district_code": "320506",
                            "grid_code": "320506001001001", "name": "上水井盖", "owner_key": "WATER",
                            "manager_key": "WATER", "maintainer_key": "WATER", "status": "intact",
                            "surveyed_on": "2024-05-01", "changed_at": None, "source": "survey", "note": None,
                            "revision": 1}}
RING = [[120, 31.1], [120.05, 31.1], [120.05, 31.2], [120, 31.2], [120, 31.1]]
GRID_FEATURE: dict[str, Any] = {"type": "Feature", "id": "320506001001001",
                "geometry": {"type": "Polygon", "coordinates": [RING]},
                "properties": {"code": "320506001001001", "name": "测试1-1第1网格", "level": 4, "kind": "base",
                               "parent_code": "320506001001"}}
PLAN = {"id": 1, "title": "重命名网格", "owner": "admin", "scope": "*", "state": "draft", "source": "plan",
        "created_at": "2026-12-03T13:41:34Z", "effective_at": None, "committed_at": None, "version_id": None,
        "rollback_of": None, "edits": [], "teams": {}}
PLAN_EDITED = {**PLAN, "edits": [{"seq": 0, "op": "reshape", "code": "320506001001001", "new_code": None,
                                  "level": 4, "name": "测试1-1第1网格（新）", "parent_code": "320506001001",
                                  "based_on": 1, "note": "renamed", "geometry": GRID_FEATURE["geometry"]}]}
COMMITTED = {"plan": 1, "state": "committed", "version": 2, "effective_at": "2026-12-03T13:41:34Z",
             "reassigned": {"components": 0, "open_cases": 0}, "teams": []}
RATES = {"reported": 12, "registered": 10, "voided": 2, "suspended": 0, "due": 9, "closed": 8, "closed_on_time": 7,
         "handled": 9, "handled_on_time": 8, "reworked": 1, "solved_grid": 6, "solved_department": 2,
         "solved_enforcement": 1, "assisting": 3, "assist_due": 2, "assist_handled": 2, "assist_handled_on_time": 1,
         "closure_rate": 0.889, "on_time_closure_rate": 0.778, "handling_rate": 1.0,
         "on_time_handling_rate": 0.889, "rework_rate": 0.111,
         "split": {"grid": {"cases": 6, "share": 0.667}, "department": {"cases": 2, "share": 0.222},
                   "enforcement": {"cases": 1, "share": 0.111}}}
GEOJSON_BATCH = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": POINT,
     "properties": {"category": "E010101", "description": "路边暴露垃圾", "reported_at": "2026-12-03T08:15:00+08:00",
                    "reporter_name": "王芳", "reporter_phone": "13800000000"}},
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.6, 31.3]},
     "properties": {"category": "E010102", "component_code": None}}]}
CSV_BATCH = ("category,lon,lat,description,source,component_code,reported_at,reporter_name,reporter_phone\n"
             "E010101,120.06,31.17,路边暴露垃圾,hotline,,2026-12-03T08:15:00+08:00,王芳,13800000000\n"
             "E010102,120.6,31.3,,,,,,\n")
BULK_REPORT = {"received": 2, "created": 1, "duplicates": 0, "refused": 1, "stored": True, "results": [
    {"row": 1, "status": "created", "case_id": 1, "case_no": "2026120300000001", "grid": "320506001001002",
     "owner": "GRID_CHIEF", "duplicate_of": None, "reason": None},
    {"row": 2, "status": "refused", "case_id": None, "case_no": None, "grid": None, "owner": None,
     "duplicate_of": None, "reason": "(120.6, 31.3) is outside every grid; the nearest is 测试2-1第4网格 "
                                     "(320506002001004), 22,042 m away"}]}
SR = {"service_request_id": "1", "status": "open", "status_notes": "已受理，待核实立案", "service_name": "暴露垃圾",
      "service_code": "E010101", "description": "路边暴露垃圾", "agency_responsible": "测试1-1第2网格 网格长",
      "service_notice": "已受理，由测试1-1第2网格 网格长负责处置，处置时限 2026-12-04 14:00（北京时间）",
      "requested_datetime": "2026-12-03T21:39:22+08:00", "updated_datetime": "2026-12-03T21:39:22+08:00",
      "expected_datetime": "2026-12-04T14:00:00+08:00", "address": "测试1街道 测试1-1社区 测试1-1第2网格",
      "address_id": None, "zipcode": None, "lat": 31.17, "long": 120.06, "media_url": None}
OPEN311_FORM = {"service_code": "E010101", "lat": 31.17, "long": 120.06, "description": "路边暴露垃圾",
                "first_name": "芳", "last_name": "王", "phone": "13800000000"}
JOB = {"id": "Yq3kP0c9xW2LbT7m", "state": "running", "owner": "WATER", "file": "survey.zip", "rows_read": 12000,
       "rows_total": 48000, "report": None, "problem": None, "rejects": False,
       "started_at": "2026-12-03T14:02:11.518204+00:00", "ended_at": None}
IMPORT_REPORT = {"file": "survey.zip", "owner": "WATER", "crs": "EPSG:4490", "mapping": {"BJBM": "code"},
                 "rows": 48000, "new": 120, "changed": 35, "unchanged": 47835, "refused": 10, "missing": 0,
                 "retired": 0, "allocated": 120, "stored": True, "dry_run": False, "changed_fields": {"status": 35},
                 "refusals": [{"row": 17, "reason": "class_code 9999 is not in the class list"}],
                 "missing_codes": []}
PHOTO = {"id": 1, "case_id": 1, "ref": "photo:1", "url": "/api/v1/cases/1/photos/1",
         "thumb_url": "/api/v1/cases/1/photos/1?size=thumb", "media_type": "image/jpeg", "width": 3024,
         "height": 4032, "size": 2184311, "created_at": "2026-12-03T13:41:22.709289+00:00", "actor": "inspector1",
         "gps": {"lon": 120.06, "lat": 31.17}}
PHOTO_FILE = "(binary: a JPEG, PNG or WebP photo)"
CATEGORY_PATH = [
    {"code": "E01", "parent": None, "level": 1, "name_zh": "城市管理", "name_en": "urban management", "leaf": False},
    {"code": "E0101", "parent": "E01", "level": 2, "name_zh": "市容环境", "name_en": "city appearance", "leaf": False},
    {"code": "E010101", "parent": "E0101", "level": 3, "name_zh": "暴露垃圾", "name_en": "exposed garbage",
     "leaf": True, "grade": "B", "time_limit": 4, "time_unit": "working_hours", "flow": "grid_first"}]

EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/v1/locate"): {"responses": {200: {
        "district": CASE["district"], "town": CASE["town"],
        "community": CASE["community"], "grid": GRID, "special_grids": []}}},
    ("get", "/api/v1/grids/{code}/history"): {"responses": {200: {
        "code": "320506001001001", "name": "测试1-1第1网格", "level": 4, "kind": "base", "parent_code": "320506001001",
        "created_at": "2024-01-01T00:00:00Z", "retired_at": None, "versions": [
            {"version_id": 1, "name": "测试1-1第1网格", "valid_from": "2024-01-01T00:00:00Z", "valid_to": None,
             "author": "import", "note": None, "plan": None,
             "geometry": {"type": "MultiPolygon", "coordinates": [[RING]]}}],
        "names": [{"name": "测试1-1第1网格", "valid_from": "2024-01-01T00:00:00Z", "valid_to": None}]}}},
    ("get", "/api/v1/areas"): {"responses": {200: {"type": "FeatureCollection", "features": [GRID_FEATURE]}}},
    ("get", "/api/v1/stats"): {"responses": {200: {"districts": 2, "towns": 2, "communities": 4, "grids": 16,
                                                   "special_grids": 1, "components": 240, "cases": 1200}}},
    ("get", "/api/v1/health"): {"responses": {200: {"status": "ok"}}},
    ("post", "/api/v1/plans"): {"request": {"application/json": {"title": "重命名网格"}}, "responses": {201: PLAN}},
    ("get", "/api/v1/plans"): {"responses": {200: [PLAN]}},
    ("get", "/api/v1/plans/{plan_id}"): {"responses": {200: PLAN_EDITED}},
    ("post", "/api/v1/plans/{plan_id}/edits"): {
        "request": {"application/json": {"op": "rename", "code": "320506001001001", "name": "测试1-1第1网格（新）"}},
        "responses": {200: PLAN_EDITED}},
    ("get", "/api/v1/plans/{plan_id}/preview"): {"responses": {200: {
        "plan": 1, "numbers": {"components": 0, "open_cases": 0, "components_by_class": {}}, "components": [],
        "open_cases": [], "workload": [{"code": "320506001001001", "area_m2": {"before": 52860704.6,
                                                                                "after": 52860704.6},
                                        "components": {"before": 0, "after": 0},
                                        "open_cases": {"before": 0, "after": 0},
                                        "cases_per_month": {"before": 0.0, "after": 0.0},
                                        "components_by_class": {}}],
        "teams": [], "geojson": {"type": "FeatureCollection", "features": []}, "problems": []}}},
    ("post", "/api/v1/plans/{plan_id}/commit"): {"request": {"application/json": {"effective_at": None}},
                                                 "responses": {200: COMMITTED}},
    ("post", "/api/v1/plans/{plan_id}/cancel"): {"responses": {200: PLAN}},
    ("post", "/api/v1/plans/{plan_id}/rollback"): {"responses": {200: {**COMMITTED, "plan": 2, "version": 3}}},
    ("post", "/api/v1/grids/imports"): {"responses": {201: {**PLAN, "title": "imported: grids.gpkg",
                                                           "source": "import"}}},
    ("post", "/api/v1/auth/token"): {
        "request": {"application/x-www-form-urlencoded": {"username": "dispatcher1", "password": "…"}},
        "responses": {200: {"access_token": "glt_XsBUDfC5ZBLmkzG2MAIHe-iadejpxLJ8anqThtuQ2dU", "token_type": "bearer",
                            "expires_in": 28800}}},
    ("delete", "/api/v1/auth/token"): {"responses": {204: None}},
    ("get", "/api/v1/auth/session"): {"responses": {200: {"login": "dispatcher1", "role": "dispatcher",
                                                          "scope": "320506", "expires_in": 28000,
                                                          "csrf_token": "e4b947…bc8ac"}}},
    ("post", "/api/v1/auth/session"): {
        "request": {"application/x-www-form-urlencoded": {"username": "dispatcher1", "password": "…"}},
        "responses": {200: {"login": "dispatcher1", "role": "dispatcher", "scope": "320506", "expires_in": 28800,
                            "csrf_token": "e4b947…bc8ac"}}},
    ("delete", "/api/v1/auth/session"): {"responses": {204: None}},
    ("post", "/api/v1/cases/bulk"): {"request": {"application/geo+json": GEOJSON_BATCH,
                                                 "application/json": GEOJSON_BATCH, "text/csv": CSV_BATCH},
                                     "responses": {200: BULK_REPORT}},
    ("get", "/api/v1/cases/{case_id}"): {"responses": {200: CASE_FULL}},
    ("get", "/api/v1/cases"): {"responses": {200: {"cases": [{**CASE, "reporter": CASE_FULL["reporter"]}],
                                                   "next": 1}}},
    # 200: a retry with the same Idempotency-Key answers the first attempt's case.
    ("post", "/api/v1/cases"): {"request": {"application/json": CASE_REPORT}, "responses": {201: CASE, 200: CASE}},
    ("get", "/api/v1/inbox"): {"responses": {200: {
        "cases": [{**CASE, "state": "dispatched", "reporter": CASE_FULL["reporter"],
                   "workflow": {"revision": 5, "step_deadline": "2026-12-04T06:00:00+00:00", "pending_action": None,
                                "allowed_actions": ["suspend", "handle"]},
                   "due": "2026-12-04T06:00:00+00:00", "duties": ["handle"],
                   # a reminder standing on the current step (the scheduler's; "unit" names an assisting unit's)
                   "orders": [{"kind": "remind", "at": "2026-12-04T03:42:00+00:00",
                               "due": "2026-12-04T03:42:00+00:00", "deadline": "2026-12-04T06:00:00.000000Z",
                               "unit": None}]}],
        "next": None, "counts": {"dispatched": 1}, "total": 1}}},
    ("get", "/api/v1/events/stream"): {"responses": {200: (
        'id: 42\ndata: {"id": 42, "case_id": 1, "at": "2026-12-03T13:41:22+00:00", "kind": "report", '
        '"state": "reported", "actor": "api:inspector", "role": null, "grid_code": "320506001001002", '
        '"owner_key": "GRID_CHIEF", "category": "E010101", "grade": null}\n\n')}},
    ("get", "/api/v1/kpi"): {"responses": {200: {
        "group": "town", "from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00", "area": None,
        "scope": "*", "groups": [{"key": "320506001", "name": "测试1街道", **RATES, "score": 86.5, "grade": "B",
                                  "rank": 1}], "totals": RATES}}},
    ("get", "/api/v1/kpi/heat"): {"responses": {200: {
        "type": "FeatureCollection", "cell": 0.004, "cases": 12, "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.02, 31.15]}, "properties": {"n": 9}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.07, 31.15]},
             "properties": {"n": 3}}]}}},
    ("get", "/api/v1/kpi/report"): {"responses": {200: (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n<title>测试1街道 2026-11 月度考核报告'
        '</title> … (the printable page: totals, the 721 split, the map of grids by grade, the tables)')}},
    ("get", "/api/v1/components"): {"responses": {200: {"type": "FeatureCollection", "features": [COMPONENT],
                                                        "next": "WyIzMjA1MDYwMTAxMDAwMDAxIl0"}}},
    ("get", "/api/v1/components/export"): {"responses": {200: {"type": "FeatureCollection",
                                                               "features": [COMPONENT]}}},
    ("get", "/api/v1/components/{code}"): {"responses": {200: {**COMPONENT, "history": []}}},
    ("patch", "/api/v1/components/{code}"): {
        "request": {media: {"properties": {"name": "上水井盖（已更换）", "note": "2026年更换"}}
                    for media in ("application/merge-patch+json", "application/json")},
        "responses": {204: None}},
    ("post", "/api/v1/components/{code}/status"): {
        "request": {"application/json": {"status": "damaged", "reason": "井盖破损，巡查发现"}},
        "responses": {204: None}},
    ("post", "/api/v1/components/{code}/retire"): {
        "request": {"application/json": {"reason": "道路改造拆除"}}, "responses": {204: None}},
    ("post", "/api/v1/components/imports"): {"responses": {202: JOB}},
    ("get", "/api/v1/components/imports/{job_id}"): {"responses": {200: {
        **JOB, "state": "done", "rows_read": 48000, "report": IMPORT_REPORT, "rejects": True,
        "ended_at": "2026-12-03T14:05:47.090311+00:00"}}},
    ("get", "/api/v1/components/imports/{job_id}/rejects"): {"responses": {200: "(the refused rows as a file, "
                                                                                 "with a reason column)"}},
    ("get", "/open311/v2/discovery.{fmt}"): {"responses": {200: {
        "changeset": "2025-06-01T00:00:00+08:00", "contact": "网格化联动指挥中心 (grid governance command centre)",
        "key_service": "Partner systems get an api_key from the command centre's administrator.",
        "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2",
                       "url": "http://127.0.0.1:8000/open311/v2", "changeset": "2025-06-01T00:00:00+08:00",
                       "type": "production", "formats": ["application/json", "text/xml"]}]}}},
    ("get", "/open311/v2/services.{fmt}"): {"responses": {200: [{
        "service_code": "E010101", "service_name": "暴露垃圾", "description": "garbage removed and site clean",
        "metadata": False, "type": "realtime", "keywords": "城市管理, 市容环境", "group": "城市管理"}]}},
    ("get", "/open311/v2/services/{service_code}.{fmt}"): {"responses": {200: {"service_code": "E010101",
                                                                               "attributes": []}}},
    ("post", "/open311/v2/requests.{fmt}"): {
        "request": {"application/x-www-form-urlencoded": OPEN311_FORM, "application/json": OPEN311_FORM},
        "responses": {201: [{"service_request_id": "1", "token": "2026120300000001",
                             "service_notice": SR["service_notice"], "account_id": None}]}},
    ("get", "/open311/v2/requests.{fmt}"): {"responses": {200: [SR]}},
    ("get", "/open311/v2/requests/{service_request_id}.{fmt}"): {"responses": {200: [SR]}},
    ("get", "/open311/v2/tokens/{token}.{fmt}"): {"responses": {200: [{"service_request_id": "1",
                                                                        "token": "2026120300000001"}]}},
    ("get", "/tiles/{layer}/{z}/{x}/{y}.mvt"): {"responses": {200: "(binary Mapbox Vector Tile)"}},
    ("get", "/tiles/{layer}.json"): {"responses": {200: {
        "tilejson": "3.0.0", "name": "grids", "scheme": "xyz", "minzoom": 0, "maxzoom": 22,
        "bounds": [120.0, 31.0, 120.4, 31.2], "center": [120.2, 31.1, 12],
        "tiles": ["http://127.0.0.1:8000/tiles/grids/{z}/{x}/{y}.mvt"],
        "vector_layers": [{"id": "grids", "fields": {"code": "String", "name": "String", "level": "Number",
                                                     "kind": "String"}, "minzoom": 0, "maxzoom": 22}]}}},
    ("post", "/api/v1/cases/{case_id}/actions/{action}"): {
        "request": {"application/json": {"note": "现场核实属实", "data": {"result": True}}},
        "responses": {200: {**CASE_FULL, "state": "verified"}}},
    # Photos (issue 20): the multipart forms are declared by the routes (api/routes/photos.py, openapi_extra).
    ("post", "/api/v1/cases/{case_id}/photos"): {
        "request": {"multipart/form-data": {"photo": [PHOTO_FILE]}},
        "responses": {201: {"photos": [{**PHOTO, "id": 2, "ref": "photo:2", "url": "/api/v1/cases/1/photos/2",
                                        "thumb_url": "/api/v1/cases/1/photos/2?size=thumb", "media_type": "image/png",
                                        "size": 141022, "gps": None}]}}},
    ("get", "/api/v1/cases/{case_id}/photos"): {"responses": {200: {"photos": [PHOTO]}}},
    ("get", "/api/v1/cases/{case_id}/photos/{photo_id}"): {"responses": {200: "(binary: the stored image, without "
                                                                              "metadata)"}},
    ("post", "/api/v1/cases/with-photos"): {
        "request": {"multipart/form-data": {"report": json.dumps(CASE_REPORT, ensure_ascii=False),
                                            "photo": [PHOTO_FILE]}},
        "responses": {201: {**CASE, "photos": [PHOTO]}, 200: {**CASE, "photos": [PHOTO]}}},
    ("post", "/api/v1/photos/inspect"): {
        "request": {"multipart/form-data": {"photo": [PHOTO_FILE]}},
        "responses": {200: {"media_type": "image/jpeg", "width": 3024, "height": 4032,
                            "sha256": "185c0a5f0a2faf39a38df1b251c3466fb460a92b2466bda995cd95334e94f5ab",
                            "gps": {"lon": 120.06, "lat": 31.17}}}},
    # The map's questions (issue 20).
    ("get", "/api/v1/here"): {"responses": {200: {
        "district": CASE["district"], "town": CASE["town"], "community": CASE["community"],
        "grid": {"code": "320506001001001", "name": "测试1-1第1网格", "level": 4}, "special_grids": [],
        "location": {"type": "Point", "coordinates": [120.0301, 31.1501]},
        "teams": {"320506001001001": [{"role": "chief", "name": "王网格长", "phone": "13800000001"}]},
        "phones_shown": True, "radius_m": 50.0,
        "components": [{"code": "3205060101000001", "class_code": "0101", "class_name": "上水井盖", "name": None,
                        "status": "intact", "owner_key": "WATER", "distance_m": 14.6,
                        "owner_name": "水务局(水务集团)"}]}}},
    ("post", "/api/v1/cases/preview"): {"request": {"application/json": CASE_REPORT}, "responses": {200: {
        "category": {"code": "E010101", "name": "暴露垃圾", "grade": "B", "time_limit": 4,
                     "time_unit": "working_hours", "flow": "grid_first"},
        "source": "inspector", "reported_at": "2026-12-03T13:41:22+00:00", "grid": GRID,
        "community": CASE["community"], "town": CASE["town"], "district": CASE["district"], "special_grids": [],
        "owner": CASE["owner"], "component": None, "deadline": "2026-12-04T14:00:00+08:00",
        "duplicate": {"id": 1, "case_no": "2026120300000001", "state": "reported"}}}},
    ("get", "/api/v1/me/cases"): {"responses": {200: {"cases": [{
        **CASE, "reporter": CASE_FULL["reporter"], "updated_at": "2026-12-03T13:41:22+00:00", "photos": 1}]}}},
    ("get", "/api/v1/categories"): {"responses": {200: {"categories": CATEGORY_PATH, "count": 3, "leaves": 1}}},
}

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/cases/bulk"): {
        "description": (
            "A batch of reports, each row becoming a case or refused with its reason (never a 500, never half "
            "stored: with all_or_nothing=true a single refused row refuses the batch). Either a GeoJSON "
            "FeatureCollection of Point features whose properties are the report's fields, or UTF-8 CSV with a "
            "header: category, lon, lat (required), description, source, component_code, reported_at (ISO "
            "8601; local time when it has no offset), reporter_name, reporter_phone. Limits: "
            "GRIDLINK_API_MAX_BULK_BYTES and GRIDLINK_API_MAX_BULK_ROWS (413 beyond)."),
        "required": True,
        "content": {
            "application/geo+json": {"schema": {"type": "object", "required": ["type", "features"], "properties": {
                "type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": {
                    "type": "object", "properties": {
                        "geometry": {"type": "object", "description": "a GeoJSON Point [lon, lat], EPSG:4326"},
                        "properties": {"type": "object", "required": ["category"]}}}}}}},
            "application/json": {"schema": {"$ref": "#/components/schemas/BulkFeatureCollection"}},
            "text/csv": {"schema": {"type": "string"}}}},
    ("post", "/open311/v2/requests.{fmt}"): {
        "description": "A GeoReport v2 service request: the form fields of the specification (or the same as "
                       "a JSON object). Anonymous submissions are rate-limited; partners send their api_key.",
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/GeoReportRequest"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/GeoReportRequest"}}}},
    ("post", "/api/v1/grids/imports"): {
        "description": "A file of grids (GeoPackage, GeoJSON, a zipped Shapefile …) as the raw body; its name "
                       "in the filename query parameter.",
        "required": True, "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                               "format": "binary"}}}},
    ("post", "/api/v1/components/imports"): {
        "description": "The survey file as the raw body (a Shapefile zipped with its sidecars, GeoPackage …; up "
                       "to 2 GiB, streamed to disk).",
        "required": True, "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                               "format": "binary"}}}},
    ("patch", "/api/v1/components/{code}"): {
        "description": "A JSON merge patch (RFC 7396) of the component feature; send If-Match with its ETag.",
        "required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}},
                                      "application/json": {"schema": {"type": "object"}}}},
    ("post", "/api/v1/components/{code}/status"): {
        "required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["status", "reason"],
            "properties": {"status": {"type": "string"}, "reason": {"type": "string"}}}}}},
    ("post", "/api/v1/components/{code}/retire"): {
        "required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}},
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object", "description": "An RFC 9457 problem document: every refusal of /api/v1 and the pages.",
        "required": ["type", "title", "status"],
        "properties": {"type": {"type": "string", "format": "uri"}, "title": {"type": "string"},
                       "status": {"type": "integer"}, "detail": {"type": "string"},
                       "instance": {"type": "string"}},
        "additionalProperties": True},
    "GeoReportError": {
        "type": "array", "description": "GeoReport v2's error list (code = the HTTP status).",
        "items": {"type": "object", "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}},
    "BulkFeatureCollection": {"type": "object", "required": ["type", "features"],
                              "properties": {"type": {"const": "FeatureCollection"},
                                             "features": {"type": "array", "items": {"type": "object"}}}},
    "GeoReportRequest": {
        "type": "object", "required": ["service_code"],
        "properties": {name: {"type": kind} for name, kind in (
            ("service_code", "string"), ("lat", "number"), ("long", "number"), ("address_string", "string"),
            ("address_id", "string"), ("description", "string"), ("email", "string"), ("device_id", "string"),
            ("account_id", "string"), ("first_name", "string"), ("last_name", "string"), ("phone", "string"),
            ("media_url", "string"), ("api_key", "string"))}},
}

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"type": "https://gridlink.dev/problems/invalid-parameter", "title": "Invalid parameter", "status": 400,
          "detail": "query parameter 'bbox' must be four numbers", "instance": "/api/v1/cases", "parameter": "bbox"},
    401: {"type": "https://gridlink.dev/problems/unauthorized", "title": "Authentication required", "status": 401,
          "detail": "the token is unknown, expired or revoked", "instance": "/api/v1/cases"},
    403: {"type": "https://gridlink.dev/problems/forbidden", "title": "Forbidden", "status": 403,
          "detail": "role 'inspector' may not do this (needs admin or dispatcher)", "instance": "/api/v1/cases"},
    422: {"type": "https://gridlink.dev/problems/validation", "title": "Request is not valid", "status": 422,
          "detail": "1 field(s) failed validation", "instance": "/api/v1/cases",
          "errors": [{"loc": ["body", "category"], "msg": "String should match pattern '^E[0-9]{2,14}$'",
                      "type": "string_pattern_mismatch"}]},
    "outside": {"type": "https://gridlink.dev/problems/outside-coverage", "title": "Location outside every grid",
                "status": 422, "detail": "(120.6, 31.3) is outside every grid; the nearest is 测试2-1第4网格 "
                                         "(320506002001004), 22,042 m away", "instance": "/api/v1/cases",
                "nearest_grid": {"code": "320506002001004", "name": "测试2-1第4网格", "level": 4,
                                 "distance_m": 22042.3}},
}
GEOREPORT_ERRORS = {400: [{"code": 400, "description": "lat and long, address_string or address_id is required"}],
                    404: [{"code": 404, "description": "no service request with token 'abc'"}]}
