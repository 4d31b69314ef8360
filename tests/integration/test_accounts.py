"""Accounts and bearer tokens: argon2id password hashes, tokens stored as digests, expiry and revocation,
the password form at /api/v1/auth/token, and the CLI (password from standard input, no default)."""

from __future__ import annotations

import hashlib
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
    stale, _ = create_token(world, "owner.light")
    world.execute(text("UPDATE api_token SET expires_at = now() - interval '1 hour' WHERE token_hash = :h"),
                  {"h": hashlib.sha256(stale.encode()).hexdigest()})
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


# -- Issue 23, finding 14: token lifetimes, the password policy, the account lifecycle ------------------------


def _fresh(conn, *logins: str) -> None:
    conn.execute(text("DELETE FROM api_token WHERE label IS DISTINCT FROM 'tests'"))
    conn.execute(text("DELETE FROM account WHERE login = ANY(:l)"), {"l": list(logins)})


def test_a_token_of_zero_days_is_refused_not_eternal(world_engine, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", world_engine.url.render_as_string(hide_password=False))
    with world_engine.begin() as conn:
        _fresh(conn, "days.zero")
        add_user(conn, "days.zero", role="viewer", scope="320506", password=PASSWORD)
        for ttl in (timedelta(0), timedelta(days=-1)):
            with pytest.raises(InvalidParameterError, match="lifetime"):
                create_token(conn, "days.zero", ttl=ttl)
    for days in ("0", "-3", "100000"):
        with pytest.raises(SystemExit):
            cli(["token", "create", "days.zero", "--days", days])
    capsys.readouterr()
    assert cli(["token", "create", "days.zero", "--days", "1"]) == 0
    assert "expires 20" in capsys.readouterr().err
    with world_engine.connect() as conn:  # no token of that account lives for ever (only --no-expiry would)
        assert conn.execute(text("SELECT count(*) FROM api_token t JOIN account a ON a.id = t.account_id"
                                 " WHERE a.login = 'days.zero' AND t.expires_at IS NULL")).scalar() == 0


@pytest.mark.parametrize("password", [
    "aaaaaaaaaaaa",            # twelve identical letters (the finding)
    "abcdefghijklmnop",        # a sequence
    "123456789012",
    "password1234",            # a common password with digits
    "qwertyuiopasdf",          # a keyboard walk
    "iloveyou1234",
    "passwordpassword",
    "chief.wang2024",          # the login itself, with a year
])
def test_common_repetitive_and_sequential_passwords_are_refused(world, password: str) -> None:
    with pytest.raises(InvalidParameterError, match="easy to guess") as refused:
        add_user(world, "chief.wang", role="grid_chief", scope="320506001001002", password=password)
    assert refused.value.extra["parameter"] == "password" and password not in refused.value.detail


@pytest.mark.parametrize("password", [PASSWORD, "a long enough password", "Suzhou grid 7 lanterns"])
def test_passphrases_are_accepted(world, password: str) -> None:
    add_user(world, "chief.wang", role="grid_chief", scope="320506001001002", password=password)
    assert check_password(world, "chief.wang", password).login == "chief.wang"


def test_cli_disable_enable_reset_and_revoke_all(world_engine, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", world_engine.url.render_as_string(hide_password=False))
    with world_engine.begin() as conn:
        _fresh(conn, "life.cycle")
        add_user(conn, "life.cycle", role="dispatcher", scope="320506", password=PASSWORD)
        first, _ = create_token(conn, "life.cycle")
        second, _ = create_token(conn, "life.cycle")
    assert cli(["user", "disable", "life.cycle"]) == 0
    with world_engine.connect() as conn:
        for token in (first, second):
            with pytest.raises(AuthenticationError):
                principal_for(conn, token)
        with pytest.raises(AuthenticationError):
            check_password(conn, "life.cycle", PASSWORD)
    assert cli(["token", "create", "life.cycle"]) == 2
    assert cli(["user", "disable", "life.cycle"]) == 2  # already disabled
    assert cli(["user", "enable", "life.cycle"]) == 0
    with world_engine.connect() as conn:  # enabling does not bring the old tokens back
        with pytest.raises(AuthenticationError):
            principal_for(conn, first)
        assert check_password(conn, "life.cycle", PASSWORD).login == "life.cycle"
    with world_engine.begin() as conn:
        third, _ = create_token(conn, "life.cycle")
    new_password = "a different long passphrase"
    monkeypatch.setattr("sys.stdin", io.StringIO("aaaaaaaaaaaa\n"))
    assert cli(["user", "password", "life.cycle"]) == 2  # the policy holds for resets too
    monkeypatch.setattr("sys.stdin", io.StringIO(new_password + "\n"))
    assert cli(["user", "password", "life.cycle"]) == 0
    with world_engine.connect() as conn:
        with pytest.raises(AuthenticationError):
            check_password(conn, "life.cycle", PASSWORD)
        assert check_password(conn, "life.cycle", new_password).login == "life.cycle"
        with pytest.raises(AuthenticationError):  # a reset signs out every session and client
            principal_for(conn, third)
    with world_engine.begin() as conn:
        fourth, _ = create_token(conn, "life.cycle")
        fifth, _ = create_token(conn, "life.cycle")
    capsys.readouterr()
    assert cli(["token", "revoke-all", "life.cycle"]) == 0
    assert "2 tokens revoked" in capsys.readouterr().out
    with world_engine.connect() as conn:
        for token in (fourth, fifth):
            with pytest.raises(AuthenticationError):
                principal_for(conn, token)
        actions = conn.execute(text("SELECT action FROM audit_log WHERE target = 'life.cycle' ORDER BY id")).scalars()
        assert [a for a in actions if a.startswith("account.") or a == "token.revoke_all"] == [
            "account.disable", "account.enable", "account.password", "token.revoke_all"]


def test_a_disabled_account_is_locked_out_of_a_running_server_at_once(world_engine, monkeypatch) -> None:
    """The server caches resolved tokens for PRINCIPAL_TTL_S; a change made elsewhere (the CLI, another worker)
    reaches it through PostgreSQL's NOTIFY, so the cached principal is dropped without waiting for the TTL."""
    from api.app import create_app

    url = world_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", url)
    with world_engine.begin() as conn:
        _fresh(conn, "locked.out")
        add_user(conn, "locked.out", role="dispatcher", scope="320506", password=PASSWORD)
        token, _ = create_token(conn, "locked.out")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(url=url)) as client:
        assert client.app.state.principals.listening.wait(20), "the server does not listen for account changes"
        assert client.get("/api/v1/auth/session", headers=headers).status_code == 200  # now cached
        cache = client.app.state.principals
        assert cache.get(token) is not None
        seen = cache.changes
        assert cli(["user", "disable", "locked.out"]) == 0
        assert cache.changed_since(seen, timeout=20), "the server never heard of the change"
        assert cache.get(token) is None
        assert client.get("/api/v1/auth/session", headers=headers).status_code == 401
