"""``POST /api/v1/auth/token``: an OAuth2 password form (username, password) → a bearer token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form

from api.deps import EngineDep
from spatial.accounts import check_password, create_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", summary="Exchange a login and password for a bearer token (OAuth2 password flow)")
def token(engine: EngineDep, username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=1024)]) -> dict[str, Any]:
    """Return ``{"access_token", "token_type": "bearer", "expires_in"}``; 401 problem+json otherwise."""
    with engine.begin() as conn:
        principal = check_password(conn, username, password)
        issued, expires = create_token(conn, principal.login, label="password login")
    seconds = int((expires - datetime.now(UTC)).total_seconds()) if expires else None
    return {"access_token": issued, "token_type": "bearer", "expires_in": seconds}
