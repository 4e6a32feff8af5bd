"""The public hash-chained ledger: ``/api/v1/budgeting/ledger``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from qala.components.accounts.deps import ContextDep
from qala.components.budgeting import ledger
from qala.components.budgeting.api.deps import MAX_ID, PREFIX, TAGS

router = APIRouter(prefix=f"{PREFIX}/ledger", tags=TAGS)


@router.get("", summary="Ledger entries, in order, for anyone to verify")
def entries(
    context: ContextDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    subject: Annotated[str | None, Query(max_length=80)] = None,
) -> list[dict[str, Any]]:
    with context.database.session() as session:
        found = ledger.list_entries(session, after=after, limit=limit, subject=subject)
        return [e.as_dict() for e in found]


@router.get("/verify", summary="Verify the whole ledger (chain, head and tables)")
def verify(
    context: ContextDep, expected_head: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    with context.database.session() as session:
        return ledger.verify_ledger(session, expected_head=expected_head).as_dict()
