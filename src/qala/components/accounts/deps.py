"""FastAPI dependencies: who is calling, and may they?

Browsers authenticate with a session cookie; for unsafe methods the CSRF token must come back in
the ``X-CSRF-Token`` header or a ``csrf_token`` form field. API clients send
``Authorization: Bearer <token>`` and need no CSRF token (no ambient credential is involved).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from qala.components.accounts.models import User
from qala.components.accounts.scope import StaffScope
from qala.components.accounts.services import resolve_session, resolve_token
from qala.runtime import Context
from qala.store.database import Database

SESSION_COOKIE = "qala_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CALLER_CHECK = "qala_caller_check"
"""Attribute naming, on a dependency that admits or refuses the caller, the coroutine
``(request, user)`` :class:`CallerFirstRoute` runs before the request's body is read."""


def context_of(request: Request) -> Context:
    """The running platform the app was built with (``create_app`` puts it on ``app.state``)."""
    context: Context = request.app.state.context
    return context


# The dependencies are coroutines though they never wait: FastAPI runs a plain function
# dependency in its thread pool, and that hop would cost every request more than the lookup.
async def get_context(request: Request) -> Context:
    return context_of(request)


def client_address(request: Request) -> str:
    """The address rate limits count a caller under (a trusted proxy's ``X-Forwarded-For`` has
    already replaced the socket's peer: ``Settings.trusted_proxies``)."""
    return request.client.host if request.client else "unknown"


async def get_database(request: Request) -> Database:
    return context_of(request).database


ContextDep = Annotated[Context, Depends(get_context)]
"""Module-level routes take the platform as a parameter instead of closing over it."""
DatabaseDep = Annotated[Database, Depends(get_database)]


async def _csrf_token_sent(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def optional_user(request: Request) -> User | None:
    """The caller, or None for an anonymous request. Caches the answer on the request."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    context = context_of(request)
    user: User | None = None
    authorization = request.headers.get("authorization", "")
    with context.database.session() as session:
        if authorization.lower().startswith("bearer "):
            user = resolve_token(session, authorization[7:].strip())
            if user is None:
                raise HTTPException(
                    401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"}
                )
        elif cookie := request.cookies.get(SESSION_COOKIE):
            record = resolve_session(session, cookie, now=context.clock())
            if record is not None:
                if request.method not in SAFE_METHODS:
                    sent = await _csrf_token_sent(request)
                    if not sent or not hmac.compare_digest(sent, record.csrf_token):
                        raise HTTPException(403, "missing or wrong CSRF token")
                user = record.user
                request.state.csrf_token = record.csrf_token
        if user is not None:
            session.expunge(user)
    request.state.user = user
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]


CallerCheck = Callable[[Request, User | None], Coroutine[Any, Any, Any]]
Checker = TypeVar("Checker", bound=Callable[..., Any])


def checks_caller(dependency: Checker, check: CallerCheck) -> Checker:
    """Mark ``dependency`` as a caller check that :class:`CallerFirstRoute` runs as ``check``
    before the body is read (the dependency itself still runs in FastAPI's order)."""
    setattr(dependency, CALLER_CHECK, check)
    return dependency


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, User]]:
    """A dependency admitting signed-in users with one of ``roles`` (administrators always)."""

    async def dependency(user: OptionalUser) -> User:
        if user is None:
            raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
        if roles and user.role not in roles and user.role != "administrator":
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}")
        return user

    return checks_caller(dependency, lambda _request, user: dependency(user))


def require_national(*roles: str) -> Callable[..., Coroutine[Any, Any, User]]:
    """:func:`require_roles`, and the account works for the whole country (things that span
    every city, such as building the national rating)."""
    by_role = require_roles(*roles)

    async def dependency(user: OptionalUser) -> User:
        checked = await by_role(user)
        if not StaffScope.of(checked).national:
            raise HTTPException(403, f"national staff only; this account works for {checked.place}")
        return checked

    return checks_caller(dependency, lambda _request, user: dependency(user))


async def _any_user(user: OptionalUser) -> User:
    if user is None:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    return user


checks_caller(_any_user, lambda _request, user: _any_user(user))


def caller_checks(dependant: Dependant) -> list[CallerCheck]:
    checks: list[CallerCheck] = []
    for sub in dependant.dependencies:
        check = getattr(sub.call, CALLER_CHECK, None)
        if check is not None and check not in checks:
            checks.append(check)
        checks += [c for c in caller_checks(sub) if c not in checks]
    return checks


class CallerFirstRoute(APIRoute):
    """A route that checks who is calling before it reads the request's body.

    FastAPI reads a declared body (and a dependency listed before the caller's) before it
    resolves the caller's dependencies, so a role-restricted route read an anonymous caller's
    whole body, up to its size limit, before it answered 401. Here the route's caller checks
    (dependencies marked with :func:`checks_caller`) run first, on the same request object;
    FastAPI's own resolution then finds the caller cached on the request.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = caller_checks(self.dependant)
        if not checks or not (self.methods or set()) - SAFE_METHODS:
            return handler

        async def caller_first(request: Request) -> Response:
            user = await optional_user(request)
            for check in checks:
                await check(request, user)
            return await handler(request)

        return caller_first


CurrentUser = Annotated[User, Depends(_any_user)]
AnalystUser = Annotated[User, Depends(require_roles("analyst"))]
OperatorUser = Annotated[User, Depends(require_roles("operator"))]
AdminUser = Annotated[User, Depends(require_roles("administrator"))]


# Request bodies larger than the app's default (``Settings.max_request_bytes``, 1 MiB): FastAPI
# stops reading a body as soon as it passes its route's limit and answers 413.
DATA_FILE_BODY = 64 * 1024 * 1024
"""City data files (imports, checks): ``Settings.max_upload_bytes`` then applies within it."""
DATA_SET_BODY = 16 * 1024 * 1024
"""Observation batches, survey data for PLS-SEM, stakeholder tables, NGSI-LD batches."""

# Bounded numbers for route parameters. Unbounded ints reached the database as values it cannot
# hold (SQLite's and PostgreSQL's 64-bit integers overflowed into HTTP 500); with these the
# request is refused with 422 and the OpenAPI document states the range.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A stored row's id.")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")]
Limit = Annotated[int, Query(ge=1, le=1_000, description="Rows to return, at most 1,000.")]
Year = Annotated[int | None, Query(ge=1900, le=2100, description="A calendar year.")]
