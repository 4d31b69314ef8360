"""A survey is streamed, not loaded (issue 18, "Bad input": a 2 GB file): the import reads the file in batches
of about BATCH_BYTES of it (spatial/components/survey.py), stages and stores each, and its memory follows the
batch, not the file. Shown with two surveys of the same number of rows, one of them 30 times the other's size
on disk (a 3,000-byte note on every row): each imported with the default options in a process of its own,
the wide one's peak resident memory exceeds the narrow one's by far less than the difference of the files.
(A 2 GB file of 520,000 such rows peaked at 414 MB: BENCHMARKS.md, "Component registry".)"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import shapely
from pyogrio.raw import write
from sqlalchemy import Engine, text

from spatial.components.survey import BATCH_BYTES, MIN_BATCH, Survey
from tests.integration.test_registry_import import engine_, registry_engine  # noqa: F401  (fixtures)

ROWS = 30_000
IMPORT = """
import json, resource, sys
from pathlib import Path
from sqlalchemy import create_engine
from spatial.access.audit import Actor
from spatial.access.principal import Principal
from spatial.components.importer import ImportOptions, import_survey
engine = create_engine(sys.argv[1])
report = import_survey(engine, Principal(0, "t", "admin", "*"), Actor("t", "admin", "local"), Path(sys.argv[2]),
                       ImportOptions(owner="WATER"))
print(json.dumps({"new": report.new, "refused": report.refused, "allocated": report.allocated,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _survey(path: Path, note: str, shift: float) -> Path:
    """ROWS points of class 0101 without codes on a grid inside district 320506, each with ``note`` + its number."""
    side = int(np.ceil(np.sqrt(ROWS)))
    xs, ys = np.meshgrid(np.linspace(120.02, 120.18, side) + shift, np.linspace(31.02, 31.18, side))
    geoms = shapely.points(np.column_stack([xs.ravel(), ys.ravel()])[:ROWS])
    fields = [np.full(ROWS, "0101", dtype=object), np.array([f"{note}{i}" for i in range(ROWS)], dtype=object)]
    write(path, shapely.to_wkb(geoms), fields, ["class_code", "note"], driver="GPKG", crs="EPSG:4326",
          geometry_type="Point")
    return path


def _import(engine: Engine, path: Path) -> dict:
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", IMPORT, url, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_wide_survey_is_read_in_fewer_rows_at_a_time(tmp_path: Path) -> None:
    def rows(size: int, total: int, driver: str = "GPKG", name: str = "s.gpkg") -> int:
        path = tmp_path / name
        with path.open("wb") as f:  # a sparse file of ``size`` bytes
            f.truncate(size)
        return Survey(path, driver, None, [], {}, "EPSG:4326", None, total).batch_rows(20_000)

    assert rows(0, 0) == 20_000  # an empty survey
    assert rows(88_453_120, 680_000) == 20_000  # the demo's survey (130 bytes a row): as many as before
    assert rows(4_000 * 500_000, 500_000) == BATCH_BYTES // 4_000  # 4 KB rows: ~2,000 at a time
    assert rows(10**9, 10) == MIN_BATCH  # never fewer
    # a Shapefile's rows are in its .shp and .dbf: both count, nothing else does
    (tmp_path / "s.dbf").write_bytes(b"x" * 4_000_000)
    (tmp_path / "other.dbf").write_bytes(b"x" * 4_000_000)  # not this survey's
    (tmp_path / "s.qix").write_bytes(b"x" * 4_000_000)  # an index, not rows
    assert rows(1_000_000, 1_000, "ESRI Shapefile", "s.shp") == BATCH_BYTES // 5_000
    # zipped (as uploads come): the sizes of its .shp and .dbf unzipped, not of the compressed archive
    with zipfile.ZipFile(tmp_path / "z.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("z.shp", b"\0" * 1_000_000)
        archive.writestr("z.dbf", b" " * 4_000_000)
        archive.writestr("z.prj", b"GEOGCS[]" * 10_000)
    assert (tmp_path / "z.zip").stat().st_size < 100_000
    assert Survey(tmp_path / "z.zip", "ESRI Shapefile", None, [], {}, "EPSG:4326", None, 1_000).batch_rows(20_000) \
        == BATCH_BYTES // 5_000


def test_a_survey_is_streamed_not_loaded(engine_: Engine, tmp_path: Path) -> None:  # noqa: F811
    narrow = _survey(tmp_path / "narrow.gpkg", "n", shift=0.0)
    wide = _survey(tmp_path / "wide.gpkg", "井" * 1000, shift=0.00013)  # no place of the narrow one
    difference_kib = (wide.stat().st_size - narrow.stat().st_size) / 1024
    assert difference_kib > 25 * narrow.stat().st_size / 1024 > 2_000  # the wide file is ~120 MB, the narrow ~4

    small, big = _import(engine_, narrow), _import(engine_, wide)
    assert small == {**small, "new": ROWS, "refused": 0, "allocated": ROWS}
    assert big == {**big, "new": ROWS, "refused": 0, "allocated": ROWS}
    grown = big["peak_kib"] - small["peak_kib"]
    assert grown < difference_kib / 4, f"peak memory grew by {grown:.0f} KiB for {difference_kib:.0f} KiB more file"
    with engine_.connect() as conn:  # every row stored, numbered in row order within its series, once
        found = conn.execute(text(
            "SELECT count(*), count(DISTINCT code), min(code), max(code) FROM component WHERE source = 'survey'"
            " AND class_code = '0101' AND note LIKE '井%'")).one()
    assert found[0] == found[1] == ROWS
    assert int(found[3][10:]) - int(found[2][10:]) == ROWS - 1
