"""ASGI middleware: a hard limit on request body size (problem+json 413), the database's absence (503),
security headers on every reply, redirects to the configured public URL, and paths and query strings
holding characters no store or reply can carry (400)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from api.problems import database_unavailable, domain_problem, interface_error, unavailable_response
from spatial.errors import InvalidParameterError, PayloadTooLargeError
from spatial.text import NOT_XML, text_problem, xml_safe


class BodyTooLarge(Exception):
    """Raised inside the app when the body grows past the limit."""


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes, by Content-Length up front or by counting a streamed body; paths in
    ``larger`` have their own limit, or none here (None) where the route enforces its own after deciding who
    calls (the bulk route, so that it can audit the refusal)."""

    def __init__(self, app, limit: int, larger: dict[str, int | None] | None = None,
                 streamed: str | None = None) -> None:
        self.app = app
        self.default = limit
        self.larger = larger or {}
        # Paths matching ``streamed`` (a regular expression) enforce their own limit too (photo uploads).
        self.streamed = re.compile(streamed) if streamed else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = None if self.streamed and self.streamed.match(path) else self.larger.get(path, self.default)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope, receive, send, limit: int) -> None:
        refusal = PayloadTooLargeError(f"the body is larger than {limit:,} bytes")
        await domain_problem(refusal, scope.get("path", ""))(scope, receive, send)


class BeforeReply:
    """ASGI middleware base: an exception that escapes the application before the reply has started is given
    to ``answer``, which returns the ASGI response to send instead, or None to let it go on (as do errors
    after the reply has started: the client already has a status line)."""

    def __init__(self, app) -> None:
        self.app = app

    def answer(self, path: str, exc: Exception):
        """The response for ``exc`` raised while serving ``path``, or None to re-raise it."""
        raise NotImplementedError

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            response = None if started else self.answer(scope.get("path", ""), exc)
            if response is None:
                raise
            await response(scope, receive, send)


class DatabaseUnavailable(BeforeReply):
    """Answer 503 problem+json with Retry-After when the database is away or too slow (see
    ``api.problems.database_unavailable``), for every route and the lean intake layer alike, and log one
    line instead of a traceback per request while it lasts. Errors after the reply has started, and any
    other error, go on to the server's error handling (a 500 that never echoes the exception)."""

    def answer(self, path: str, exc: Exception):
        """503 problem+json while the database is away; None for any other error."""
        return unavailable_response(path, exc) if database_unavailable(exc) else None


# Replies that are not HTML load nothing and are never framed (OWASP's REST headers).
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# HTML that gridlink does not write — pygeoapi's HTML views, the OpenAPI viewers — has inline scripts and styles:
# allowed there, but every script and stylesheet comes from gridlink itself (the pinned copies under /static and
# /ogc/static, issue 24), no plugins, no framing, no foreign form targets. Images may be base-map tiles; ReDoc
# runs its search index in a worker made from a blob.
VENDOR_HTML_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: https:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


class SecurityHeaders:
    """Add ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, a ``Referrer-Policy`` and a
    ``Content-Security-Policy`` to every reply that does not set its own (gridlink's pages set theirs:
    ``web.pages.PAGE_CSP``), and ``Strict-Transport-Security`` when the public URL is HTTPS."""

    def __init__(self, app, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured_send(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._secured(list(message.get("headers") or []))
            await send(message)

        await self.app(scope, receive, secured_send)

    def _secured(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        html = any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)
        wanted = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                  (b"referrer-policy", b"strict-origin-when-cross-origin" if html else b"no-referrer"),
                  (b"content-security-policy", (VENDOR_HTML_CSP if html else API_CSP).encode())]
        if self.https:
            wanted.append((b"strict-transport-security", b"max-age=31536000"))
        return headers + [(name, value) for name, value in wanted if name not in present]


class PublicRedirects:
    """Point redirects at the configured public URL. Starlette builds the ``Location`` of its own redirects
    (a slash added or removed, a mount's root) from the request's ``Host`` header, which the client chooses:
    an absolute ``Location`` on the request's own host is rewritten onto ``public_url``."""

    def __init__(self, app, public_url: str) -> None:
        self.app = app
        self.public = public_url.rstrip("/").encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or []).get(b"host", b"")

        async def public_send(message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message["headers"] = [(name, self._rewritten(value, host) if name.lower() == b"location" else value)
                                      for name, value in message.get("headers") or []]
            await send(message)

        await self.app(scope, receive, public_send)

    def _rewritten(self, location: bytes, host: bytes) -> bytes:
        parts = urlsplit(location)
        if not parts.netloc or parts.netloc != host:
            return location  # relative, or elsewhere on purpose
        rest = parts.path + (b"?" + parts.query if parts.query else b"") + (b"#" + parts.fragment if parts.fragment
                                                                             else b"")
        return self.public + rest


class UnreadableText:
    """Refuse a request whose path or query string holds a character no store or reply can carry (NUL and
    the other characters outside XML 1.0, ``spatial.text``), before any route runs: 400 naming the parameter,
    in the error format of the interface (problem+json, an OGC exception under ``/ogc``, a GeoReport error
    under ``/open311``). No parameter or path id of any route can legitimately hold one (finding 9 of issue 23:
    each was a 500 somewhere — PostgreSQL refuses NUL in text)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            refusal = unreadable_text(scope.get("path", ""), scope.get("query_string", b""))
            if refusal is not None:
                await interface_error(refusal, scope.get("path", ""))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def unreadable_text(path: str, query: bytes) -> InvalidParameterError | None:
    """The refusal of a path or query string that holds a character outside XML 1.0, or None."""
    problem = text_problem(path)
    if problem:
        return InvalidParameterError(f"the path {problem}", parameter="path")
    if not NOT_XML.search(unquote_plus(query.decode("latin-1"), errors="replace")):
        return None  # the common case: one search over the whole query string
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="replace"):
        problem = text_problem(name) or text_problem(value)
        if problem:
            return InvalidParameterError(f"query parameter {xml_safe(name)!r} {problem}", parameter=xml_safe(name))
    return None


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WrittenLsn:
    """Read-your-writes with read replicas (spatial/store/routing.py): a successful write's reply carries
    ``Gridlink-LSN``, the primary's WAL position once the write committed; a caller that sends it back on its
    reads is served by a replica only once that replica has replayed this far. Installed only when replicas are
    configured: one small query on the lean intake pool per write."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_with_lsn(message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:
                    lsn = await scope["app"].state.intake_pool.fetchval("SELECT pg_current_wal_lsn()::text")
                except Exception:  # the write is done: its reply goes out, only without the position
                    lsn = None
                if lsn:
                    message = {**message, "headers": [*message.get("headers", []), (b"gridlink-lsn", lsn.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_lsn)
