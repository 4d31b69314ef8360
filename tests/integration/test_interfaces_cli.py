"""What the README and ``--help`` promise a newcomer (issue 24, item 5): the CSV columns of ``gridlink import
cases`` (README and ``--help``, against the columns the parser reads), the exit status of every command
(a partly successful import exits 4 and says so), the Open311 endpoints in the API table, and what the demo
covers (base grids in Wuzhong and Wujiang only; a point in another district is located to its town and a
report there is refused, saying why)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import cli
from spatial.cases.bulk_files import TEXT_FIELDS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
COLUMNS = ("category", "lon", "lat", "reported_at", *TEXT_FIELDS)  # what spatial/cases/bulk_files.py reads
INSIDE = "E010101,{lon},31.15,inside\n"


def _csv(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "batch.csv"
    path.write_text("category,lon,lat,description\n" + rows, encoding="utf-8")
    return path


def test_import_help_and_readme_name_every_csv_column() -> None:
    helped = subprocess.run([sys.executable, "-m", "api.cli", "import", "--help"], capture_output=True, text=True,
                            check=True).stdout
    table = README[README.index("**`import cases` files**"):README.index("**Exit status**")]
    for column in COLUMNS:
        assert re.search(rf"\b{column}\b", helped), f"--help lacks {column}"
        assert f"`{column}`" in table, f"README lacks {column}"


def test_every_exit_status_is_documented_alike() -> None:
    helped = subprocess.run([sys.executable, "-m", "api.cli", "--help"], capture_output=True, text=True,
                            check=True).stdout
    in_help = {int(n) for n in re.findall(r"^\s{4}(\d+)\s{2,}", helped[helped.index("Exit status"):], re.M)}
    section = README[README.index("**Exit status**"):].split("\n\n")[1]  # the table after the heading
    in_readme = {int(n) for n in re.findall(r"^\| (\d+) \|", section, re.M)}
    used = {cli.EXIT_OK, cli.EXIT_REFUSED, cli.EXIT_USAGE, cli.EXIT_NOT_RUNNING, cli.EXIT_PARTIAL, 130}
    assert in_help == in_readme == used


@pytest.fixture
def on_world(world_engine: Engine, no_cases: None, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", world_engine.url.render_as_string(hide_password=False))
    return world_engine


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text('SELECT count(*) FROM "case"')).scalar_one()


def test_import_cases_exit_status(on_world: Engine, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["import", "cases", str(_csv(tmp_path, INSIDE.format(lon=120.02)))]) == 0
    assert _stored(on_world) == 1 and "partly" not in capsys.readouterr().err
    mixed = _csv(tmp_path, INSIDE.format(lon=120.03) + "E010101,100.0,20.0,far away\n")
    assert cli.main(["import", "cases", str(mixed)]) == 4
    err = capsys.readouterr().err
    assert "partly imported: 1 rows stored, 1 refused (exit 4)" in err and "row 2:" in err
    assert _stored(on_world) == 2
    assert cli.main(["import", "cases", str(mixed), "--all-or-nothing"]) == 1
    assert "nothing imported" in capsys.readouterr().err and _stored(on_world) == 2
    assert cli.main(["import", "cases", str(_csv(tmp_path, "E010101,100.0,20.0,far\n"))]) == 1
    assert cli.main(["import", "cases", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_readme_lists_every_open311_endpoint(world_client: TestClient) -> None:
    paths = {p for p in world_client.get("/openapi.json").json()["paths"] if p.startswith("/open311/")}
    assert len(paths) >= 6
    for path in paths:
        pattern = re.escape(path).replace(re.escape("{fmt}"), r"\{json\\\|xml\}")
        pattern = re.sub(r"\\\{(?!json)[a-z_]+\\\}", r"\{[a-z_]+\}", pattern)
        assert re.search(pattern, README), f"README's API table lacks {path}"


@pytest.fixture(scope="module")
def demo_client(small_demo: Engine) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(url=small_demo.url.render_as_string(hide_password=False))) as client:
        yield client


def test_the_demo_covers_what_the_readme_says(small_demo: Engine, demo_client: TestClient) -> None:
    with small_demo.connect() as conn:
        with_grids = set(conn.execute(text("SELECT DISTINCT left(grid_code, 6) FROM grid_geometry"
                                           " WHERE valid_to IS NULL AND kind = 'base'")).scalars())
        bare = conn.execute(text(
            "SELECT d.grid_code, ST_X(p), ST_Y(p) FROM grid_geometry d, ST_PointOnSurface(d.geom) p"
            " WHERE d.valid_to IS NULL AND d.kind = 'district' AND left(d.grid_code, 6) <> ALL(:with)"
            " ORDER BY d.grid_code LIMIT 1"), {"with": sorted(with_grids)}).one()
    assert with_grids == {"320506", "320509"}  # Wuzhong and Wujiang
    district, lon, lat = bare
    located = demo_client.get("/api/v1/locate", params={"lon": lon, "lat": lat})
    assert located.status_code == 200
    where = located.json()
    assert where["district"]["code"] == district and where["town"] is not None  # built to town level
    assert where["community"] is None and where["grid"] is None
    report = demo_client.post("/open311/v2/requests.json",
                              data={"service_code": "E010101", "lat": str(lat), "long": str(lon)})
    assert report.status_code == 422 and "has no base grids" in report.json()[0]["description"], report.text
