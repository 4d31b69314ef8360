"""ASGI middleware: a hard limit on request body size, answered with problem+json 413."""

from __future__ import annotations

from api.problems import database_unavailable, domain_problem, unavailable_response
from spatial.errors import PayloadTooLargeError


class BodyTooLarge(Exception):
    """Raised inside the app when the body grows past the limit."""


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes, by Content-Length up front or by counting a streamed body; paths in
    ``larger`` have their own limit, or none here (None) where the route enforces its own after deciding who
    calls (the bulk route, so that it can audit the refusal)."""

    def __init__(self, app, limit: int, larger: dict[str, int | None] | None = None) -> None:
        self.app = app
        self.default = limit
        self.larger = larger or {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.default)
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


class DatabaseUnavailable:
    """Answer 503 problem+json with Retry-After when the database is away or too slow (see
    ``api.problems.database_unavailable``), for every route and the lean intake layer alike, and log one
    line instead of a traceback per request while it lasts. Errors after the reply has started, and any
    other error, go on to the server's error handling (a 500 that never echoes the exception)."""

    def __init__(self, app) -> None:
        self.app = app

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
            if started or not database_unavailable(exc):
                raise
            await unavailable_response(scope.get("path", ""), exc)(scope, receive, send)
