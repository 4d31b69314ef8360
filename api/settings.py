"""HTTP server settings (env prefix ``GRIDLINK_API_``)."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where and how the HTTP server listens."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINK_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    # A bulk batch (api/routes/bulk.py streams the body against these; 413 beyond).
    max_bulk_bytes: int = 64 * 1_048_576
    max_bulk_rows: int = 200_000
    # A file of grids (api/routes/grid_imports.py streams the body against it; 413 beyond).
    max_grid_file_bytes: int = 16 * 1_048_576
    # Where clients reach this server: every link, redirect and tile URL is built on it, never on the request's
    # Host header (which any client can set); default http://{host}:{port}.
    public_url: str | None = None
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, comma
    # separated; by default none: the client address is the TCP peer's, whoever claims otherwise.
    trusted_proxies: str = ""
    # Anonymous Open311 submissions per client address (api/rate_limit.py).
    public_per_minute: float = 30
    public_burst: int = 10
    # Where the login back-off and the public rate limit count: "process" (each server process its own, in
    # memory: N processes allow N times the rate) or "database" (one count in PostgreSQL for every process and
    # machine: spatial/access/limits.py). `gridlink serve --workers N` with N > 1 makes "database" the default.
    limits: Literal["process", "database"] = "process"
    # Password logins (api/rate_limit.py): failures allowed in a row per login name and per client address
    # before an exponential back-off (from login_backoff_base_s, doubling, at most login_backoff_max_s), and
    # password hashes verified at once (argon2id: 64 MiB each) with how many more waiting.
    login_free_failures: int = 5
    login_free_failures_per_client: int = 20
    login_backoff_base_s: float = 1.0
    login_backoff_max_s: float = 900
    login_hash_concurrency: int = 2
    login_hash_queue: int = 8
    # A refused login (429) is answered after this long, an idle wait that costs the server nothing: a flood
    # of refused logins then runs at (clients / delay) per second instead of as fast as the CPU answers 429s,
    # which would slow every other request of the process (bench/flood.py).
    login_refusal_delay_s: float = 0.5
    # The reminder / supervision scheduler (spatial/cases/jobs.py) inside each server process
    # (GRIDLINK_API_SCHEDULER=1 or `gridlink serve --scheduler`), sweeping every this many seconds (divides 60).
    scheduler: bool = False
    scheduler_every_s: int = 30
    # The live feed (api/routes/events.py, spatial/cases/feed.py): streams per account and per process, how long
    # one stream lasts before the client resumes with Last-Event-ID, and how often the process polls new events.
    feed_per_caller: int = 4
    feed_max: int = 500
    feed_max_seconds: float = 300
    feed_interval_s: float = 0.2
    # Replies of at least gzip_min_bytes are gzip-compressed for clients that accept it (api/app.py), at this
    # zlib level (1 fastest … 9 smallest; 0: no compression, e.g. behind a proxy that compresses).
    gzip_level: int = 6
    gzip_min_bytes: int = 1024

    def base_url(self) -> str:
        """The server's public base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
