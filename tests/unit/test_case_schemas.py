"""The case's models (spatial/cases/schemas.py) agree with the database, without one."""

from __future__ import annotations

from typing import get_args

from spatial.cases.schemas import CaseCreate, Source
from spatial.store.models.cases import SOURCES


def test_the_report_sources_are_the_databases() -> None:
    assert get_args(Source) == SOURCES  # the column's CHECK constraint is built from SOURCES


def test_a_report_reads_its_place_and_reporter() -> None:
    report = CaseCreate(category="E010101", location={"type": "Point", "coordinates": [120.06, 31.17]},
                        reporter={"phone": "138 0000 0000"})
    assert (report.lon, report.lat, report.reporter_name, report.reporter_phone) == (120.06, 31.17, None,
                                                                                     "138 0000 0000")
    named = CaseCreate(category="E010402", component_code="3205060118000001")
    assert (named.lon, named.lat, named.reporter_name, named.source) == (None, None, None, None)
