"""The HTTP API at ``/api/v1/budgeting/``, one router per resource.

Anyone reads processes, proposals, results, consultations, projects and the ledger (and verifies
it); signed-in citizens propose, vote, answer, comment and rate; officials (operator,
administrator) run processes, review proposals and keep projects up to date; analysts (and
officials) read the indicators; administrators write them to the catalogue.
"""

from __future__ import annotations

from fastapi import APIRouter

from qala.components.budgeting.api import (
    consultations,
    indicators,
    ledger,
    processes,
    projects,
    voting,
)

router = APIRouter()
for resource in (processes, voting, consultations, projects, ledger, indicators):
    router.include_router(resource.router)

__all__ = ["router"]
