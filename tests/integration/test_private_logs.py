"""Secrets and personal data stay out of logs, and the embedded cluster's files are private (issue 23,
finding 12)."""

from __future__ import annotations

import http.client
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from spatial.settings import DatabaseSettings
from spatial.store.cluster import Cluster, ClusterState
from spatial.store.db import make_engine

SECRET = "glt_SECRET-that-must-not-be-logged"


def _get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_access_log_never_holds_a_key_or_token(world_engine, tmp_path: Path) -> None:
    from tests.live import serving

    log = tmp_path / "server.log"
    with serving(world_engine.url.render_as_string(hide_password=False), log=log, level="info") as port:
        for path in (f"/open311/v2/requests.json?api_key={SECRET}&status=open",
                     f"/open311/v2/requests.json?status=open&API_KEY={SECRET}",
                     f"/api/v1/health?access_token={SECRET}", f"/api/v1/health?token={SECRET}&password={SECRET}",
                     f"/api/v1/health?api_key={SECRET.replace('-', '%2D')}"):
            _get(port, path)
    written = log.read_text(encoding="utf-8", errors="replace")
    assert "GET /open311/v2/requests.json?api_key=[redacted]&status=open" in written  # still an access log
    assert "SECRET" not in written and "%2D" not in written


def test_a_failing_insert_does_not_echo_its_values(world_engine) -> None:
    engine = make_engine(world_engine.url.render_as_string(hide_password=False), DatabaseSettings())
    try:
        with pytest.raises(DBAPIError) as failed, engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_log (actor, action) VALUES (:who, 'x')"), {"who": SECRET * 10})
    finally:
        engine.dispose()
    assert "SECRET" not in str(failed.value)  # the message of a 500's log line, and of every traceback


def test_the_cluster_keeps_failing_statements_and_their_values_out_of_its_log(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "home", log=lambda *_: None)
    cluster.pgdata.mkdir(parents=True)
    cluster._write_conf(ClusterState(port=5432, password="x", bindir="/usr/lib/postgresql/15/bin"))
    conf = dict(line.split(" = ", 1) for line in (cluster.pgdata / "gridlink.conf").read_text().splitlines())
    assert conf["log_min_error_statement"] == "'panic'"  # psycopg2 sends values inside the statement text
    assert conf["log_min_messages"] == "'log'"  # a client's ERROR (it quotes the bad value) is the client's
    assert conf["log_error_verbosity"] == "'terse'"  # no DETAIL: a unique violation's key values
    assert conf["log_parameter_max_length"] == conf["log_parameter_max_length_on_error"] == "'0'"


def test_the_cluster_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "postgres.log").write_text("written by an older gridlink\n")
    (home / "postgres.log").chmod(0o644)
    cluster = Cluster(home, log=lambda *_: None)
    cluster.keep_private()
    assert stat.S_IMODE(cluster.logfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) & 0o077 in (0, 0o011 if os.geteuid() == 0 else 0)
    assert not stat.S_IMODE(home.stat().st_mode) & 0o044  # nobody else may list it
