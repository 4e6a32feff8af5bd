"""The staff side at ``/api/v1/requests/``: queues per department, the lifecycle, bulk updates,
escalation and indicators (roles operator or administrator), and ``follow`` for citizens."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from qala.components.accounts.deps import require_roles
from qala.components.accounts.models import User
from qala.components.requests311.services import (
    OPEN_STATUSES,
    CatalogueCache,
    FollowedRequest,
    JurisdictionInfo,
    Requests,
    StaffRequest,
    escalate_overdue,
    follow_request,
)
from qala.core.errors import ValidationError
from qala.runtime import Context

PREFIX = "/api/v1/requests"

Staff = Annotated[User, Depends(require_roles("operator", "administrator"))]
Administrator = Annotated[User, Depends(require_roles("administrator"))]
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


def build_operator_router(context: Context) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["requests311"])
    cache = context.extras.get("requests311.catalogue_cache")
    if not isinstance(cache, CatalogueCache):
        cache = CatalogueCache(context.database.session, ttl=5.0)
        context.extras["requests311.catalogue_cache"] = cache

    def city(code: str | None) -> JurisdictionInfo:
        return cache.jurisdiction(code)

    def act(user: User, jurisdiction: str | None, do: Any) -> StaffRequest:
        with context.database.transaction() as session:
            staff = Requests(
                session,
                city(jurisdiction),
                actor=user.username,
                now=context.clock(),
                bus=context.bus,
            )
            result: StaffRequest = do(staff)
            return result

    @router.get("/queue", summary="A department's queue of unclosed requests")
    def queue(
        user: Staff,
        jurisdiction: JurisdictionCode = None,
        department: Annotated[str | None, Query(max_length=80)] = None,
        status: Annotated[
            list[str] | None, Query(description="Statuses (default: every unclosed one).")
        ] = None,
        assignee: Annotated[str | None, Query(max_length=120)] = None,
        overdue: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> list[StaffRequest]:
        with context.database.session() as session:
            staff = Requests(session, city(jurisdiction), actor=user.username, now=context.clock())
            # Operators see their own department's queue unless they ask for another.
            return staff.queue(
                department=department or getattr(user, "department", None),
                statuses=status or OPEN_STATUSES,
                assignee=assignee,
                overdue_only=overdue,
                limit=limit,
                offset=offset,
            )

    @router.get("/follow/{id_or_token}", summary="Follow a request by its id or token (public)")
    def follow(
        id_or_token: Annotated[str, Path(max_length=40)], jurisdiction: JurisdictionCode = None
    ) -> dict[str, Any]:
        with context.database.session() as session:
            found: FollowedRequest = follow_request(session, city(jurisdiction), id_or_token[:40])
        return asdict(found)

    @router.post("/bulk", summary="Apply one action to many requests (all or nothing)")
    def bulk(
        body: BulkBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> list[StaffRequest]:
        with context.database.transaction() as session:
            staff = Requests(
                session,
                city(jurisdiction),
                actor=user.username,
                now=context.clock(),
                bus=context.bus,
            )
            return staff.bulk(body.ids, body.action, **body.options)

    @router.post(
        "/escalate", summary="Escalate every request past its deadline (also run by the timer)"
    )
    def escalate(user: Staff, jurisdiction: JurisdictionCode = None) -> dict[str, Any]:
        with context.database.transaction() as session:
            changed = escalate_overdue(
                session, city(jurisdiction), now=context.clock(), bus=context.bus
            )
        return {"escalated": [{"id": i, "level": level} for i, level in changed]}

    @router.get(
        "/indicators", summary="Indicators computed from the requests (per year, per service)"
    )
    def indicators(user: Analyst, jurisdiction: JurisdictionCode = None) -> dict[str, Any]:
        from qala.components.requests311.indicators import compute_indicators

        with context.database.session() as session:
            result = compute_indicators(session, city(jurisdiction), now=context.clock())
        return {
            "jurisdiction": result.jurisdiction,
            "illustrative": result.illustrative,
            "by_city": _records(result.by_city),
            "by_service": _records(result.by_service),
        }

    @router.post("/indicators", summary="Compute the indicators and write them to the catalogue")
    def write(user: Administrator, jurisdiction: JurisdictionCode = None) -> dict[str, Any]:
        from qala.components.requests311.indicators import compute_indicators, write_indicators

        with context.database.session() as session:
            result = compute_indicators(session, city(jurisdiction), now=context.clock())
        return {
            "rows_written": write_indicators(context.database, result, imported_by=user.username)
        }

    @router.get(
        "/{request_id}", summary="A request with the reporter's contact, notes and audit trail"
    )
    def detail(
        request_id: RequestId, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        with context.database.session() as session:
            return Requests(
                session, city(jurisdiction), actor=user.username, now=context.clock()
            ).detail(request_id)

    @router.post("/{request_id}/acknowledge", summary="open → acknowledged")
    def acknowledge(
        request_id: RequestId, body: NoteBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        return act(user, jurisdiction, lambda s: s.acknowledge(request_id, note=body.note))

    @router.post("/{request_id}/start", summary="open or acknowledged → in progress")
    def start(
        request_id: RequestId, body: NoteBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        return act(user, jurisdiction, lambda s: s.start(request_id, note=body.note))

    @router.post("/{request_id}/close", summary="Close with a reason")
    def close(
        request_id: RequestId, body: CloseBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        return act(
            user, jurisdiction, lambda s: s.close(request_id, reason=body.reason, note=body.note)
        )

    @router.post("/{request_id}/reopen", summary="Reopen a closed request")
    def reopen(
        request_id: RequestId, body: ReopenBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        return act(user, jurisdiction, lambda s: s.reopen(request_id, reason=body.reason))

    @router.post("/{request_id}/assign", summary="Assign to a person and/or department")
    def assign(
        request_id: RequestId, body: AssignBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        return act(
            user,
            jurisdiction,
            lambda s: s.assign(request_id, assignee=body.assignee, department=body.department),
        )

    @router.post("/{request_id}/notes", summary="Add a public update or an internal note")
    def add_note(
        request_id: RequestId, body: AddNoteBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        return act(
            user, jurisdiction, lambda s: s.add_note(request_id, text=body.text, public=body.public)
        )

    @router.post("/{request_id}/merge", summary="Close as a duplicate of another request")
    def merge(
        request_id: RequestId, body: MergeBody, user: Staff, jurisdiction: JurisdictionCode = None
    ) -> StaffRequest:
        if body.into == request_id:
            raise ValidationError.single(
                "a request cannot be a duplicate of itself", column="into", value=body.into
            )
        return act(user, jurisdiction, lambda s: s.merge_duplicate(request_id, into=body.into))

    return router


def _records(frame: Any) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]
