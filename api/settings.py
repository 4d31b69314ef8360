"""HTTP server settings (env prefix ``GRIDLINK_API_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where and how the HTTP server listens."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINK_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    max_bulk_bytes: int = 64 * 1_048_576
    # Where clients reach this server: every link, redirect and tile URL is built on it, never on the request's
    # Host header (which any client can set); default http://{host}:{port}.
    public_url: str | None = None
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, comma
    # separated; by default none: the client address is the TCP peer's, whoever claims otherwise.
    trusted_proxies: str = ""
    # Anonymous Open311 submissions per client address (api/rate_limit.py).
    public_per_minute: float = 30
    public_burst: int = 10

    def base_url(self) -> str:
        """The server's public base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
