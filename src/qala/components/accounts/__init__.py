"""Accounts and roles: citizen, operator, analyst, administrator.

Every other component checks the caller through ``qala.components.accounts.deps``.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent


def _api(context: Context) -> object:
    from fastapi import APIRouter

    from qala.components.accounts.api import router as accounts
    from qala.components.accounts.identity_api import router as identity

    router = APIRouter()
    router.include_router(accounts)
    router.include_router(identity)
    return router


def _demo(context: Context) -> str:
    from qala.components.accounts.services import DEMO_PASSWORD_SUFFIX, ensure_demo_users

    with context.database.transaction() as session:
        created = ensure_demo_users(session)
    return f"demo accounts {', '.join(created) or '(already there)'} — password `<username>{DEMO_PASSWORD_SUFFIX}`"


COMPONENT = ComponentSpec(
    name="accounts", migrations=HERE / "migrations", api_router=_api, demo_loader=_demo
)
