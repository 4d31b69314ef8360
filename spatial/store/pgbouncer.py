"""A PgBouncer (Debian ``pgbouncer``) in front of an embedded cluster, for tests and benchmarks: its
configuration in a folder of its own, run as the cluster's account (PgBouncer, like PostgreSQL, refuses root),
on a free loopback port. Production PgBouncers are configured by their operators (docs/scale-out.md)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from spatial.store.cluster import SUPERUSER, Cluster, ClusterError, free_port


def start_pgbouncer(cluster: Cluster, folder: Path, mode: str = "transaction",
                    pool_size: int = 4) -> tuple[subprocess.Popen, int]:
    """Start PgBouncer in ``mode`` for the database ``gridlink`` of ``cluster``; (process, port), answering."""
    import psycopg2

    state = cluster.state()
    if state is None:
        raise ClusterError(f"no cluster in {cluster.home}")
    folder.mkdir(mode=0o700, exist_ok=True)
    port = free_port()
    (folder / "users.txt").write_text(f'"{SUPERUSER}" "{state.password}"\n')
    (folder / "pgbouncer.ini").write_text("\n".join([
        "[databases]", f"gridlink = host=127.0.0.1 port={state.port} dbname=gridlink",
        "[pgbouncer]", "listen_addr = 127.0.0.1", f"listen_port = {port}", "unix_socket_dir =",
        "auth_type = scram-sha-256", f"auth_file = {folder / 'users.txt'}", f"pool_mode = {mode}",
        f"default_pool_size = {pool_size}", "max_client_conn = 500", f"logfile = {folder / 'pgbouncer.log'}",
        "ignore_startup_parameters = extra_float_digits", "",
    ]))
    for path in (folder, *folder.iterdir()):
        cluster.chown(path)
        path.chmod(0o700 if path.is_dir() else 0o600)
    runas: dict[str, Any] = {} if os.geteuid() != 0 else {"user": "postgres", "group": "postgres", "extra_groups": []}
    process = subprocess.Popen(["pgbouncer", "-q", str(folder / "pgbouncer.ini")], cwd="/", **runas)
    deadline = time.monotonic() + 10
    while True:
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, password=state.password,
                             dbname="gridlink").close()
            return process, port
        except psycopg2.OperationalError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.terminate()
                raise
            time.sleep(0.2)
