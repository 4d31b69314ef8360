"""Settings of the spatial package: where the database is.

Environment variables (all optional):

- ``GRIDLINK_DATABASE_URL``: an existing PostgreSQL + PostGIS server, as a SQLAlchemy URL
  (``postgresql+psycopg2://user:password@host:port/dbname``). When set, the embedded cluster is not used.
- ``GRIDLINK_HOME``: the folder that holds the embedded cluster (default: ``.gridlink`` in the checkout).
- ``GRIDLINK_DB_STATEMENT_TIMEOUT_MS``: per-statement timeout for request sessions (default 30 000 ms).
- ``GRIDLINK_READ_DATABASE_URLS`` (or ``GRIDLINK_READ_DATABASE_URL``): read replicas, comma-separated URLs; the
  heavy reads go to them (spatial/store/routing.py). ``GRIDLINK_DB_READ_MAX_LAG_BYTES`` /
  ``GRIDLINK_DB_READ_MAX_LAG_S``: a replica further behind the primary than this is skipped.
- ``GRIDLINK_DB_PGBOUNCER=1`` and ``GRIDLINK_LISTEN_DATABASE_URL``: served through PgBouncer (transaction mode).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """Return the default cluster folder: ``.gridlink`` beside ``pyproject.toml`` of this checkout."""
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / ".gridlink"
    return Path.cwd() / ".gridlink"


class DatabaseSettings(BaseSettings):
    """Where gridlink keeps its data."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINK_DB_", extra="ignore")

    url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GRIDLINK_DATABASE_URL", "GRIDLINK_DB_URL")
    )
    home: Path = Field(default_factory=default_home, validation_alias=AliasChoices("GRIDLINK_HOME"))
    name: str = "gridlink"
    statement_timeout_ms: int = 30_000
    pool_size: int = 10
    max_overflow: int = 10
    read_urls: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GRIDLINK_READ_DATABASE_URLS", "GRIDLINK_READ_DATABASE_URL"))
    # A replica is skipped while it has not replayed this much of the primary's WAL, or while it has been
    # behind without replaying anything for this long (stuck, paused, cut off); and rechecked this often.
    read_max_lag_bytes: int = 16 * 1024 * 1024
    read_max_lag_s: float = 5.0
    read_check_every_s: float = 1.0

    # Behind PgBouncer in transaction mode (docs/scale-out.md, section 3): no startup parameters and no prepared
    # statements kept on a server connection; the statement timeout then comes from the role
    # (ALTER ROLE gridlink SET statement_timeout = '30s'). LISTEN (the token watcher, the scheduler) cannot go
    # through it: GRIDLINK_LISTEN_DATABASE_URL names PostgreSQL itself.
    pgbouncer: bool = False
    listen_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GRIDLINK_LISTEN_DATABASE_URL", "GRIDLINK_DB_LISTEN_URL"))

    def direct_url(self, url: str) -> str:
        """The URL of connections that LISTEN: ``GRIDLINK_LISTEN_DATABASE_URL`` when set, else ``url``."""
        return self.listen_url.get_secret_value() if self.listen_url is not None else url

    def read_url_list(self) -> list[str]:
        """The read replicas' URLs (none: every read goes to the primary)."""
        raw = self.read_urls.get_secret_value() if self.read_urls is not None else ""
        return [url.strip() for url in raw.split(",") if url.strip()]
