"""FastAPI dependencies: database access and the in-memory reference data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Connection, Engine

from spatial.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from spatial.reference.cache import ReferenceCache


def get_connection(request: Request) -> Iterator[Connection]:
    """Yield a connection for reads, in a transaction rolled back at the end."""
    with request.app.state.engine.connect() as conn:
        yield conn


def get_read_connection(request: Request) -> Iterator[Connection]:
    """Yield a connection for a heavy read that may be served by a read replica (spatial/store/routing.py):
    one that has replayed the caller's last write when the caller sends its ``Gridlink-LSN``, else the
    primary's."""
    with request.app.state.reads.engine(request.headers.get("gridlink-lsn")).connect() as conn:
        yield conn


def get_read_engine(request: Request) -> Engine:
    """The engine of a heavy read whose domain call opens its own connection (tiles); see
    ``get_read_connection``."""
    return request.app.state.reads.engine(request.headers.get("gridlink-lsn"))


async def get_engine(request: Request) -> Engine:
    """Return the engine, for routes whose domain call owns its transaction (writes).

    The cheap dependencies are ``async``: FastAPI runs ``def`` dependencies in a thread pool, and each hop
    costs more than the work itself on the hot intake route.
    """
    return request.app.state.engine


async def get_reference(request: Request) -> ReferenceCache:
    """Return the reference data loaded at startup."""
    return request.app.state.reference


async def require_json(request: Request) -> None:
    """Refuse a body that is not JSON (415), before it is parsed."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/json", "application/geo+json"):
        raise UnsupportedMediaTypeError(
            f"send the body as application/json, not {media or 'no content type'!r}", media_type=media)


# An Idempotency-Key header (printable ASCII): a retried write returns the first attempt's result.
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128, pattern=r"^[\x21-\x7e]+$")]
ConnectionDep = Annotated[Connection, Depends(get_connection)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ReadConnectionDep = Annotated[Connection, Depends(get_read_connection)]
ReadEngineDep = Annotated[Engine, Depends(get_read_engine)]
ReferenceDep = Annotated[ReferenceCache, Depends(get_reference)]


async def read_capped(request: Request, limit: int, what: str, setting: str) -> bytes:
    """The body, streamed: PayloadTooLargeError ("``what`` may not exceed …", naming the ``setting`` that sets
    ``limit``) as soon as it is declared or found larger than ``limit`` bytes — never read whole first."""
    refusal = PayloadTooLargeError(f"{what} may not exceed {limit:,} bytes ({setting})")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise refusal
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise refusal
    return bytes(body)
