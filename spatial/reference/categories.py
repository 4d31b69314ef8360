"""The event category tree for a searchable picker (issue 20): every node of ``event_category`` (Wuzhong: 4
classes → 37 → 290 → 732 issues) with its Chinese and English names, and for leaves the grade, time limit and
flow; searchable by code or name; served with a content ``ETag`` so that pages cache it.

A search keeps the tree navigable: the nodes whose code or names contain the text (case-insensitive), the
ancestors of each (so a leaf shows under its class), and the descendants of each matched inner node (so
searching a class lists its issues).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, text

MAX_QUERY = 64


def category_tree(conn: Connection) -> list[dict[str, Any]]:
    """Every category in code order (a parent before its children)."""
    rows = conn.execute(text(
        "SELECT code, parent_code, level, name_zh, name_en, grade, time_limit, time_unit, flow"
        " FROM event_category ORDER BY code")).mappings()
    nodes = []
    for row in rows:
        node: dict[str, Any] = {"code": row["code"], "parent": row["parent_code"], "level": row["level"],
                                "name_zh": row["name_zh"], "name_en": row["name_en"],
                                "leaf": row["time_limit"] is not None}
        if node["leaf"]:
            node |= {"grade": row["grade"], "time_limit": row["time_limit"], "time_unit": row["time_unit"],
                     "flow": row["flow"]}
        nodes.append(node)
    return nodes


def search(nodes: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """The nodes matching ``query`` (code or either name contains it, case-insensitive) with their ancestors and,
    for a matched inner node, its descendants; in tree order."""
    wanted = query.strip().casefold()
    if not wanted:
        return nodes
    matched = [n["code"] for n in nodes if wanted in n["code"].casefold() or wanted in n["name_zh"].casefold()
               or wanted in n["name_en"].casefold()]
    by_code = {n["code"]: n for n in nodes}
    keep = set(matched)
    for code in matched:
        parent = by_code[code]["parent"]
        while parent is not None and parent not in keep:
            keep.add(parent)
            parent = by_code[parent]["parent"]
    inner = tuple(code for code in matched if not by_code[code]["leaf"])
    keep.update(n["code"] for n in nodes if inner and n["code"].startswith(inner))
    return [n for n in nodes if n["code"] in keep]


def tree_json(nodes: list[dict[str, Any]]) -> tuple[bytes, str]:
    """The reply body ``{"categories": [...], "count", "leaves"}`` and its ETag (a digest of the body)."""
    body = json.dumps({"categories": nodes, "count": len(nodes), "leaves": sum(n["leaf"] for n in nodes)},
                      ensure_ascii=False, separators=(",", ":")).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
