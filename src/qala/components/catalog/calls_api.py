"""HTTP API of the yearly data call: submitters answer for their place, the national team reviews
and publishes. Every write runs in one transaction: a refusal (403, 409, 422) writes nothing.

Who may do what (administrators always; ``analyst`` reads):

========================  =========================  ===========================
route                     submitter (one place)      reviewer / publisher (national)
========================  =========================  ===========================
list calls, board         calls asking its place     every call
a place's values          its own place only         every place
submit, upload, answer    its own place only         no
review queue, accept      no                         yes
publish                   no                         publisher only
========================  =========================  ===========================
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from qala.components.accounts.deps import (
    DATA_FILE_BODY,
    CallerFirstRoute,
    ContextDep,
    DatabaseDep,
    RowId,
    require_national,
    require_roles,
)
from qala.components.accounts.models import User
from qala.components.accounts.scope import StaffScope
from qala.components.catalog import calls
from qala.components.catalog.api import UPLOAD_BODY, saved_upload, uploaded_file
from qala.core.bounds import Code, Text

router = APIRouter(route_class=CallerFirstRoute, prefix="/api/v1/calls", tags=["data call"])

Value = Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]
Evidence = Annotated[str, Field(max_length=2_000)]


async def _submitter(user: Annotated[User, Depends(require_roles("submitter"))]) -> User:
    if user.role == "submitter" and StaffScope.of(user).national:
        raise HTTPException(403, "a submitter account answers for one place; it has none")
    return user


Reader = Annotated[User, Depends(require_roles("submitter", "reviewer", "publisher", "analyst"))]
Submitter = Annotated[User, Depends(_submitter)]
Reviewer = Annotated[User, Depends(require_national("reviewer", "publisher"))]
Publisher = Annotated[User, Depends(require_national("publisher"))]


class CallIn(BaseModel):
    year: int = Field(ge=1950, le=2100)
    indicators: list[Code] = Field(min_length=1, max_length=500)
    places: list[Code] = Field(min_length=1, max_length=500)
    deadline: date
    title: Annotated[str, Field(max_length=200)] | None = None


class ValueIn(BaseModel):
    place: Code
    indicator: Code
    value: Value
    evidence: Evidence | None = Field(None, description="A document reference or a link.")
    note: Evidence | None = None


class ValuesIn(BaseModel):
    values: list[ValueIn] = Field(min_length=1, max_length=5_000)


class DecisionIn(BaseModel):
    place: Code
    indicator: Code
    decision: Literal["accept", "return"]
    reason: Text | None = None


class AnswerIn(BaseModel):
    place: Code
    indicator: Code
    answer: Text = Field(min_length=1)
    value: Value | None = Field(None, description="A corrected value, if there is one.")
    evidence: Evidence | None = None


class PublishIn(BaseModel):
    force: bool = Field(False, description="Publish although values are missing or not accepted.")
    reason: Text | None = Field(None, description="Why, required with `force`.")


def _own_place(user: User) -> str | None:
    """The one place a place-scoped account acts for (None: national)."""
    return StaffScope.of(user).place


def _submission(result: calls.Submission) -> dict[str, Any]:
    return {
        "written": result.written,
        "flags": [
            {"place": place, "indicator": indicator, "flags": flags}
            for (place, indicator), flags in result.flags.items()
        ],
    }


@router.get("")
def list_calls(user: Reader, database: DatabaseDep, context: ContextDep) -> list[dict[str, Any]]:
    """Data calls, newest first; a place's staff see the calls that ask their place."""
    with database.session() as session:
        return calls.list_calls(session, place=_own_place(user), today=context.clock().date())


@router.post("", status_code=201)
def open_call(body: CallIn, user: Publisher, database: DatabaseDep) -> dict[str, Any]:
    """Open a data call: year, indicators, places, deadline."""
    with database.transaction() as session:
        call = calls.open_call(
            session,
            year=body.year,
            indicators=body.indicators,
            places=[p.strip().lower() for p in body.places],
            deadline=body.deadline,
            actor=user.username,
            title=body.title,
        )
        return {"id": call.id, "year": call.year, "deadline": call.deadline.isoformat()}


@router.get("/{call_id}")
def board(
    call_id: RowId, user: Reader, database: DatabaseDep, context: ContextDep
) -> dict[str, Any]:
    """The call and its status board: per place submitted, accepted, returned, missing, overdue."""
    place = _own_place(user)
    with database.session() as session:
        call = calls.get_call(session, call_id)
        if place is not None and place not in call.places:
            raise HTTPException(404, f"no data call {call_id} for {place}")
        rows = calls.status_board(session, call_id, today=context.clock().date())
        return {
            "id": call.id,
            "year": call.year,
            "title": call.title,
            "deadline": call.deadline.isoformat(),
            "indicators": list(call.indicators),
            "board": [r for r in rows if place is None or r["place"] == place],
        }


@router.get("/{call_id}/places/{place}")
def place_values(
    call_id: RowId, place: Code, user: Reader, database: DatabaseDep
) -> list[dict[str, Any]]:
    """A place's asked values with status, evidence, flags, reasons and answers."""
    StaffScope.of(user).require(place, f"the values of {place}")
    with database.session() as session:
        return calls.place_sheet(session, call_id, place)


@router.post("/{call_id}/values")
def submit(
    call_id: RowId, body: ValuesIn, user: Submitter, database: DatabaseDep
) -> dict[str, Any]:
    """Submit values with evidence (all or none); plausibility flags come back, never refuse."""
    import pandas as pd

    frame = pd.DataFrame([v.model_dump() for v in body.values])
    with database.transaction() as session:
        result = calls.submit_values(
            session, call_id, frame, actor=user.username, scope_place=_own_place(user)
        )
        return _submission(result)


@router.post("/{call_id}/upload", max_body_size=DATA_FILE_BODY, openapi_extra=UPLOAD_BODY)
async def upload(
    call_id: RowId, request: Request, user: Submitter, context: ContextDep
) -> dict[str, Any]:
    """Submit a CSV, Excel or Parquet file: place, indicator, year, value[, evidence, note]."""
    file = await uploaded_file(request)
    path = await saved_upload(file, context.settings.max_upload_bytes)
    try:
        with context.database.transaction() as session:
            result = calls.submit_file(
                session, call_id, path, actor=user.username, scope_place=_own_place(user)
            )
            return _submission(result)
    finally:
        path.unlink(missing_ok=True)


@router.post("/{call_id}/answer")
def answer(
    call_id: RowId, body: AnswerIn, user: Submitter, database: DatabaseDep
) -> dict[str, Any]:
    """Answer a returned value (and correct it): it goes back to the reviewer."""
    with database.transaction() as session:
        row = calls.answer_return(
            session,
            call_id,
            body.place,
            body.indicator,
            actor=user.username,
            scope_place=_own_place(user),
            answer=body.answer,
            value=body.value,
            evidence=body.evidence,
        )
        return {"place": body.place, "indicator": body.indicator, "status": row.status}


@router.get("/{call_id}/queue")
def queue(call_id: RowId, _user: Reviewer, database: DatabaseDep) -> list[dict[str, Any]]:
    """Values waiting for review, flagged ones first."""
    with database.session() as session:
        return calls.review_queue(session, call_id)


@router.post("/{call_id}/review")
def review(
    call_id: RowId, body: DecisionIn, user: Reviewer, database: DatabaseDep
) -> dict[str, Any]:
    """Accept a value, or return it with a reason."""
    with database.transaction() as session:
        row = calls.review(
            session,
            call_id,
            body.place,
            body.indicator,
            body.decision,
            actor=user.username,
            reason=body.reason,
        )
        return {"place": body.place, "indicator": body.indicator, "status": row.status}


@router.get("/{call_id}/events")
def events(call_id: RowId, _user: Reviewer, database: DatabaseDep) -> list[dict[str, Any]]:
    """The audit trail: every open, submit, accept, return, answer and publish."""
    with database.session() as session:
        return calls.call_events(session, call_id)


@router.post("/{call_id}/publish", status_code=201)
def publish(
    call_id: RowId, body: PublishIn, user: Publisher, database: DatabaseDep
) -> dict[str, Any]:
    """Publish the accepted values as a new numbered release. A call with values missing or not
    accepted is refused (409) unless ``force`` is set with a ``reason``."""
    reason = (body.reason or "").strip()
    if body.force and not reason:
        raise HTTPException(
            422,
            [{"loc": ["body", "reason"], "msg": "`force` needs a reason", "type": "missing"}],
        )
    with database.transaction() as session:
        release = calls.publish(
            session, call_id, actor=user.username, incomplete_reason=reason if body.force else None
        )
        return {"release": release.number, "changelog": release.changelog}
