"""Backups: ``gridlink backup`` (pg_dump, custom format) and ``gridlink restore`` (pg_restore).

A backup is one pg_dump custom-format file: schema, data and the Alembic revision, compressed, restorable
table by table. A restore goes into an empty database (made if missing); it refuses a database that already
holds gridlink tables unless told to replace them, so that a mistyped name never overwrites live data. The
server's own client binaries are used (``find_bindir``), with the password passed in the environment,
never on the command line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from spatial.store.cluster import find_bindir


class BackupError(RuntimeError):
    """pg_dump or pg_restore failed, or the target is not safe to restore into; the message says why."""


def _client_args(url: str) -> tuple[list[str], dict[str, str]]:
    parsed = make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres"]
    env = {**os.environ, "PGPASSWORD": parsed.password or "", "PGCONNECT_TIMEOUT": "10"}
    return args, env


def backup(url: str, target: Path) -> Path:
    """Dump the database at ``url`` into ``target`` (custom format); return the file. A dump holds every
    account's hash and every reporter's name and phone: it is readable by its owner only (0600), in a folder
    made private (0700) when this creates it."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    args, env = _client_args(url)
    partial = target.with_suffix(target.suffix + ".partial")
    done = subprocess.run([str(find_bindir() / "pg_dump"), *args, "-d", make_url(url).database or "",
                           "-Fc", "--no-owner", "-f", str(partial)], env=env, capture_output=True, text=True,
                          umask=0o077)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    partial.chmod(0o600)
    partial.replace(target)  # a file named like a backup is always a whole one
    return target


def _holds_tables(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys')"
            )).scalar())
    finally:
        engine.dispose()


def _ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).first():
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def restore(source: Path, url: str, replace: bool = False) -> None:
    """Restore ``source`` into the database at ``url`` (made if missing; must be empty unless ``replace``)."""
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    _ensure_database(url)
    if _holds_tables(url) and not replace:
        raise BackupError(f"{make_url(url).database} already holds tables: restore into an empty database, "
                          "or pass --replace to drop and replace them")
    args, env = _client_args(url)
    flags = ["--clean", "--if-exists"] if replace else []
    done = subprocess.run([str(find_bindir() / "pg_restore"), *args, "-d", make_url(url).database or "",
                           "--no-owner", "--exit-on-error", "--single-transaction", *flags, str(source)],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was restored): {done.stderr.strip()[-500:]}")
