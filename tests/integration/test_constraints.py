"""The database itself refuses bad codes, invalid geometry and edits of append-only history."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

SQUARE = "SRID=4326;MULTIPOLYGON(((120 31,120.01 31,120.01 31.01,120 31.01,120 31)))"


def _grid(conn, code, level, kind, parent):
    conn.execute(text("INSERT INTO grid (code, level, kind, name, parent_code) VALUES (:c, :l, :k, 'x', :p)"),
                 {"c": code, "l": level, "k": kind, "p": parent})


def test_codes_extend_their_parent(conn) -> None:
    _grid(conn, "320506", 1, "district", None)
    _grid(conn, "320506100", 2, "town", "320506")
    _grid(conn, "320506100001", 3, "community", "320506100")
    _grid(conn, "320506100001001", 4, "base", "320506100001")
    _grid(conn, "320506E0001", None, "enterprise", "320506")
    with pytest.raises(IntegrityError), conn.begin_nested():
        _grid(conn, "320507100", 2, "town", "320506")  # does not extend its parent
    with pytest.raises(IntegrityError), conn.begin_nested():
        _grid(conn, "3205061000", 2, "town", "320506")  # ten digits at level 2
    with pytest.raises(IntegrityError), conn.begin_nested():
        _grid(conn, "320506100001", 4, "base", "320506100")  # base grid with a community code


def test_invalid_geometry_is_refused(conn) -> None:
    _grid(conn, "320506", 1, "district", None)
    conn.execute(text("INSERT INTO grid_version (id, effective_at, author) VALUES (1, now(), 't')"))
    insert = text("INSERT INTO grid_geometry (grid_code, version_id, kind, geom, valid_from)"
                  " VALUES ('320506', 1, 'district', ST_GeomFromEWKT(:g), now())")
    conn.execute(insert, {"g": SQUARE})
    bowtie = "SRID=4326;MULTIPOLYGON(((120 31,120.01 31.01,120.01 31,120 31.01,120 31)))"
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert, {"g": bowtie})


def test_component_code_must_match_class_and_district(conn) -> None:
    _grid(conn, "320506", 1, "district", None)
    insert = text(
        "INSERT INTO component (code, class_code, district_code, manager_key, owner_key, maintainer_key, status,"
        " geom) VALUES (:code, '0118', '320506', 'LIGHTING', 'LIGHTING', 'LIGHTING', 'intact',"
        " ST_GeomFromEWKT('SRID=4326;POINT(120.5 31.2)'))"
    )
    conn.execute(insert, {"code": "3205060118000001"})
    for bad in ("3205060101000002", "3205070118000003", "320506011800004"):
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(insert, {"code": bad})


def test_history_is_append_only(conn) -> None:
    test_component_code_must_match_class_and_district(conn)
    conn.execute(text("INSERT INTO component_history (component_code, at, actor, action)"
                      " VALUES ('3205060118000001', now(), 'test', 'create')"))
    with pytest.raises(DBAPIError, match="append-only"), conn.begin_nested():
        conn.execute(text("UPDATE component_history SET actor = 'someone else'"))
    with pytest.raises(DBAPIError, match="append-only"), conn.begin_nested():
        conn.execute(text("DELETE FROM component_history"))


def test_bulk_load_key_check_finds_dangling_rows(conn) -> None:
    from spatial.store.integrity import ForeignKeyError, check_foreign_keys, skip_row_triggers

    assert skip_row_triggers(conn)
    conn.execute(text("INSERT INTO team_member (grid_code, role, name) VALUES ('320599999', 'chief', 'x')"))
    with pytest.raises(ForeignKeyError, match="team_member point at missing rows of grid"):
        check_foreign_keys(conn, ("team_member", "grid"))
    check_foreign_keys(conn, ("team_member",), scope={"team_member": "c.grid_code <> '320599999'"})  # scoped: clean
