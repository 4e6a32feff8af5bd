"""Mounts the dashboard: static files, the page routers, and HTML error pages.

Pages are thin routers (``qala.web.pages.*``) calling the components' public service functions.
A page whose component is not installed is simply not mounted, and its navigation entry hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from qala.core.errors import QalaError
from qala.core.messages import Message
from qala.registry import COMPONENTS
from qala.runtime import Context
from qala.web.deps import UI_KEY
from qala.web.pages import accounts, admin, calls, explore, operator, reports
from qala.web.ui import UI, LoginRequired, NavItem, RoleRequired

STATIC = Path(__file__).parent / "static"
API_PREFIXES = (
    "/api/",
    "/open311/",
    "/ngsi-ld/",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/healthz",
    "/readyz",
    "/metrics",
)


def component_installed(name: str) -> bool:
    """Whether a component is registered (its pages can then be mounted)."""
    return any(c.name == name for c in COMPONENTS)


def navigation() -> list[NavItem]:
    items = [
        NavItem("nav.rating", "/rating"),
        NavItem("nav.whatif", "/rating/what-if"),
        NavItem("nav.indicators", "/indicators"),
        NavItem("nav.map", "/map"),
        NavItem("nav.report_problem", "/requests/new"),
    ]
    if component_installed("budgeting"):
        items.append(NavItem("nav.budgeting", "/budgeting"))
    items += [
        NavItem("nav.operator", "/operator", ("operator",)),
        NavItem("nav.admin", "/admin", ("analyst",)),
        NavItem("nav.calls", "/calls", ("submitter", "reviewer", "publisher", "analyst")),
    ]
    if component_installed("assessment"):
        items.append(NavItem("nav.readiness", "/readiness", ("analyst", "operator")))
    return items


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page (rather than an API client)."""
    path = request.url.path
    if path.startswith(API_PREFIXES):
        return False
    # Only browsers navigating ask for text/html; API clients and scripts keep JSON errors.
    return "text/html" in request.headers.get("accept", "")


def page_routers() -> list[APIRouter]:
    """The dashboard's pages, those of components that are not installed left out."""
    routers = [accounts.router, explore.router]
    if component_installed("requests311"):
        from qala.web.pages import citizen, public_requests, request_export

        routers += [public_requests.router, citizen.router, request_export.router]
    if component_installed("notify"):
        from qala.web.pages import notify

        routers.append(notify.router)
    routers += [operator.router, admin.router, calls.router, reports.router]
    if component_installed("rating"):
        from qala.web.pages import analysis

        routers.insert(1, analysis.router)  # before explore's /rating/{…} routes, if any
    if component_installed("budgeting"):
        from qala.web.pages import budgeting

        routers.append(budgeting.router)
    if component_installed("assessment"):
        from qala.web.pages import readiness

        routers.append(readiness.router)
    return routers


def mount_web(app: FastAPI, context: Context) -> None:
    for component in COMPONENTS:
        if component.web_router is not None:
            app.include_router(component.web_router(context))

    templates = [c.templates for c in COMPONENTS if c.templates is not None]
    ui = UI(context, nav=navigation(), extra_templates=templates)
    context.extras[UI_KEY] = ui
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for router in page_routers():
        app.include_router(router)
    operator.watch_board(context)

    app.exception_handler(LoginRequired)(login_required)
    app.exception_handler(RoleRequired)(role_required)
    app.exception_handler(StarletteHTTPException)(http_error)
    api_errors = app.exception_handlers.get(QalaError)
    if api_errors is not None:
        app.state.api_error_handler = api_errors
        app.exception_handler(QalaError)(domain_error)
    app.exception_handler(RequestValidationError)(invalid_request)


def _ui(request: Request) -> UI:
    ui: UI = request.app.state.context.extras[UI_KEY]
    return ui


def _sign_in_first(request: Request, next_url: str) -> Response:
    return _ui(request).redirect(request, f"/login?next={quote(next_url, safe='/')}")


async def login_required(request: Request, exc: LoginRequired) -> Response:
    return _sign_in_first(request, exc.next_url)


async def role_required(request: Request, exc: RoleRequired) -> Response:
    return _ui(request).render(request, "error.html", status_code=403, code=403, roles=exc.roles)


def server_error_page(request: Request, error_id: str) -> Response:
    """The translated page for an unexpected failure, naming the id the log keeps it under."""
    return _ui(request).render(request, "error.html", status_code=500, code=500, error_id=error_id)


ERROR_PAGES = (400, 403, 404, 405, 409, 413, 422, 429)
"""Statuses with a page of their own in the catalogues (``error.<code>``)."""


def error_page(request: Request, status: int, detail: Any = None) -> Response:
    """The translated page for a failed request. Only a message id (``Message``) is shown as
    detail: an exception's English text stays in the API's JSON and the log."""
    shown = detail if isinstance(detail, Message) else None
    code = status if status in ERROR_PAGES else 400
    return _ui(request).render(request, "error.html", status_code=status, code=code, detail=shown)


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Browsers get the dashboard's pages for 4xx (401 leads to sign in); API clients and
    scripts keep FastAPI's JSON errors."""
    if not wants_html(request) or not 400 <= exc.status_code < 500:
        return await http_exception_handler(request, exc)
    if exc.status_code == 401:
        return _sign_in_first(request, request.url.path)
    return error_page(request, exc.status_code, exc.detail)


async def domain_error(request: Request, exc: QalaError) -> Response:
    """A domain error (unknown place, conflict, bad input): a page for browsers, the API's JSON
    (and its status) for everyone else."""
    answer: Response = await request.app.state.api_error_handler(request, exc)
    if not wants_html(request):
        return answer
    return error_page(request, answer.status_code, exc.message)


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """A query or form FastAPI could not read (``?year=abc``): 422, as a page for browsers."""
    if not wants_html(request):
        return await request_validation_exception_handler(request, exc)
    return error_page(request, 422)
