"""The audit log (migration 0013): one append-only row per write — who, with which role, did what to which
target, when, and from which client address.

Each row is written in the same transaction as the write it records, so a refused write leaves no row and
a stored write always has one. Case intake writes its row inside its single statement (sql/intake.sql, the
``audit`` CTE); a bulk batch writes one row for the batch; every other write calls ``record``. One refusal is
recorded too: a bulk batch of an account that stores nothing (``case.bulk.refused``, spatial/cases/bulk.py).

Actions are dotted names: ``case.create``, ``case.bulk``, ``case.bulk.refused``, ``component.create|replace|delete``,
``special_grid.create|replace|retire``, ``account.create``, ``token.create|revoke``, ``session.create``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from spatial.access.principal import Principal


@dataclass(frozen=True)
class Actor:
    """Who writes: an account's login and role, or a channel (``public``, ``cli:root``), and from where."""

    who: str
    role: str | None = None
    client: str | None = None

    @classmethod
    def of(cls, principal: Principal | None, client: str | None, channel: str = "public") -> Actor:
        """The actor of a request: its account, or ``channel`` when anonymous."""
        if principal is None:
            return cls(channel, None, client)
        return cls(principal.login, principal.role, client)


def record(conn: Connection, actor: Actor, action: str, *, target: str | None = None,
           detail: dict[str, Any] | None = None) -> None:
    """Append one audit row in ``conn``'s transaction."""
    conn.execute(text(
        "INSERT INTO audit_log (actor, role, action, target, client, detail)"
        " VALUES (:who, :role, :action, :target, :client, CAST(:detail AS jsonb))"),
        {"who": actor.who[:80], "role": actor.role, "action": action, "target": target and target[:80],
         "client": actor.client and actor.client[:64],
         "detail": json.dumps(detail, ensure_ascii=False, default=str) if detail is not None else None})


def params(actor: Actor) -> dict[str, Any]:
    """The audit parameters of sql/intake.sql."""
    return {"audit_who": actor.who[:80], "audit_role": actor.role,
            "audit_client": actor.client and actor.client[:64]}
