"""A small known-answer world: one district, two towns × two communities × four base grids, plus a
special grid and a few components at known places (SPEC STYLE: small known-answer fixtures).

District 320506 is the box lon 120.0–120.4, lat 31.0–31.2. Town 001 is the west half, town 002 the east
half; each town's community 001 is its north half and 002 its south half; each community is cut into four
base grids of 0.05° width, numbered west→east (001…004). A special (scenic) grid overlaps the middle.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

DISTRICT = "320506"


def box(x0: float, y0: float, x1: float, y1: float) -> str:
    """Return WKT of an axis-aligned box."""
    return f"MULTIPOLYGON((({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})))"


def _add(conn: Connection, code: str, level: int | None, kind: str, parent: str | None, name: str,
         wkt: str) -> None:
    conn.execute(text("INSERT INTO grid (code, level, kind, name, parent_code) VALUES (:c, :l, :k, :n, :p)"),
                 {"c": code, "l": level, "k": kind, "n": name, "p": parent})
    conn.execute(text("INSERT INTO grid_geometry (grid_code, version_id, kind, geom, valid_from)"
                      " VALUES (:c, 1, :k, ST_GeomFromText(:w, 4326), '2024-01-01')"),
                 {"c": code, "k": kind, "w": wkt})


def grid_code(town: int, community: int, grid: int) -> str:
    """Return the base grid code for 1-based town, community, grid numbers."""
    return f"{DISTRICT}{town:03d}{community:03d}{grid:03d}"


def build_world(conn: Connection) -> None:
    """Insert the world (the caller commits or rolls back)."""
    conn.execute(text("INSERT INTO grid_version (id, effective_at, author) VALUES (1, '2024-01-01', 'test')"
                      " ON CONFLICT DO NOTHING"))
    conn.execute(text("SELECT setval(pg_get_serial_sequence('grid_version', 'id'),"
                      " GREATEST((SELECT max(id) FROM grid_version), 1))"))
    _add(conn, DISTRICT, 1, "district", None, "测试区", box(120.0, 31.0, 120.4, 31.2))
    for town in (1, 2):
        x0 = 120.0 + (town - 1) * 0.2
        town_code = f"{DISTRICT}{town:03d}"
        _add(conn, town_code, 2, "town", DISTRICT, f"测试{town}街道", box(x0, 31.0, x0 + 0.2, 31.2))
        for community in (1, 2):
            y1 = 31.2 - (community - 1) * 0.1
            community_code = f"{town_code}{community:03d}"
            _add(conn, community_code, 3, "community", town_code, f"测试{town}-{community}社区",
                 box(x0, y1 - 0.1, x0 + 0.2, y1))
            for grid in (1, 2, 3, 4):
                gx = x0 + (grid - 1) * 0.05
                _add(conn, grid_code(town, community, grid), 4, "base", community_code,
                     f"测试{town}-{community}第{grid}网格", box(gx, y1 - 0.1, gx + 0.05, y1))
    _add(conn, f"{DISTRICT}S0001", None, "scenic", DISTRICT, "测试景区", box(120.15, 31.05, 120.25, 31.15))
    components = [
        ("3205060118000001", "0118", "POINT(120.0100 31.1500)", "intact"),   # street light
        ("3205060101000001", "0101", "POINT(120.0300 31.1500)", "intact"),   # water manhole cover
        ("3205060101000002", "0101", "POINT(120.0302 31.1500)", "removed"),  # retired, 19 m east
        ("3205060136000001", "0136", "POINT(120.3000 31.0500)", "intact"),   # camera
    ]
    for code, cls, wkt, status in components:
        conn.execute(text(
            "INSERT INTO component (code, class_code, district_code, grid_code, manager_key, owner_key,"
            " maintainer_key, status, geom) SELECT :code, :cls, :d, NULL, default_owner, default_owner,"
            " default_owner, :status, ST_GeomFromText(:wkt, 4326) FROM component_class WHERE code = :cls"
        ), {"code": code, "cls": cls, "d": DISTRICT, "status": status, "wkt": wkt})
    conn.execute(text("INSERT INTO grid (code, level, kind, name) VALUES ('320507', 1, 'district', '别区')"))
    conn.execute(text(
        "INSERT INTO component (code, class_code, district_code, manager_key, owner_key, maintainer_key, status,"
        " geom) VALUES ('3205070118000001', '0118', '320507', 'LIGHTING', 'LIGHTING', 'LIGHTING', 'intact',"
        " ST_GeomFromText('POINT(120.5 31.1)', 4326))"
    ))


def case_count(engine) -> int:
    """Return how many cases the database holds."""
    with engine.connect() as conn:
        return int(conn.execute(text('SELECT count(*) FROM "case"')).scalar_one())


def fresh_accounts(engine, accounts: dict[str, tuple[str, str]], password: str) -> dict[str, str]:
    """Make the accounts ``{login: (role, scope)}`` anew (dropping earlier ones of those logins and their
    tokens) and return a bearer token for each."""
    from spatial.access.accounts import add_user, create_token

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE account_id IN (SELECT id FROM account WHERE login = ANY(:l))"),
                     {"l": list(accounts)})
        conn.execute(text("DELETE FROM account WHERE login = ANY(:l)"), {"l": list(accounts)})
        for login, (role, scope) in accounts.items():
            add_user(conn, login, role=role, scope=scope, password=password)
        return {login: create_token(conn, login)[0] for login in accounts}
