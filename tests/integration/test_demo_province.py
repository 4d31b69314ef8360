"""The province generator (spatial/demo/province.py), built small through ``gridlink demo --scale province``:
its grids partition every parent, codes extend their parents', components and cases sit in their grids, and
``/api/v1/locate`` finds the base grid a point was drawn in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import cli
from spatial.demo.province import ProvinceScale
from spatial.grids.topology import check_partition, component_grid_mismatches
from tests.conftest import migrated_engine

# 2 cities × 2 districts × 3 towns × 6 communities, 60 base grids; at --fraction 0.5: 1,000 components and
# 30 cases a day for 4 days.
TINY = ProvinceScale(cities=2, districts_per_city=2, towns_per_district=3, communities_per_district=6,
                     grids_total=60, components=2000, cases_per_day=60, days=4)


@pytest.fixture(scope="module")
def province(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The tiny province, built by the CLI into its own database."""
    engine = migrated_engine("gridlink_test_province")
    monkeypatch_module.setenv("GRIDLINK_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch_module.setattr("spatial.demo.province.PROVINCE", TINY)
    assert cli.main(["demo", "--scale", "province", "--fraction", "0.5", "--seed", "7"]) == 0
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_counts_follow_the_scale_and_the_fraction(province: Engine) -> None:
    with province.connect() as conn:
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM grid GROUP BY kind")).all())
        assert kinds == {"district": 4, "town": 12, "community": 24, "base": 60}
        assert conn.execute(text("SELECT count(*) FROM component")).scalar() == 1000
        per_district = dict(conn.execute(text(
            "SELECT district_code, count(*) FROM component GROUP BY 1")).all())
        assert per_district == {"320101": 250, "320102": 250, "320201": 250, "320202": 250}
        days = conn.execute(text(
            "SELECT count(DISTINCT (reported_at AT TIME ZONE 'Asia/Shanghai')::date) FROM \"case\"")).scalar()
        assert days == 4
        cases = conn.execute(text('SELECT count(*) FROM "case"')).scalar()
        assert 60 < cases < 180  # Poisson around 30 a day (×1.12 on weekdays, ×0.7 at weekends)
        demo = conn.execute(text("SELECT value FROM meta WHERE key = 'demo'")).scalar()
        assert demo["scale"] == "province×0.5"


def test_every_level_partitions_its_parent(province: Engine) -> None:
    with province.connect() as conn:
        for level in (1, 2, 3):
            report = check_partition(conn, level)
            assert report.parents > 0 and report.ok, report
        # the districts tile their cities, the cities the extent: together they cover a rectangle once (planar
        # areas in degrees², ~1.05e10 m² each here: a geodesic area would bend the rectangle's long edges)
        gap, overlap = conn.execute(text(
            "SELECT ST_Area(ST_SymDifference(ST_Union(geom), ST_Envelope(ST_Union(geom)))),"
            " sum(ST_Area(geom)) - ST_Area(ST_Union(geom))"
            " FROM grid_geometry WHERE kind = 'district' AND valid_to IS NULL")).one()
        assert gap * 1.05e10 < 1.0 and abs(overlap) * 1.05e10 < 1.0


def test_codes_extend_their_parents(province: Engine) -> None:
    with province.connect() as conn:
        bad = conn.execute(text(
            "SELECT code, parent_code FROM grid WHERE level > 1"
            " AND (left(code, length(parent_code)) <> parent_code OR length(code) <> length(parent_code) + 3)"
        )).all()
        assert bad == []
        assert conn.execute(text(
            "SELECT count(*) FROM grid WHERE level = 1 AND code !~ '^32(01|02)0[12]$'")).scalar() == 0
        assert conn.execute(text(
            "SELECT count(*) FROM grid WHERE level = 4 AND parent_code NOT IN (SELECT code FROM grid)")).scalar() == 0


def test_components_and_cases_sit_in_their_grids(province: Engine) -> None:
    with province.connect() as conn:
        assert component_grid_mismatches(conn) == []
        assert conn.execute(text(
            "SELECT count(*) FROM component WHERE left(code, 6) <> district_code"
            " OR left(grid_code, 6) <> district_code")).scalar() == 0
        misplaced = conn.execute(text(
            'SELECT count(*) FROM "case" c JOIN grid_geometry g ON g.grid_code = c.grid_code'
            " AND g.valid_to IS NULL WHERE NOT ST_Intersects(g.geom, c.location)")).scalar()
        assert misplaced == 0
        assert conn.execute(text(
            'SELECT count(*) FROM "case" WHERE district_code <> left(grid_code, 6)')).scalar() == 0


def test_a_located_point_lands_in_its_base_grid(province: Engine) -> None:
    from api.app import create_app
    from spatial.access.accounts import add_user, create_token

    with province.begin() as conn:
        add_user(conn, "province.admin", role="admin", scope="*", password="correct horse battery staple")
        token = create_token(conn, "province.admin", label="tests", ttl=None)[0]
        samples = conn.execute(text(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT grid_code AS code, ST_PointOnSurface(geom) AS p"
            " FROM grid_geometry WHERE kind = 'base' AND valid_to IS NULL ORDER BY grid_code) s"
            " WHERE right(code, 1) IN ('1', '5')")).all()
    assert len(samples) >= 10
    url = province.url.render_as_string(hide_password=False)
    with TestClient(create_app(url=url), headers={"Authorization": f"Bearer {token}"}) as client:
        for code, lon, lat in samples:
            reply = client.get("/api/v1/locate", params={"lon": lon, "lat": lat})
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["grid"]["code"] == code
            assert [body[level]["code"] for level in ("district", "town", "community")] == [
                code[:6], code[:9], code[:12]]
        outside = client.get("/api/v1/locate", params={"lon": 100.0, "lat": 20.0})
        assert outside.status_code in (404, 422) and outside.headers["content-type"].startswith(
            "application/problem+json")


def test_the_cli_refuses_a_fraction_without_the_province(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["demo", "--scale", "city", "--fraction", "0.1"]) == 2
    assert cli.main(["demo", "--scale", "province", "--fraction", "1.5"]) == 2
    assert cli.main(["demo", "--small", "--scale", "province"]) == 2
    assert "--fraction" in capsys.readouterr().err
