"""FastAPI dependencies: a database connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection


def get_connection(request: Request) -> Iterator[Connection]:
    """Yield a connection in a transaction that commits on success and rolls back on error."""
    with request.app.state.engine.begin() as conn:
        yield conn


ConnectionDep = Annotated[Connection, Depends(get_connection)]
