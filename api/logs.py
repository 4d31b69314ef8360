"""What the server's logs may hold: no credentials from query strings (issue 23, finding 12).

Open311 clients send their ``api_key`` in the query string (GeoReport v2 asks them to), and any client may
put a token or password there; uvicorn's access log writes each request's path and query. ``RedactSecrets``
replaces those values with ``[redacted]`` in every access-log line; ``create_app`` installs it on the
``uvicorn.access`` logger, so it holds however the app is served (``gridlink serve``, its workers, uvicorn).
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

ACCESS_LOGGER = "uvicorn.access"
SECRET_PARAMETERS = frozenset({"api_key", "apikey", "key", "token", "access_token", "refresh_token", "password",
                               "username", "phone", "session", "csrf_token"})
REDACTED = "[redacted]"


def redact_query(path: str) -> str:
    """``path`` with the values of ``SECRET_PARAMETERS`` in its query string replaced (names compared
    case-insensitively and percent-decoded)."""
    base, mark, query = path.partition("?")
    if not mark:
        return path
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        secret = unquote(name.replace("+", " ")).strip().lower() in SECRET_PARAMETERS
        pairs.append(f"{name}={REDACTED}" if secret and equals else pair)
    return f"{base}?{'&'.join(pairs)}"


class RedactSecrets(logging.Filter):
    """A filter for uvicorn's access log: its records carry (client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the path of an access-log record; keep every record."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def install() -> None:
    """Put ``RedactSecrets`` on the access logger once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
