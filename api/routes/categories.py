"""The event category tree (issue 20): ``GET /api/v1/categories?q=`` for the pages' searchable picker.

Public like Open311's service list (the same categories); the reply carries a content ``ETag`` and
``If-None-Match`` answers 304, so a page keeps its copy until the reference tables change."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from api.deps import ConnectionDep
from spatial.reference.categories import MAX_QUERY, category_tree, search, tree_json

router = APIRouter(prefix="/api/v1", tags=["categories"])


@router.get("/categories", summary="The event category tree (zh/en names, grades), searchable")
def categories(conn: ConnectionDep, request: Request,
               q: str | None = Query(default=None, max_length=MAX_QUERY, description="text in a code or name")
               ) -> Response:
    """Every category (``code``, ``parent``, ``level``, ``name_zh``, ``name_en``, ``leaf``; leaves also
    ``grade``, ``time_limit``, ``time_unit``, ``flow``) in tree order; with ``q`` the matches, their ancestors
    and the issues under a matched class."""
    nodes = category_tree(conn)
    body, tag = tree_json(search(nodes, q) if q else nodes)
    headers = {"ETag": tag, "Cache-Control": "public, max-age=60", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
