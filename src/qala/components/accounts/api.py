"""Sign in and out, self-registration of citizens, API tokens, and user administration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from qala.components.accounts import throttle
from qala.components.accounts.deps import (
    SESSION_COOKIE,
    AdminUser,
    CallerFirstRoute,
    ContextDep,
    CurrentUser,
    DatabaseDep,
    OptionalUser,
    client_address,
)
from qala.components.accounts.models import User
from qala.components.accounts.services import (
    authenticate,
    create_user,
    end_session,
    issue_token,
    list_users,
    start_session,
)
from qala.core.bounds import Code, Name
from qala.runtime import Context


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class Registration(Credentials):
    display_name: str = Field(default="", max_length=200)


class NewUser(Registration):
    role: Code = "citizen"
    department: str | None = Field(
        default=None, max_length=400, description="Operators: comma-separated department codes."
    )
    place: str | None = Field(
        default=None, max_length=80, description="Staff: their city's code; empty: national."
    )


class UserOut(BaseModel):
    username: str
    display_name: str
    role: str
    department: str | None
    place: str | None


def user_out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        department=user.department,
        place=user.place,
    )


def set_session_cookie(response: Response, context: Context, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=context.settings.secure_cookies,
        max_age=12 * 3600,
        path="/",
    )


@contextmanager
def too_many_as_429() -> Iterator[None]:
    """A refused attempt answers 429 with ``Retry-After``, as rate limits do."""
    try:
        yield
    except throttle.TooManyAttemptsError as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None


router = APIRouter(route_class=CallerFirstRoute, prefix="/api/v1", tags=["accounts"])


@router.post("/auth/login")
def login(
    credentials: Credentials, request: Request, response: Response, context: ContextDep
) -> dict[str, Any]:
    """Start a browser session; the answer carries the CSRF token for later writes."""
    now = context.clock()
    with too_many_as_429(), context.database.transaction() as session:
        throttle.spend(session, throttle.LOGINS_PER_ADDRESS, client_address(request), now=now)
        user = authenticate(session, credentials.username, credentials.password, now=now)
        new = start_session(session, user, now=now)
        out = user_out(user)
    set_session_cookie(response, context, new.token)
    return {"user": out.model_dump(), "csrf_token": new.csrf_token}


@router.post("/auth/logout", status_code=204)
def logout(
    request: Request, response: Response, database: DatabaseDep, _caller: OptionalUser
) -> None:
    """End the browser session. Resolving the caller checks the session's CSRF token, so another
    site cannot sign a resident out behind their back."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with database.transaction() as session:
            end_session(session, token)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.post("/auth/register", status_code=201)
def register(registration: Registration, request: Request, context: ContextDep) -> UserOut:
    """Citizens create their own account; other roles are given by an administrator."""
    with too_many_as_429(), context.database.transaction() as session:
        throttle.spend(
            session,
            throttle.REGISTRATIONS_PER_ADDRESS,
            client_address(request),
            now=context.clock(),
        )
        user = create_user(
            session,
            username=registration.username,
            password=registration.password,
            display_name=registration.display_name,
            role="citizen",
        )
        return user_out(user)


@router.get("/auth/me")
def me(user: CurrentUser, request: Request) -> dict[str, Any]:
    return {
        "user": user_out(user).model_dump(),
        "csrf_token": getattr(request.state, "csrf_token", None),
    }


@router.post("/auth/tokens", status_code=201)
def new_token(
    credentials: Credentials, request: Request, context: ContextDep, label: Name = ""
) -> dict[str, str]:
    """Exchange a username and password for a bearer token (shown once)."""
    now = context.clock()
    with too_many_as_429(), context.database.transaction() as session:
        throttle.spend(session, throttle.LOGINS_PER_ADDRESS, client_address(request), now=now)
        user = authenticate(session, credentials.username, credentials.password, now=now)
        return {"token": issue_token(session, user, label=label), "token_type": "bearer"}


@router.get("/users")
def users(_admin: AdminUser, database: DatabaseDep) -> list[UserOut]:
    with database.session() as session:
        return [user_out(u) for u in list_users(session)]


@router.post("/users", status_code=201)
def add_user(new: NewUser, _admin: AdminUser, database: DatabaseDep) -> UserOut:
    with database.transaction() as session:
        user = create_user(
            session,
            username=new.username,
            password=new.password,
            role=new.role,
            display_name=new.display_name,
            department=new.department,
            place=new.place,
        )
        return user_out(user)
