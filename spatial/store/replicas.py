"""Hot standbys of the embedded cluster on the same machine (``gridlink db replica add|list|remove``).

A replica named N lives in ``<home>/replicas/N`` as a cluster of its own (``Cluster``: its data folder, log,
port and state file), made by ``pg_basebackup -R`` from the running primary: a streaming standby that
answers reads and refuses writes, fed through the physical replication slot ``gridlink_N`` so the primary
keeps the WAL it has not received yet. The primary is made ready for it once (``Cluster.enable_replication``:
``wal_level = replica``, WAL senders and slots; initdb's pg_hba already lets the superuser replicate from
127.0.0.1 with scram-sha-256). For tests and demos: production standbys run on other machines (patroni,
docs/scale-out.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from spatial.store.cluster import SUPERUSER, Cluster, ClusterError, ClusterState, free_port

NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica as ``gridlink db replica list`` shows it."""

    name: str
    port: int
    running: bool
    standby: bool  # False once promoted
    streaming: str | None  # the primary's pg_stat_replication.state for it, None when not connected
    lag_bytes: int | None  # WAL the primary has and the replica has not replayed


def replicas_home(primary: Cluster) -> Path:
    """The folder that holds the primary's replicas."""
    return primary.home / "replicas"


def replica(primary: Cluster, name: str) -> Cluster:
    """The cluster of replica ``name`` (ClusterError for a name that is not ``[a-z][a-z0-9_]{0,30}``)."""
    if not NAME.match(name):
        raise ClusterError(f"a replica name is a lower-case letter, then letters, digits or _ (31 at most): {name!r}")
    return Cluster(replicas_home(primary) / name, log=primary.log)


def slot_name(name: str) -> str:
    """The primary's replication slot that feeds replica ``name``."""
    return f"gridlink_{name}"


def names(primary: Cluster) -> list[str]:
    """The names of the replicas made so far, sorted."""
    base = replicas_home(primary)
    return sorted(p.name for p in base.iterdir() if (p / "cluster.json").exists()) if base.exists() else []


def promoted(primary: Cluster) -> list[str]:
    """The replicas that were promoted: each is a primary of its own now."""
    return [name for name in names(primary) if not (replica(primary, name).pgdata / "standby.signal").exists()]


def add(primary: Cluster, name: str | None = None) -> Cluster:
    """Make, start and return a new hot standby of ``primary`` (started, with replication enabled first)."""
    name = name or next(f"replica{i}" for i in range(1, 1000) if f"replica{i}" not in names(primary))
    standby = replica(primary, name)
    if standby.home.exists():
        raise ClusterError(f"replica {name!r} exists already ({standby.home})")
    state = primary.enable_replication()
    private = 0o711 if os.geteuid() == 0 else 0o700  # the postgres account passes through to its data folder
    replicas_home(primary).mkdir(mode=private, exist_ok=True)
    standby.home.mkdir(mode=private)
    standby.pgdata.mkdir(mode=0o700)
    standby.chown(standby.pgdata)
    primary.log(f"pg_basebackup: copying the primary into {standby.pgdata}")
    done = primary.run([
        str(Path(state.bindir) / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(state.port), "-U", SUPERUSER,
        "-D", str(standby.pgdata), "-R", "-X", "stream", "-C", "-S", slot_name(name), "--checkpoint=fast",
    ], env=dict(os.environ, PGPASSWORD=state.password))
    if done.returncode != 0:
        shutil.rmtree(standby.home, ignore_errors=True)
        _drop_slot(primary, name)
        raise ClusterError(f"pg_basebackup failed:\n{done.stderr.strip()}")
    standby.statefile.write_text(json.dumps(ClusterState(
        port=free_port(), password=state.password, bindir=state.bindir, replication=True).__dict__, indent=1))
    standby.statefile.chmod(0o600)
    standby.start()
    return standby


def remove(primary: Cluster, name: str) -> None:
    """Stop replica ``name``, drop its slot on the primary (so WAL is no longer kept for it), delete it."""
    standby = replica(primary, name)
    if not standby.statefile.exists():
        raise ClusterError(f"no replica {name!r}; replicas: {', '.join(names(primary)) or 'none'}")
    standby.stop()
    _drop_slot(primary, name)
    shutil.rmtree(standby.home)


def status(primary: Cluster) -> list[ReplicaStatus]:
    """Every replica with what the primary (when it runs) says of its stream."""
    streams: dict[str, tuple[str | None, int | None]] = {}
    if primary.running():
        rows = _query(primary, """
            SELECT s.slot_name, r.state, pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint
              FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid""")
        streams = {slot: (state, lag) for slot, state, lag in rows}
    found = []
    for name in names(primary):
        standby = replica(primary, name)
        state = standby.state()
        streaming, lag = streams.get(slot_name(name), (None, None))
        found.append(ReplicaStatus(name=name, port=state.port if state else 0, running=standby.running(),
                                   standby=(standby.pgdata / "standby.signal").exists(),
                                   streaming=streaming, lag_bytes=lag))
    return found


def _drop_slot(primary: Cluster, name: str) -> None:
    """Drop the replica's slot once its WAL sender has gone (it lingers a moment after the standby stops)."""
    if not primary.running():
        return
    for _ in range(100):
        left = _query(primary, "SELECT active, CASE WHEN NOT active THEN pg_drop_replication_slot(slot_name) END "
                               "FROM pg_replication_slots WHERE slot_name = %s", (slot_name(name),))
        if not left or not left[0][0]:
            return
        time.sleep(0.1)
    raise ClusterError(f"the replication slot {slot_name(name)} is still in use: stop whatever streams from it")


def _query(cluster: Cluster, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    state = cluster.state()
    if state is None:
        raise ClusterError(f"no cluster in {cluster.home}")
    conn = psycopg2.connect(host="127.0.0.1", port=state.port, user=SUPERUSER, password=state.password,
                            dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()
