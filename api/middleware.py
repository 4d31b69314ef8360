"""ASGI middleware: a hard limit on request body size, answered with problem+json 413."""

from __future__ import annotations

import json

PROBLEM = b"application/problem+json"


class BodyTooLarge(Exception):
    """Raised inside the app when the body grows past the limit."""


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes, by Content-Length up front or by counting a streamed body."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.larger = larger or {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
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
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope, send, limit: int) -> None:
        body = json.dumps({
            "type": "https://gridlink.dev/problems/too-large", "title": "Request body too large", "status": 413,
            "detail": f"the body is larger than {limit:,} bytes", "instance": scope.get("path", ""),
        }).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
