"""Property-based run over our OpenAPI document (REST and Open311) with schemathesis against a live server on
a copy of the test world of its own: no request, however odd, gets a 500, and every reply matches the
documented schema. (Its own: with an administrator's token the stateful phase commits plans, grid and component
edits — on the shared world they changed what later test modules read, e.g. a base grid's name in its tiles.)

Every phase runs — the document's examples, the coverage phase (boundary and hostile values of every
parameter), fuzzing, and the stateful phase (sequences of calls linked by the responses, e.g. a created
case then read by its id) — with 50 examples per operation. The seed changes per run, so that CI explores
further over time; it is printed (and named in a failure) and ``GRIDLINK_SCHEMATHESIS_SEED`` fixes it to
replay a run. A failure found once is kept as an explicit regression example in
``tests/regressions/schemathesis_examples.json`` (replayed on every run by tests/regressions/), so it stays
tested whatever the seed. (schemathesis' generation database is not committed: it also stores examples of
passing runs, hundreds of files per run.)

Runs found: a time filter with a +16:46 offset (valid ISO 8601, beyond PostgreSQL's ±15:59) was a 500; a
NUL byte in a login was a 500 (stateful phase).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from spatial.access.accounts import create_token
from tests.conftest import TEST_ADMIN, world_database
from tests.live import serving

KEPT = "tests/regressions/schemathesis_examples.json"
MAX_EXAMPLES = "50"


def run_seed() -> str:
    """The seed of this run: ``GRIDLINK_SCHEMATHESIS_SEED``, or a new random one."""
    return os.environ.get("GRIDLINK_SCHEMATHESIS_SEED") or str(random.SystemRandom().randrange(2**63))


@pytest.fixture(scope="module")
def fuzz_world() -> Iterator[Engine]:
    """The test world (tests/world.py) in a database of its own, with the world's administrator."""
    engine = world_database("gridlink_test_fuzz_world")
    yield engine
    engine.dispose()


def test_no_500s_and_replies_match_the_schema(fuzz_world: Engine, tmp_path: Path) -> None:
    world_engine = fuzz_world
    seed = run_seed()
    print(f"schemathesis seed {seed} (GRIDLINK_SCHEMATHESIS_SEED={seed} replays this run)")
    # An admin token, so that the routes behind accounts are exercised too; DELETE operations are left out
    # (logging out would revoke the token and leave the rest of the run at 401); the live feed is left out too
    # (a stream answers until it ends: tests/integration/test_feed.py covers it over HTTP).
    with world_engine.begin() as conn:
        token = create_token(conn, TEST_ADMIN, label="schemathesis", ttl=None)[0]
    with serving(world_engine.url.render_as_string(hide_password=False), log=tmp_path / "server.log") as port:
        st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
        run = subprocess.run([st, "run", f"http://127.0.0.1:{port}/openapi.json", "--checks",
                              "not_a_server_error,response_schema_conformance", "--max-examples", MAX_EXAMPLES,
                              "--phases", "examples,coverage,fuzzing,stateful", "--seed", seed,
                              "--generation-database", str(tmp_path / "examples"), "--no-color",
                              "-H", f"Authorization: Bearer {token}", "--exclude-method", "DELETE",
                              "--exclude-path", "/api/v1/events/stream"],
                             capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert run.returncode == 0, (f"seed {seed} (set GRIDLINK_SCHEMATHESIS_SEED={seed} to replay); keep each "
                                 f"failure below in {KEPT}\n" + run.stdout[-6000:])
