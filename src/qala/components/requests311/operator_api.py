"""The staff side at ``/api/v1/requests/``: queues per department, the lifecycle, bulk updates,
escalation and indicators (roles operator or administrator), and ``follow`` for citizens."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.orm import Session

from qala.components.accounts.deps import (
    AdminUser,
    CallerFirstRoute,
    ContextDep,
    OperatorUser,
    require_roles,
)
from qala.components.accounts.models import User
from qala.components.accounts.scope import StaffScope
from qala.components.requests311.access import scoped_requests, staff_jurisdiction
from qala.components.requests311.jurisdictions import JurisdictionInfo, catalogue_cache
from qala.components.requests311.lifecycle import Requests, refuse_self_merge
from qala.components.requests311.queries import follow_request
from qala.components.requests311.sla import escalate_overdue
from qala.components.requests311.views import OPEN_STATUSES, StaffRequest
from qala.runtime import Context

if TYPE_CHECKING:
    from qala.components.requests311.indicators import RequestIndicators

PREFIX = "/api/v1/requests"

Staff = OperatorUser
"""Operators and administrators."""
Administrator = AdminUser
Analyst = Annotated[User, Depends(require_roles("operator", "analyst", "administrator"))]
MAX_ID = 2**31 - 1
"""Ids are 32-bit integers in both stores; larger numbers cannot name a request."""
RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="The request's id.")]
JurisdictionCode = Annotated[
    str | None, Query(max_length=80, description="City code; optional when there is one city.")
]


class NoteBody(BaseModel):
    note: str | None = Field(
        None, max_length=4000, description="Public update sent to the citizen."
    )


class CloseBody(BaseModel):
    reason: Literal["resolved", "not_actionable", "out_of_jurisdiction", "withdrawn"]
    note: str | None = Field(
        None, max_length=4000, description="Public update sent to the citizen."
    )


class ReopenBody(BaseModel):
    reason: str = Field(..., min_length=1, max_length=4000)


class AssignBody(BaseModel):
    assignee: str | None = Field(
        None, max_length=120, description="Username; empty string clears it."
    )
    department: str | None = Field(
        None, max_length=80, description="Department code (re-routes the request)."
    )


class AddNoteBody(BaseModel):
    text: str = Field(..., min_length=1, max_length=4000)
    public: bool = Field(
        False, description="Public updates reach the citizen; internal notes stay with staff."
    )


class MergeBody(BaseModel):
    into: int = Field(..., ge=1, le=MAX_ID, description="Id of the original request.")


class BulkBody(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(..., min_length=1, max_length=500)
    action: Literal["acknowledge", "start", "close", "reopen", "assign", "note", "merge"]
    options: dict[str, Any] = Field(
        default_factory=dict, description='The action\'s fields, e.g. {"reason": "resolved"}.'
    )


router = APIRouter(route_class=CallerFirstRoute, prefix=PREFIX, tags=["requests311"])


def _city(context: Context, code: str | None, user: User) -> JurisdictionInfo:
    return staff_jurisdiction(catalogue_cache(context).get(), StaffScope.of(user), code)


def _staff(session: Session, context: Context, user: User, code: str | None) -> Requests:
    known = catalogue_cache(context).get()
    return scoped_requests(session, known, user, code, now=context.clock(), bus=context.bus)


def _act(
    context: Context, user: User, code: str | None, action: str, request_id: int, body: BaseModel
) -> StaffRequest:
    """Apply the staff ``action`` (see ``lifecycle.ACTIONS``) with ``body``'s fields, committed."""
    with context.database.transaction() as session:
        return _staff(session, context, user, code).apply(action, request_id, **body.model_dump())


@router.get("/queue", summary="A department's queue of unclosed requests")
def queue(
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
    department: Annotated[str | None, Query(max_length=80)] = None,
    status: Annotated[
        list[Annotated[str, StringConstraints(max_length=40)]] | None,
        Query(description="Statuses (default: every unclosed one).", max_length=20),
    ] = None,
    assignee: Annotated[str | None, Query(max_length=120)] = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[StaffRequest]:
    with context.database.session() as session:
        # Operators see only their own departments' requests (``department`` narrows further).
        return _staff(session, context, user, jurisdiction).queue(
            department=department,
            statuses=status or OPEN_STATUSES,
            assignee=assignee,
            overdue_only=overdue,
            limit=limit,
            offset=offset,
        )


@router.get("/follow/{id_or_token}", summary="Follow a request by its id or token (public)")
def follow(
    id_or_token: Annotated[str, Path(max_length=40)],
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> dict[str, Any]:
    with context.database.session() as session:
        city = catalogue_cache(context).jurisdiction(jurisdiction)
        found = follow_request(session, city, id_or_token[:40])
    return asdict(found)


@router.post("/bulk", summary="Apply one action to many requests (all or nothing)")
def bulk(
    body: BulkBody, user: Staff, context: ContextDep, jurisdiction: JurisdictionCode = None
) -> list[StaffRequest]:
    with context.database.transaction() as session:
        return _staff(session, context, user, jurisdiction).bulk(
            body.ids, body.action, **body.options
        )


@router.post(
    "/escalate", summary="Escalate every request past its deadline (also run by the timer)"
)
def escalate(
    user: Staff, context: ContextDep, jurisdiction: JurisdictionCode = None
) -> dict[str, Any]:
    with context.database.transaction() as session:
        changed = escalate_overdue(
            session, _city(context, jurisdiction, user), now=context.clock(), bus=context.bus
        )
    return {"escalated": [{"id": i, "level": level} for i, level in changed]}


@router.get("/indicators", summary="Indicators computed from the requests (per year, per service)")
def indicators(
    user: Analyst, context: ContextDep, jurisdiction: JurisdictionCode = None
) -> dict[str, Any]:
    result = _computed_indicators(context, _city(context, jurisdiction, user))
    return {
        "jurisdiction": result.jurisdiction,
        "illustrative": result.illustrative,
        "by_city": _records(result.by_city),
        "by_service": _records(result.by_service),
    }


@router.post("/indicators", summary="Compute the indicators and write them to the catalogue")
def write(
    user: Administrator, context: ContextDep, jurisdiction: JurisdictionCode = None
) -> dict[str, Any]:
    from qala.components.requests311.indicators import write_indicators

    result = _computed_indicators(context, _city(context, jurisdiction, user))
    return {"rows_written": write_indicators(context.database, result, imported_by=user.username)}


@router.get("/{request_id}", summary="A request with the reporter's contact, notes and audit trail")
def detail(
    request_id: RequestId, user: Staff, context: ContextDep, jurisdiction: JurisdictionCode = None
) -> StaffRequest:
    with context.database.session() as session:
        return _staff(session, context, user, jurisdiction).detail(request_id)


@router.post("/{request_id}/acknowledge", summary="open → acknowledged")
def acknowledge(
    request_id: RequestId,
    body: NoteBody,
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> StaffRequest:
    return _act(context, user, jurisdiction, "acknowledge", request_id, body)


@router.post("/{request_id}/start", summary="open or acknowledged → in progress")
def start(
    request_id: RequestId,
    body: NoteBody,
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> StaffRequest:
    return _act(context, user, jurisdiction, "start", request_id, body)


@router.post("/{request_id}/close", summary="Close with a reason")
def close(
    request_id: RequestId,
    body: CloseBody,
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> StaffRequest:
    return _act(context, user, jurisdiction, "close", request_id, body)


@router.post("/{request_id}/reopen", summary="Reopen a closed request")
def reopen(
    request_id: RequestId,
    body: ReopenBody,
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> StaffRequest:
    return _act(context, user, jurisdiction, "reopen", request_id, body)


@router.post("/{request_id}/assign", summary="Assign to a person and/or department")
def assign(
    request_id: RequestId,
    body: AssignBody,
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> StaffRequest:
    return _act(context, user, jurisdiction, "assign", request_id, body)


@router.post("/{request_id}/notes", summary="Add a public update or an internal note")
def add_note(
    request_id: RequestId,
    body: AddNoteBody,
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> StaffRequest:
    return _act(context, user, jurisdiction, "note", request_id, body)


@router.post("/{request_id}/merge", summary="Close as a duplicate of another request")
def merge(
    request_id: RequestId,
    body: MergeBody,
    user: Staff,
    context: ContextDep,
    jurisdiction: JurisdictionCode = None,
) -> StaffRequest:
    refuse_self_merge(request_id, body.into)
    return _act(context, user, jurisdiction, "merge", request_id, body)


def _computed_indicators(context: Context, city: JurisdictionInfo) -> RequestIndicators:
    # Imported here: pandas is loaded only when indicators are asked for.
    from qala.components.requests311.indicators import compute_indicators

    with context.database.session() as session:
        return compute_indicators(session, city, now=context.clock())


def _records(frame: Any) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]
