"""Accounts and bearer tokens: argon2id password hashes, tokens stored as digests, expiry and revocation,
the password form at /api/v1/auth/token, and the CLI (password from standard input, no default)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.cli import main as cli
from spatial.access.accounts import add_user, check_password, create_token, principal_for, revoke_token
from spatial.errors import AuthenticationError, InvalidParameterError

PASSWORD = "correct horse battery staple"


def test_add_user_validates_and_hashes(world) -> None:
    add_user(world, "chief.wang", role="grid_chief", scope="320506001001002", password=PASSWORD,
             display_name="王网格长")
    stored = world.execute(text("SELECT password_hash FROM account WHERE login = 'chief.wang'")).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    for login, role, scope, password, fragment in [
        ("chief.wang", "grid_chief", "320506001001002", PASSWORD, "taken"),
        ("x", "viewer", "320506", PASSWORD, "login"),
        ("someone", "emperor", "320506", PASSWORD, "role must be"),
        ("someone", "viewer", "999999", PASSWORD, "neither an area code"),
        ("someone", "viewer", "*", PASSWORD, "only admin and partner"),
        ("someone", "owner", "320506", PASSWORD, "department or owner key"),
        ("someone", "dispatcher", "LIGHTING", PASSWORD, "scoped to an area code"),
        ("someone", "admin", "320506", PASSWORD, "whole city"),
        ("someone", "viewer", "320506", "short", "at least 12"),
    ]:
        with pytest.raises(InvalidParameterError, match=fragment):
            add_user(world, login, role=role, scope=scope, password=password)


def test_passwords_and_tokens(world) -> None:
    add_user(world, "owner.light", role="owner", scope="LIGHTING", password=PASSWORD)
    assert check_password(world, "owner.light", PASSWORD).scope == "LIGHTING"
    for login, password in (("owner.light", "wrong password!"), ("nobody", PASSWORD), ("owner.light\x00", PASSWORD)):
        with pytest.raises(AuthenticationError, match="wrong login or password"):
            check_password(world, login, password)
    token, expires = create_token(world, "owner.light")
    assert expires is not None
    assert world.execute(text("SELECT count(*) FROM api_token WHERE token_hash = :t"), {"t": token}).scalar() == 0
    assert principal_for(world, token).role == "owner"
    assert revoke_token(world, token) and not revoke_token(world, token)
    with pytest.raises(AuthenticationError):
        principal_for(world, token)
    # An hour ago: the expiry is compared with now() of the test's transaction, which began before the
    # password hashing above (a second ago would be in that transaction's future on a slow machine).
    stale, _ = create_token(world, "owner.light", ttl=timedelta(hours=-1))
    with pytest.raises(AuthenticationError):
        principal_for(world, stale)


def test_token_endpoint(client: TestClient, world_engine) -> None:
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE label IS DISTINCT FROM 'tests'"))
        conn.execute(text("DELETE FROM account WHERE login = 'dispatcher.li'"))
        add_user(conn, "dispatcher.li", role="dispatcher", scope="320506", password=PASSWORD)
    reply = client.post("/api/v1/auth/token", data={"username": "dispatcher.li", "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 8 * 3600
    with world_engine.connect() as conn:
        assert principal_for(conn, body["access_token"]).login == "dispatcher.li"
    wrong = client.post("/api/v1/auth/token", data={"username": "dispatcher.li", "password": "nope nope nope"})
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/api/v1/auth/token", data={"username": "dispatcher.li"}).status_code == 422


def test_cli_user_and_token(world_engine, monkeypatch, capsys) -> None:
    url = world_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", url)
    with world_engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token WHERE label IS DISTINCT FROM 'tests'"))
        conn.execute(text("DELETE FROM account WHERE login = 'admin'"))
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli(["user", "add", "admin", "--role", "admin", "--scope", "*"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli(["user", "add", "admin2", "--role", "admin", "--scope", "*"]) == 2
    capsys.readouterr()
    assert cli(["token", "create", "admin", "--no-expiry"]) == 0
    token = capsys.readouterr().out.strip()
    with world_engine.connect() as conn:
        assert principal_for(conn, token).role == "admin"
    assert cli(["token", "revoke", token]) == 0
    assert cli(["token", "revoke", token]) == 2
    assert cli(["token", "create", "nobody"]) == 2
