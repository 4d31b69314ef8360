"""The hottest request, served lean: ``POST /api/v1/cases`` with a JSON body and no ``Idempotency-Key``.

Inspectors, the hotline and video analytics send one report per request, thousands a day and in bursts.
FastAPI's per-request machinery (routing, dependency solving, request objects, the thread-pool hop of
a ``def`` route, the ORM's pool) cost more CPU than the assignment itself (BENCHMARKS.md, "Intake"), so
this ASGI layer sits in front of the routes and answers that one request directly:

- it resolves the token of the ``Authorization`` header (``api.auth.header_token``, then
  ``spatial.access.accounts.principal_on_pool``, cached for a few seconds) — a request without one, with a bad one,
  or of a role that does not report goes to the route, which answers 401/403;
- it reads the body (the size limit still applies: ``BodySizeLimit`` wraps this layer), validates it with
  the same pydantic model the route declares (``CaseCreate``), and runs the same prepared statement
  (``spatial.cases.intake.create_plain_case``, which also writes the audit row and keeps the report inside the
  account's area) on the event loop through an asyncpg pool;
- a case created is answered here (201, ``Location``) with the reply model and serializer the route uses
  (``spatial.cases.schemas.CasePublic``, ``case_json``): byte for byte as the route would answer it;
- an unknown category is answered with the same problem+json the app's handler writes
  (``api.problems.domain_problem``);
- anything else — a body that does not validate, another content type, an ``Idempotency-Key``, a report
  that only names a component, a report the statement refused (nothing was stored) — is handed to the
  FastAPI route unchanged (with the body already read), so every error stays exactly as documented in the
  OpenAPI document, which still describes the route.

``tests/integration/test_api_cases.py`` runs the route's whole contract through this layer.
"""

from __future__ import annotations

from pydantic import ValidationError

from api.auth import header_token
from api.problems import domain_problem
from spatial.access.accounts import principal_on_pool
from spatial.access.scope import REPORTERS
from spatial.cases.intake import create_plain_case
from spatial.cases.schemas import CASE_CREATE, case_json
from spatial.errors import GridlinkError

PATH = "/api/v1/cases"
JSON_MEDIA = (b"application/json", b"application/geo+json")


class FastIntake:
    """ASGI middleware answering plain case intake without the framework (see the module docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        token = header_token(headers.get(b"authorization", b"").decode("latin-1"))
        if media not in JSON_MEDIA or b"idempotency-key" in headers or token is None:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        principal = await principal_on_pool(state.intake_pool, token, state.principals)
        if principal is None or principal.role not in REPORTERS:
            await self.app(scope, receive, send)  # the route words the 401 / 403
            return
        body = await _read_body(receive)
        try:
            report = CASE_CREATE.validate_json(body)
        except ValidationError:
            await self.app(scope, _replay(body, receive), send)  # the route words the 422
            return
        client = scope.get("client")
        try:
            reply = await create_plain_case(state.intake_pool, state.reference, report, actor=None,
                                            by=principal, client=client[0] if client else None)
        except GridlinkError as exc:
            await domain_problem(exc, PATH)(scope, receive, send)
            return
        if reply is None:
            await self.app(scope, _replay(body, receive), send)  # refused: the route says why
            return
        content = case_json(reply)
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
            (b"location", f"{PATH}/{reply['id']}".encode())]})
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    """A ``receive`` that gives the already-read body once, then passes through (e.g. disconnects)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
