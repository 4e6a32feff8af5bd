"""Sign in, sign out and register (citizens), over the accounts component's services."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qala.components.accounts import throttle
from qala.components.accounts.api import set_session_cookie
from qala.components.accounts.deps import (
    SESSION_COOKIE,
    CallerFirstRoute,
    ContextDep,
    client_address,
)
from qala.components.accounts.services import (
    DEMO_USERS,
    authenticate,
    create_user,
    end_session,
    start_session,
)
from qala.core.errors import ConflictError, PermissionDeniedError, ValidationError
from qala.web.deps import SEES_USER, TranslatorDep, UIDep
from qala.web.ui import anon_form_token_ok

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a signed-in user to another host."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def demo_accounts() -> list[tuple[str, str]]:
    return [(username, role) for username, role, _name, _dept in DEMO_USERS]


@router.get("/login", dependencies=[SEES_USER])
async def login_page(request: Request, ui: UIDep, next: str | None = None) -> Response:
    return ui.render(
        request,
        "login.html",
        next=safe_next(next),
        demo_accounts=demo_accounts(),
        error=None,
        form_token=ui.anon_csrf(request),
    )


@router.post("/login")
async def login(request: Request, ui: UIDep, t: TranslatorDep, context: ContextDep) -> Response:
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "/")))
    error, status, headers = None, 400, {}
    if not anon_form_token_ok(request, form.get("csrf_token")):
        error = t("auth.form_expired")
    else:
        try:
            with context.database.transaction() as session:
                # Per address as on the API: one address guessing at many usernames is stopped
                # too, not only many addresses at one username.
                now = context.clock()
                throttle.spend(
                    session, throttle.LOGINS_PER_ADDRESS, client_address(request), now=now
                )
                user = authenticate(session, username, password, now=now)
                new = start_session(session, user, now=now)
        except throttle.TooManyAttemptsError as exc:
            error, status = t("auth.too_many", seconds=exc.retry_after), 429
            headers = {"Retry-After": str(exc.retry_after)}
        except PermissionDeniedError:
            error = t("auth.wrong_password")
    if error is not None:
        page = ui.render(
            request,
            "login.html",
            status_code=status,
            next=next_url,
            demo_accounts=demo_accounts(),
            error=error,
            username=username,
            form_token=ui.anon_csrf(request),
        )
        page.headers.update(headers)
        return page
    response = ui.redirect(request, next_url)
    set_session_cookie(response, context, new.token)
    return response


@router.post("/logout", dependencies=[SEES_USER])  # checks the session's CSRF token
async def logout(request: Request, ui: UIDep, context: ContextDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with context.database.transaction() as session:
            end_session(session, token)
    response = ui.redirect(request, "/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/register", dependencies=[SEES_USER])
async def register_page(request: Request, ui: UIDep) -> Response:
    return ui.render(
        request, "register.html", problems=[], values={}, form_token=ui.anon_csrf(request)
    )


@router.post("/register")
async def register(request: Request, ui: UIDep, t: TranslatorDep, context: ContextDep) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "")) for k in ("username", "display_name")}
    password = str(form.get("password", ""))
    problems: list[str] = []
    if not anon_form_token_ok(request, form.get("csrf_token")):
        problems.append(t("auth.form_expired"))
    elif password != str(form.get("password_again", "")):
        problems.append(t("auth.passwords_differ"))
    else:
        try:
            with context.database.transaction() as session:
                throttle.spend(
                    session,
                    throttle.REGISTRATIONS_PER_ADDRESS,
                    client_address(request),
                    now=context.clock(),
                )
                user = create_user(
                    session,
                    username=values["username"],
                    password=password,
                    display_name=values["display_name"],
                    role="citizen",
                )
                new = start_session(session, user, now=context.clock())
        except throttle.TooManyAttemptsError as exc:
            problems.append(t("auth.too_many", seconds=exc.retry_after))
        except ValidationError as exc:
            problems += [t.problem(p) for p in exc.problems]
        except ConflictError as exc:
            problems.append(t.error(exc))
    if problems:
        return ui.render(
            request,
            "register.html",
            status_code=400,
            problems=problems,
            values=values,
            form_token=ui.anon_csrf(request),
        )
    response = ui.redirect(request, "/")
    set_session_cookie(response, context, new.token)
    return response
