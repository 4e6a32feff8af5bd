"""Accounts: password hashing, sessions with CSRF, bearer tokens, role checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from qala.api import create_app
from qala.components.accounts.deps import require_roles
from qala.components.accounts.models import User
from qala.components.accounts.services import authenticate, create_user, issue_token
from qala.core.errors import ConflictError, PermissionDeniedError, ValidationError
from qala.settings import Settings


def test_passwords_are_hashed_with_argon2_and_checked(context) -> None:  # type: ignore[no-untyped-def]
    with context.database.transaction() as session:
        user = create_user(session, username="Aigerim", password="correct horse", role="operator")
        assert user.username == "aigerim"
        assert (
            user.password_hash.startswith("$argon2") and "correct horse" not in user.password_hash
        )
    with context.database.session() as session:
        assert authenticate(session, "aigerim", "correct horse").role == "operator"
        with pytest.raises(PermissionDeniedError):
            authenticate(session, "aigerim", "wrong password")
        with pytest.raises(PermissionDeniedError):
            authenticate(session, "nobody", "correct horse")


def test_bad_accounts_are_refused_with_every_reason(sqlite_context) -> None:  # type: ignore[no-untyped-def]
    with sqlite_context.database.transaction() as session:
        with pytest.raises(ValidationError) as caught:
            create_user(session, username="x", password="short", role="mayor")
        assert len(caught.value.problems) == 3
        create_user(session, username="arman", password="long enough")
        with pytest.raises(ConflictError):
            create_user(session, username="ARMAN", password="long enough")


@pytest.fixture
def client(sqlite_url: str) -> TestClient:
    app: FastAPI = create_app(Settings(database_url=sqlite_url, secret_key="t"))
    context = app.state.context

    @app.post("/api/v1/test/operator-only")
    def operator_only(user: User = Depends(require_roles("operator"))) -> dict[str, str]:
        return {"hello": user.username}

    with context.database.transaction() as session:
        create_user(session, username="oper", password="operator-pass", role="operator")
        create_user(session, username="cit", password="citizen-pass", role="citizen")
        create_user(session, username="boss", password="admin-pass!", role="administrator")
    return TestClient(app)


def test_session_cookie_needs_the_csrf_token_for_writes(client: TestClient) -> None:
    assert client.post("/api/v1/test/operator-only").status_code == 401
    login = client.post(
        "/api/v1/auth/login", json={"username": "oper", "password": "operator-pass"}
    )
    assert login.status_code == 200
    assert "httponly" in login.headers["set-cookie"].lower()
    csrf = login.json()["csrf_token"]
    assert client.post("/api/v1/test/operator-only").status_code == 403
    assert (
        client.post("/api/v1/test/operator-only", headers={"X-CSRF-Token": "forged"}).status_code
        == 403
    )
    answer = client.post("/api/v1/test/operator-only", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and answer.json() == {"hello": "oper"}
    client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert client.get("/api/v1/auth/me").status_code == 401


def test_roles_are_checked_and_administrators_pass(client: TestClient) -> None:
    citizen = client.post(
        "/api/v1/auth/tokens", json={"username": "cit", "password": "citizen-pass"}
    ).json()["token"]
    boss = client.post(
        "/api/v1/auth/tokens", json={"username": "boss", "password": "admin-pass!"}
    ).json()["token"]
    assert (
        client.post(
            "/api/v1/test/operator-only", headers={"Authorization": f"Bearer {citizen}"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/test/operator-only", headers={"Authorization": f"Bearer {boss}"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/test/operator-only", headers={"Authorization": "Bearer qala_forged"}
        ).status_code
        == 401
    )
    assert (
        client.get("/api/v1/users", headers={"Authorization": f"Bearer {citizen}"}).status_code
        == 403
    )
    users = client.get("/api/v1/users", headers={"Authorization": f"Bearer {boss}"}).json()
    assert {u["username"] for u in users} == {"oper", "cit", "boss"}


def test_citizens_register_themselves_but_only_as_citizens(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/auth/register",
        json={"username": "dana", "password": "dana-password", "role": "administrator"},
    )
    assert answer.status_code == 201 and answer.json()["role"] == "citizen"
    assert (
        client.post(
            "/api/v1/auth/register", json={"username": "dana", "password": "dana-password"}
        ).status_code
        == 409
    )


def test_tokens_are_stored_only_as_hashes(context) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from qala.components.accounts.models import ApiToken

    with context.database.transaction() as session:
        user = create_user(session, username="script", password="script-pass")
        token = issue_token(session, user)
    with context.database.session() as session:
        stored = session.scalars(select(ApiToken)).one()
        assert token not in stored.token_hash and len(stored.token_hash) == 64


def test_registrations_per_address_are_throttled(client: TestClient) -> None:
    for k in range(5):
        made = client.post(
            "/api/v1/auth/register", json={"username": f"bot{k}", "password": "bot-password"}
        )
        assert made.status_code == 201, made.text
    refused = client.post(
        "/api/v1/auth/register", json={"username": "bot5", "password": "bot-password"}
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "too many attempts" in refused.json()["detail"]


def test_password_guessing_locks_the_account_not_the_others(client: TestClient) -> None:
    def login(username: str, password: str) -> int:
        return client.post(
            "/api/v1/auth/tokens", json={"username": username, "password": password}
        ).status_code

    assert [login("cit", f"guess {k}") for k in range(10)] == [403] * 10
    assert login("cit", "citizen-pass") == 429  # even the right password, for a while
    assert login("oper", "operator-pass") == 201
    context = client.app.state.context  # type: ignore[attr-defined]
    later = context.clock() + timedelta(minutes=16)
    context.clock = lambda: later
    assert login("cit", "citizen-pass") == 201
