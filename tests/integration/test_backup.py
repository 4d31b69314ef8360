"""gridlink backup / restore: a backup restored into a fresh cluster gives identical row counts and a working
PostGIS; a restore never overwrites a database that holds tables unless told to."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from api.cli import main as cli
from spatial.settings import PROJECT_ROOT
from spatial.store.cluster import Cluster

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GRIDLINK_DATABASE_URL")), reason="an external server is configured"
)


@pytest.fixture
def fresh_cluster() -> Iterator[Cluster]:
    home = PROJECT_ROOT / ".gridlink" / "test-clusters" / "restore"
    shutil.rmtree(home, ignore_errors=True)
    cluster = Cluster(home, log=lambda *_: None)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(home, ignore_errors=True)


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = [t for (t,) in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"))]
            return {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar()) for t in tables}
    finally:
        engine.dispose()


def test_restore_into_a_fresh_cluster_gives_identical_counts(small_demo, fresh_cluster, tmp_path: Path,
                                                              monkeypatch, capsys) -> None:
    source = small_demo.url.render_as_string(hide_password=False)
    dump = PROJECT_ROOT / ".gridlink" / "test-clusters" / "demo.dump"
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", source)
    assert cli(["backup", str(dump)]) == 0
    assert dump.stat().st_size > 0 and not dump.with_suffix(".dump.partial").exists()
    state = fresh_cluster.state()
    assert state is not None
    target = state.url("restored")
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", target)
    assert cli(["restore", str(dump)]) == 0
    before, after = _counts(source), _counts(target)
    assert after == before and before["component"] > 0 and before["case"] > 0
    engine = create_engine(target)
    with engine.connect() as conn:
        covered = conn.execute(text(
            "SELECT grid_code FROM grid_geometry WHERE valid_to IS NULL AND kind = 'base'"
            " AND ST_Covers(geom, (SELECT ST_PointOnSurface(geom) FROM grid_geometry WHERE valid_to IS NULL"
            " AND kind = 'base' ORDER BY grid_code LIMIT 1)) ORDER BY grid_code LIMIT 1")).scalar()
        assert covered is not None  # PostGIS works on the restored data
    engine.dispose()
    capsys.readouterr()
    assert cli(["restore", str(dump)]) == 2  # the target now holds tables
    assert "already holds tables" in capsys.readouterr().err
    assert cli(["restore", str(tmp_path / "missing.dump")]) == 2
    dump.unlink()


def test_a_backup_is_private(engine, tmp_path: Path) -> None:
    """A dump holds password hashes and reporters' phone numbers: owner-only file in an owner-only folder
    (issue 23, finding 12; before, both followed the umask, world-readable)."""
    from spatial.store.backup import backup

    dump = backup(engine.url.render_as_string(hide_password=False), tmp_path / "new" / "private.dump")
    assert dump.stat().st_size > 0
    assert dump.stat().st_mode & 0o777 == 0o600
    assert dump.parent.stat().st_mode & 0o777 == 0o700
