"""Reference tables: the packaged Suzhou CSVs load; another city's file loads; a bad row refuses the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from spatial.reference.load import ReferenceDataError, ReferenceFiles, load_reference


def test_packaged_tables_are_loaded(conn) -> None:
    counts = dict(conn.execute(text(
        "SELECT 'departments', count(*) FROM department UNION ALL"
        " SELECT 'classes', count(*) FROM component_class UNION ALL"
        " SELECT 'leaves', count(*) FROM event_category WHERE time_limit IS NOT NULL UNION ALL"
        " SELECT 'holidays', count(*) FROM holiday"
    )).all())
    assert counts["departments"] == 22
    assert counts["classes"] == 58
    assert counts["leaves"] > 30
    assert counts["holidays"] > 20
    manhole = conn.execute(text("SELECT grade, time_limit, time_unit, flow, component_classes"
                                " FROM event_category WHERE code = 'E010401'")).one()
    assert manhole[:4] == ("A", 2, "clock_hours", "component")
    assert "0101" in manhole[4]


def test_a_city_of_its_own(conn, tmp_path: Path) -> None:
    departments = tmp_path / "departments.csv"
    departments.write_text("key,name_zh,name_en,kind,handles\nNEW_DEPT,新部门,New Department,bureau,x\n",
                           encoding="utf-8")
    load_reference(conn, ReferenceFiles(departments=departments))
    assert conn.execute(text("SELECT name_zh FROM department WHERE key = 'NEW_DEPT'")).scalar() == "新部门"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("E099901,E0101,3,坏,bad,Z,TOWN,URBAN,,4,working_hours,grid_first,x", "'grade' is 'Z'"),
        ("E099901,E0101,3,坏,bad,B,NOBODY,URBAN,,4,working_hours,grid_first,x", "handler 'NOBODY'"),
        ("E099901,E0101,3,坏,bad,B,TOWN,URBAN,,-1,working_hours,grid_first,x", "time_limit '-1'"),
        ("E099901,E0101,3,坏,bad,B,TOWN,URBAN,,4,fortnights,grid_first,x", "'time_unit' is 'fortnights'"),
    ],
)
def test_a_bad_row_refuses_the_whole_file(conn, tmp_path: Path, row: str, message: str) -> None:
    header = "code,parent,level,name_zh,name_en,grade,handler,manager,enforcer,time_limit,time_unit,flow,closure"
    good = "E099900,E0101,3,好,good,B,TOWN,URBAN,,4,working_hours,grid_first,x"
    path = tmp_path / "events.csv"
    path.write_text("\n".join([header, good, row]) + "\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=message) as caught:
        load_reference(conn, ReferenceFiles(event_categories=path))
    assert "line 3" in str(caught.value)
    assert conn.execute(text("SELECT count(*) FROM event_category WHERE code = 'E099900'")).scalar() == 0
