"""The case workflow over HTTP: ``POST /api/v1/cases/{id}/actions/{action}`` (issue 17).

Checks come in this order (RFC 9110 §13.2.1: who you are and what you may do before preconditions and the
body): no valid credentials 401 → an action the table does not offer 404 → a role that never takes it 403
(``ActionRoute``, before the body is read) → a body that is not JSON 415 or not an action body 422 → in the
action's transaction (spatial/cases/actions.py): no such case 404, outside the caller's scope 403, no
``If-Match`` 428, a stale one 412, not the case's unit or an approval by its requester 403, not allowed in the
case's state 409 (listing the allowed actions), a body that lacks what the action needs 422. The reply is the
case after the action with its new ``ETag``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.routing import APIRoute

from api.auth import PrincipalDep, caller, client_address
from api.deps import EngineDep, ReferenceDep
from spatial.cases.actions import ActionInput, act, check_action
from spatial.cases.read import get_case
from spatial.cases.schemas import CasePublic, case_json
from spatial.cases.workflow import check_role
from spatial.errors import UnsupportedMediaTypeError


def if_match(value: str | None) -> int | None:
    """The revision an ``If-Match`` header names (``"3"`` or ``W/"3"``), None when absent or not a revision."""
    value = (value or "").strip()
    value = value[2:] if value.startswith("W/") else value
    value = value.strip('"')
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def etag(revision: int) -> str:
    """The ETag of a case at ``revision``."""
    return f'"{revision}"'


class ActionRoute(APIRoute):
    """Authenticates the caller and admits the action for its role before FastAPI reads the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: 401, 404 (unknown action), 403 (role), 415 first."""
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            principal = await caller(request)
            action = request.path_params["action"]
            check_action(action)
            check_role(principal.role, action)
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if request.headers.get("content-length", "0") != "0" and media != "application/json":
                raise UnsupportedMediaTypeError(f"send the body as application/json, not {media or 'none'!r}",
                                                media_type=media)
            return await handler(request)

        return answer


router = APIRouter(prefix="/api/v1", tags=["workflow"], route_class=ActionRoute)


@router.post("/cases/{case_id}/actions/{action}", response_model=CasePublic,
             summary="Take a workflow action on a case (If-Match: the case's ETag)")
def take(case_id: int, action: str, engine: EngineDep, ref: ReferenceDep, principal: PrincipalDep,
         request: Request, body: ActionInput | None = None,
         match: str | None = Header(default=None, alias="If-Match", max_length=64)) -> Response:
    """Take ``action`` (a row of the transition table) on the case; the reply is the case with its history
    and its new ``ETag``."""
    with engine.begin() as conn:
        outcome = act(conn, ref, case_id, action, body or ActionInput(), by=principal,
                      expected_revision=if_match(match), client=client_address(request))
        case = get_case(conn, ref, case_id, by=principal)
    return Response(case_json(case), media_type="application/json", headers={"ETag": etag(outcome.revision)})
