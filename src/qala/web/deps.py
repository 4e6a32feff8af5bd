"""Dependencies every page shares: the renderer, the page's language, and who may see the page.

Pages differ from the JSON API in how they refuse: an anonymous visitor is sent to the sign-in
page (``LoginRequired``) and a signed-in user without the role gets the HTML 403 page
(``RoleRequired``); the shell turns both into responses.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from qala.components.accounts.deps import (
    ContextDep,
    OptionalUser,
    checks_caller,
    optional_user,
)
from qala.components.accounts.models import User
from qala.web.i18n import Translator
from qala.web.ui import UI, LoginRequired, RoleRequired, role_allows

UI_KEY = "web_ui"
"""Where ``mount_web`` keeps the app's renderer in ``Context.extras``."""


async def get_ui(context: ContextDep) -> UI:
    ui: UI = context.extras[UI_KEY]
    return ui


UIDep = Annotated[UI, Depends(get_ui)]


async def get_translator(request: Request, ui: UIDep) -> Translator:
    """UI strings in the page's language (query, cookie, browser, then the default). Both
    dependencies are coroutines only so that FastAPI runs them inline, not in a worker thread."""
    return ui.translator(request)


TranslatorDep = Annotated[Translator, Depends(get_translator)]

SEES_USER = Depends(optional_user)
"""For ``dependencies=[...]``: the page shows who is signed in (navigation, forms) and checks the
session's CSRF token on a POST."""


def page_user(*roles: str) -> Callable[..., Coroutine[Any, Any, User]]:
    """A dependency admitting signed-in users with one of ``roles`` (any role when none given;
    administrators always); others go to sign in or get the 403 page."""

    async def dependency(request: Request, user: OptionalUser) -> User:
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        if not role_allows(user, roles):
            raise RoleRequired(roles)
        return user

    return checks_caller(dependency, dependency)


OperatorPage = Annotated[User, Depends(page_user("operator"))]
AnalystPage = Annotated[User, Depends(page_user("analyst"))]
AssessorPage = Annotated[User, Depends(page_user("analyst", "operator"))]
