"""Who is calling: the account behind a token, as every permission rule sees it (SPEC "Accounts and access")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account behind a token."""

    account_id: int
    login: str
    role: str
    scope: str

    def sees_personal_data(self) -> bool:
        """Reporters' names and phone numbers are shown only to admins and dispatchers (SPEC)."""
        return self.role in ("admin", "dispatcher")
