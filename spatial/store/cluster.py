"""The embedded PostgreSQL + PostGIS cluster that lives under the project folder.

Each checkout gets its own cluster in ``<home>/pgdata`` listening only on 127.0.0.1 on a port chosen free at
start (kept in ``<home>/cluster.json``), with no Unix socket, a generated password and scram-sha-256
authentication. Two checkouts on one machine therefore never share files, ports or credentials. The folder
and the server log are private to their owner (``keep_private``), and the server logs no statement text,
parameters or client errors (``LOGGING``).

PostgreSQL refuses to run as root: when we are root the cluster runs as the ``postgres`` system user and its
folders belong to it; an ordinary user runs it as themselves.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POSTGIS_PACKAGE = "postgresql-{major}-postgis-3"
# pg_partman keeps the monthly partitions of the case trails (migration 0028, spatial/store/partitions.py).
PARTMAN_PACKAGE = "postgresql-{major}-partman"
SEARCH_MAJORS = (17, 16, 15, 14, 13)
SUPERUSER = "gridlink"

TUNING = {
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "effective_cache_size": "8GB",
    "random_page_cost": "1.1",
    "max_connections": "100",
    "jit": "off",
    # A private development cluster: no replication, so bulk loads into new tables skip the WAL.
    "wal_level": "minimal",
    "max_wal_senders": "0",
}

# A cluster with standbys (``gridlink db replica add``, spatial/store/replicas.py): enough WAL for them, slots,
# read-only queries on the standby, and feedback so long reads there are not cancelled by the primary's vacuum.
REPLICATION = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
}

# What the server log may hold (issue 23, finding 12). psycopg2 sends values inside the statement text, so a
# failing statement's text is personal data: never logged; nor the ERROR lines that clients cause (their
# message may quote the bad value; the client and gridlink's own log already have them, without values), nor
# a DETAIL (a unique violation's key values), nor bind parameters.
LOGGING = {
    "log_min_messages": "log",
    "log_min_error_statement": "panic",
    "log_error_verbosity": "terse",
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
    "log_statement": "none",
    "log_file_mode": "0600",
}


class ClusterError(RuntimeError):
    """The embedded cluster cannot be set up or started; the message says what to do."""


@dataclass(frozen=True)
class ClusterState:
    """What we remember about the cluster between runs."""

    port: int
    password: str
    bindir: str
    # Streams WAL to standbys (REPLICATION instead of the minimal WAL of TUNING); set by the first replica.
    replication: bool = False

    def url(self, dbname: str) -> str:
        """Return a SQLAlchemy URL for ``dbname`` in this cluster."""
        return f"postgresql+psycopg2://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"


def find_bindir() -> Path:
    """Return the newest PostgreSQL server binary folder on this machine."""
    for major in SEARCH_MAJORS:
        candidate = Path(f"/usr/lib/postgresql/{major}/bin")
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(
        "PostgreSQL server binaries not found. Install them, e.g. "
        "`sudo apt-get install postgresql-15 postgresql-15-postgis-3`, or set GRIDLINK_DATABASE_URL."
    )


def server_major(bindir: Path) -> int:
    """Return the major version of the server binaries in ``bindir``."""
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1].split(".")[0])


def extension_installed(major: int, name: str = "postgis") -> bool:
    """Tell whether extension ``name`` (its control file) is installed for server ``major``."""
    return any(
        Path(base.format(major=major), "extension", f"{name}.control").exists()
        for base in ("/usr/share/postgresql/{major}", "/usr/local/share/postgresql/{major}")
    )


APT_WAIT_S = int(os.environ.get("GRIDLINK_APT_WAIT_S", "900"))


def apt_install(packages: list[str], log=print) -> None:
    """``apt-get update`` and ``install``, waiting up to ``APT_WAIT_S`` for another package manager's lock
    instead of failing: install waits by itself (DPkg::Lock::Timeout), update is retried while only the
    lock stands in its way."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    wait = ["-o", f"DPkg::Lock::Timeout={APT_WAIT_S}"]
    deadline = time.monotonic() + APT_WAIT_S
    while True:
        update = subprocess.run(["apt-get", *wait, "update", "-q"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if update.returncode == 0:
            break
        if "lock" not in update.stderr.lower() or time.monotonic() > deadline:
            raise ClusterError(f"apt-get update failed: {update.stderr.strip()}")
        log("another package manager holds the apt lock: waiting …")
        time.sleep(5)
    subprocess.run(["apt-get", *wait, "install", "-y", "-q", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def ensure_postgis(major: int, log=print) -> None:
    """Install PostGIS and pg_partman with apt when missing and we may; otherwise say the exact command."""
    wanted = {"postgis": POSTGIS_PACKAGE.format(major=major), "pg_partman": PARTMAN_PACKAGE.format(major=major)}
    missing = [package for name, package in wanted.items() if not extension_installed(major, name)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ClusterError(f"{' and '.join(missing)} not installed. Run: sudo apt-get install -y {' '.join(missing)}")
    log(f"installing {' '.join(missing)} with apt-get (one time) …")
    apt_install(missing, log)
    for name, package in wanted.items():
        if not extension_installed(major, name):
            raise ClusterError(f"{package} installed but {name}.control is still missing")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Tell whether ``port`` on 127.0.0.1 can be bound by a server. SO_REUSEADDR as PostgreSQL sets it: right
    after a restart the old connections linger in TIME_WAIT, which blocks a plain bind but not a server's —
    without it the cluster moved to a new port on every restart under load, cutting off running servers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Cluster:
    """A private PostgreSQL cluster under ``home``."""

    def __init__(self, home: Path, log=print) -> None:
        self.home = home.resolve()
        self.pgdata = self.home / "pgdata"
        self.logfile = self.home / "postgres.log"
        self.statefile = self.home / "cluster.json"
        self.log = log
        self._runas = _service_account()

    # -- state ------------------------------------------------------------------------------------------
    def state(self) -> ClusterState | None:
        """Return the saved state, or None before the first ``init``."""
        if not self.statefile.exists():
            return None
        return ClusterState(**json.loads(self.statefile.read_text()))

    def _save(self, state: ClusterState) -> None:
        self.statefile.write_text(json.dumps(state.__dict__, indent=1))
        self.statefile.chmod(0o600)

    # -- commands ---------------------------------------------------------------------------------------
    def run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the cluster's account (``postgres`` when we are root)."""
        if self._runas is None:
            return subprocess.run(args, text=True, capture_output=True, **kwargs)
        uid, gid = self._runas
        return subprocess.run(
            args, text=True, capture_output=True, user=uid, group=gid, extra_groups=[], cwd="/", **kwargs
        )

    def chown(self, path: Path) -> None:
        """Give ``path`` to the cluster's account (when we are root)."""
        if self._runas is not None:
            os.chown(path, *self._runas)

    def init(self) -> ClusterState:
        """Create the cluster on first use (initdb); return its state."""
        existing = self.state()
        if existing is not None and (self.pgdata / "PG_VERSION").exists():
            return existing
        bindir = find_bindir()
        ensure_postgis(server_major(bindir), self.log)
        self.home.mkdir(parents=True, exist_ok=True)
        self.keep_private()
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)
        self.pgdata.mkdir(mode=0o700)
        self.chown(self.pgdata)
        password = secrets.token_urlsafe(24)
        pwfile = self.home / ".initdb-pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self.chown(pwfile)
        self.log(f"initdb: creating the embedded cluster in {self.pgdata}")
        try:
            done = self.run([
                str(bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ClusterError(f"initdb failed:\n{done.stderr.strip()}")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'gridlink.conf'\n")
        state = ClusterState(port=free_port(), password=password, bindir=str(bindir))
        self._save(state)
        return state

    def keep_private(self) -> None:
        """Make the cluster's folder and its log readable by their owner only: the log is written by the
        server (the ``postgres`` user when we are root, who then may only pass through the folder to reach
        pgdata, itself 0700) and may hold what callers sent. Files made before this rule are fixed too."""
        self.home.chmod(0o711 if self._runas is not None else 0o700)
        self.logfile.touch(mode=0o600, exist_ok=True)
        self.logfile.chmod(0o600)
        self.chown(self.logfile)

    def _write_conf(self, state: ClusterState) -> None:
        settings = {**TUNING, **(REPLICATION if state.replication else {}), **LOGGING}
        lines = [
            f"port = {state.port}",
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            *(f"{key} = '{value}'" for key, value in settings.items()),
        ]
        conf = self.pgdata / "gridlink.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.chown(conf)

    def running(self) -> bool:
        """Tell whether this cluster's postmaster is up."""
        state = self.state()
        if state is None or not self.pgdata.exists():
            return False
        done = self.run([str(Path(state.bindir) / "pg_ctl"), "-D", str(self.pgdata), "status"])
        return done.returncode == 0

    def start(self) -> ClusterState:
        """Start the cluster (creating it first if needed) and its database; return its state."""
        state = self.init()
        if self.running():
            return state
        if not port_free(state.port):
            state = ClusterState(port=free_port(), password=state.password, bindir=state.bindir,
                                 replication=state.replication)
            self._save(state)
        self._write_conf(state)
        self.keep_private()
        done = self.run([
            str(Path(state.bindir) / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.logfile),
            "-w", "-t", "120", "start",
        ])
        if done.returncode != 0:
            tail = self.logfile.read_text(errors="replace")[-2000:]
            raise ClusterError(f"pg_ctl start failed:\n{done.stderr.strip()}\n{tail}")
        self.log(f"embedded PostgreSQL running on 127.0.0.1:{state.port} ({self.pgdata})")
        return state

    def stop(self) -> None:
        """Stop the cluster cleanly (fast shutdown: committed work is kept)."""
        state = self.state()
        if state is None or not self.running():
            return
        done = self.run([str(Path(state.bindir) / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        if done.returncode != 0:
            raise ClusterError(f"pg_ctl stop failed:\n{done.stderr.strip()}")

    def enable_replication(self) -> ClusterState:
        """Make the cluster ready to stream WAL to standbys (started; restarted once if it ran without)."""
        state = self.init()
        if state.replication:
            return self.start()
        state = ClusterState(port=state.port, password=state.password, bindir=state.bindir, replication=True)
        self._save(state)
        if self.running():
            self.log("restarting the embedded cluster with replication enabled (wal_level = replica)")
            self.stop()
        return self.start()

    def promote(self) -> None:
        """Make this standby a primary that takes writes (pg_ctl promote, waiting until it does)."""
        state = self.state()
        if state is None or not self.running():
            raise ClusterError(f"the cluster in {self.pgdata} is not running")
        if not (self.pgdata / "standby.signal").exists():
            raise ClusterError(f"the cluster in {self.pgdata} is not a standby")
        done = self.run([str(Path(state.bindir) / "pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "promote"])
        if done.returncode != 0:
            raise ClusterError(f"pg_ctl promote failed:\n{done.stderr.strip()}")

    def ensure_database(self, dbname: str) -> str:
        """Create ``dbname`` if missing; return its URL."""
        import psycopg2
        from psycopg2 import sql

        state = self.start()
        conn = psycopg2.connect(
            host="127.0.0.1", port=state.port, user=SUPERUSER, password=state.password, dbname="postgres"
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        finally:
            conn.close()
        return state.url(dbname)


def _service_account() -> tuple[int, int] | None:
    """Return (uid, gid) of ``postgres`` when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ClusterError(
            "Running as root, but there is no `postgres` system user to run the cluster. "
            "Create one: useradd --system --home /var/lib/postgresql --shell /bin/bash postgres"
        ) from exc
    return entry.pw_uid, entry.pw_gid
