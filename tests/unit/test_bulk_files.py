"""Bulk files read into rows (spatial/cases/bulk_files.py): every row validated as the one report model, or
refused with a reason that names what is wrong; no database."""

from __future__ import annotations

import gc
import json
from datetime import datetime, timedelta

import pytest

from spatial.cases.bulk_files import PAUSE, parse_csv, parse_geojson
from spatial.errors import InvalidParameterError


def _feature(lon, lat, **properties) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"category": "E010101", **properties}}


@pytest.mark.parametrize(
    ("feature", "fragment"),
    [
        (_feature(31.17, 120.06), "look swapped"),
        (_feature(120.06, 31.17, source="pigeon"), "source:"),
        (_feature(120.06, 31.17, component_code="12"), "component_code:"),
        (_feature(120.06, 31.17, description="x" * 2001), "description:"),
        (_feature(120.06, 31.17, reporter_phone="call me"), "reporter.phone:"),
        (_feature(120.06, 31.17, category="garbage"), "unknown event category 'garbage'"),
        (_feature("abc", 31.17), "lon is not a number: 'abc'"),
        (_feature(120.06, "inf"), "lat is not a finite number"),
        (_feature(120.06, 31.17, reported_at="yesterday"), "reported_at is not an ISO 8601 time"),
        ({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[120, 31], [120.1, 31]]}},
         "geometry must be a Point, not 'LineString'"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.06]}}, "two coordinates"),
        (None, "geometry must be a Point"),
    ],
)
def test_a_refused_row_says_why(feature, fragment) -> None:
    rows, refused = parse_geojson(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    assert rows == [] and len(refused) == 1
    assert refused[0].row == 1 and refused[0].status == "refused" and fragment in refused[0].reason


def test_a_row_is_the_report_model_with_its_number_and_time() -> None:
    features = [_feature(120.06, 31.17), _feature(120.1, 31.1, source="video", description=42, reporter_name="张三",
                                                   reported_at="2026-11-13T09:00:00", component_code="")]
    rows, refused = parse_geojson(json.dumps({"type": "FeatureCollection", "features": features}))
    assert refused == []
    first, second = rows
    assert (first.row, first.source, first.location.lon, first.location.lat) == (1, "hotline", 120.06, 31.17)
    assert first.reporter is None and first.reported_at is None
    assert (second.row, second.source, second.description, second.component_code) == (2, "video", "42", None)
    assert second.reporter_name == "张三" and second.reporter_phone is None
    assert second.reported_at == datetime.fromisoformat("2026-11-13T09:00:00+08:00")  # no offset: Suzhou time
    assert second.reported_at.utcoffset() == timedelta(hours=8)


def test_csv_rows_count_data_lines_and_skip_blank_ones() -> None:
    body = "\ufeffcategory,lon,lat,description\n\nE010101,120.06,31.17,路边\nE010101,120.06\n\nE010101,120.1,31.1,\n"
    rows, refused = parse_csv(body)
    assert [(r.row, r.description) for r in rows] == [(1, "路边"), (3, None)]
    assert [(r.row, r.reason) for r in refused] == [(2, "lat is not a number: None")]


@pytest.mark.parametrize(
    ("parse", "body", "fragment"),
    [(parse_geojson, "{", "not valid JSON"), (parse_geojson, '{"type": "Feature"}', "FeatureCollection"),
     (parse_csv, "a,b\n1,2\n", "header lacks"),
     # the csv module's own refusals (schemathesis found the first): a 400, not a 500
     (parse_csv, "category,lon,lat\n\"a" + "x" * 200_000 + "\",1,2\n", "not readable CSV: field larger"),
     (parse_csv, "\r\U000a74dd#", "header lacks")],
)
def test_a_body_that_holds_no_rows_is_refused_whole(parse, body, fragment) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        parse(body)


def test_csv_lines_may_end_in_a_bare_carriage_return() -> None:
    rows, refused = parse_csv("category,lon,lat\rE010101,120.06,31.17\r\nE010101,120.1,31.1\r")
    assert [r.row for r in rows] == [1, 2] and refused == []


def test_the_collector_pause_nests_and_restores() -> None:
    assert gc.isenabled()
    with PAUSE:
        assert not gc.isenabled()
        with PAUSE:
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer batch is still being parsed
    assert gc.isenabled()
    gc.disable()
    try:
        with PAUSE:
            pass
        assert not gc.isenabled()  # left off as it was found
    finally:
        gc.enable()


def test_more_rows_than_the_cap_refuse_the_body_before_its_rows_are_read() -> None:
    """Finding 8 of issue 23: a batch over the row cap is a 413 (both formats); at the cap it is read."""
    from spatial.errors import PayloadTooLargeError

    geojson = json.dumps({"type": "FeatureCollection", "features": [_feature(120.06, 31.17)] * 3})
    csv_body = "category,lon,lat\n" + "E010101,120.06,31.17\n" * 3
    assert len(parse_geojson(geojson, max_rows=3)[0]) == 3 and len(parse_csv(csv_body, max_rows=3)[0]) == 3
    for parsed in (lambda: parse_geojson(geojson, max_rows=2), lambda: parse_csv(csv_body, max_rows=2)):
        with pytest.raises(PayloadTooLargeError, match="at most 2 rows") as refused:
            parsed()
        assert refused.value.status == 413


def test_a_row_naming_no_source_takes_the_callers() -> None:
    rows, _ = parse_geojson(json.dumps({"type": "FeatureCollection", "features": [
        _feature(120.06, 31.17), _feature(120.06, 31.17, source="public")]}), "inspector")
    assert [r.source for r in rows] == ["inspector", "public"]  # whether "public" may stay: spatial.cases.bulk
