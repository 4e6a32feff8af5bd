"""Participation and delivery indicators: ``/api/v1/budgeting/indicators``.

The indicators module is imported by the handlers: it loads pandas, which the rest of the API
does not need at start-up.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.budgeting.api.deps import PREFIX, TAGS, Administrator, Analyst

router = APIRouter(route_class=CallerFirstRoute, prefix=f"{PREFIX}/indicators", tags=TAGS)


@router.get("", summary="Participation and delivery indicators")
def indicators(user: Analyst, context: ContextDep) -> list[dict[str, Any]]:
    from qala.components.budgeting.indicators import compute_indicators

    with context.database.session() as session:
        return compute_indicators(session).records()


@router.post("", summary="Write the indicators to the catalogue (administrators)")
def write(user: Administrator, context: ContextDep) -> dict[str, Any]:
    from qala.components.budgeting.indicators import publish_indicators

    return {"rows_written": publish_indicators(context.database, imported_by=user.username)}
