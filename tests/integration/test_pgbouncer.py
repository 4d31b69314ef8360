"""Issue 22 item 4: gridlink served through PgBouncer in transaction mode (``GRIDLINK_DB_PGBOUNCER=1``): plain
and keyed intake, reads, and token revocations heard over a direct LISTEN connection
(``GRIDLINK_LISTEN_DATABASE_URL``), with fewer server connections than clients. Own throw-away cluster."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from spatial.access.accounts import create_token, revoke_token
from spatial.store.pgbouncer import start_pgbouncer
from tests.live import serving
from tests.standby import eventually, report, request, sql, world_primary

pytestmark = pytest.mark.skipif(shutil.which("pgbouncer") is None and os.environ.get("CI") != "true",
                                reason="pgbouncer is not installed (apt-get install pgbouncer; scripts/test does)")


def test_gridlink_works_through_pgbouncer_in_transaction_mode(monkeypatch) -> None:
    from sqlalchemy import create_engine

    with world_primary("pgbouncer") as (cluster, direct, token):
        sql(cluster, "ALTER ROLE gridlink SET statement_timeout = '30s'")  # the role carries it behind PgBouncer
        bouncer, port = start_pgbouncer(cluster, cluster.home / "pgbouncer", pool_size=2)
        try:
            state = cluster.state()
            pooled = f"postgresql+psycopg2://gridlink:{state.password}@127.0.0.1:{port}/gridlink"
            monkeypatch.setenv("GRIDLINK_DB_PGBOUNCER", "1")
            monkeypatch.setenv("GRIDLINK_LISTEN_DATABASE_URL", direct)
            with serving(pooled) as server:
                ids, failures = [], []

                def post(n: int) -> None:
                    # odd: the lean intake path (asyncpg); even: the keyed path (SQLAlchemy, psycopg2)
                    headers = {"Idempotency-Key": f"pgbouncer-{n}"} if n % 2 == 0 else {}
                    status, _, body = request(server, "POST", "/api/v1/cases", token, report(n), headers)
                    (ids if status == 201 else failures).append(json.loads(body).get("id") or body)

                clients = [threading.Thread(target=post, args=(n,)) for n in range(24)]
                for client in clients:
                    client.start()
                for client in clients:
                    client.join()
                assert failures == []
                status, _, body = request(server, "GET", "/api/v1/cases?limit=500", token)
                assert status == 200
                assert {c["id"] for c in json.loads(body)["cases"]} == set(ids)
                # never more than the 2 server connections PgBouncer keeps for 24 clients (+ the direct LISTEN)
                through = sql(cluster, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'gridlink' "
                                       "AND application_name <> 'psql' AND client_port IS NOT NULL")[0][0]
                assert through <= 2 + 1 + 1  # + the watcher's direct connection + this query's own

                # a token revoked elsewhere is refused: the watcher LISTENs on the direct connection
                engine = create_engine(direct)
                with engine.begin() as conn:
                    second = create_token(conn, "scale.admin", ttl=None)[0]
                assert request(server, "GET", "/api/v1/auth/session", second)[0] == 200  # cached now
                with engine.begin() as conn:
                    assert revoke_token(conn, second)
                engine.dispose()
                eventually(lambda: request(server, "GET", "/api/v1/auth/session", second)[0] == 401,
                           "the revocation is heard", within_s=10)  # below the 30 s cache TTL
        finally:
            bouncer.terminate()
            bouncer.wait(timeout=10)
