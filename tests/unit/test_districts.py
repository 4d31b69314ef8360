"""The packaged Suzhou boundaries are repaired and reported, never silently dropped."""

from __future__ import annotations

import itertools
import json

import shapely
from shapely.geometry import Polygon

from spatial.demo.districts import load_districts


def test_all_nine_districts_kept_valid_and_disjoint() -> None:
    districts = load_districts()
    assert len(districts.shapes) == 9
    assert districts.names["320506"] == "吴中区"
    for geom in districts.shapes.values():
        assert geom.is_valid and not geom.is_empty
    for a, b in itertools.combinations(districts.shapes.values(), 2):
        assert a.intersection(b).area < 1e-12


def test_repairs_are_reported() -> None:
    districts = load_districts()
    subjects = {r.subject.split()[0] for r in districts.repairs}
    assert "320506" in subjects  # Wuzhong's ring self-intersects in the source
    assert all(r.problem and r.action for r in districts.repairs)


def test_overlap_goes_to_the_lower_code() -> None:
    square = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    shifted = Polygon([(0.5, 0), (1.5, 0), (1.5, 1), (0.5, 1)])
    doc = {"features": [
        {"properties": {"code": "320599", "name": "B"}, "geometry": shapely.geometry.mapping(shifted)},
        {"properties": {"code": "320501", "name": "A"}, "geometry": shapely.geometry.mapping(square)},
    ]}
    districts = load_districts(json.dumps(doc))
    assert districts.shapes["320501"].area == 1.0
    assert abs(districts.shapes["320599"].area - 0.5) < 1e-12
    assert any("overlaps 320501" in r.problem for r in districts.repairs)
