"""Surveys and public hearings: ``/api/v1/budgeting/consultations``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, CurrentUser, OptionalUser
from qala.components.accounts.services import public_name
from qala.components.budgeting import consultations
from qala.components.budgeting.api.deps import (
    PREFIX,
    TAGS,
    Citizen,
    Code,
    Official,
    PlaceFilter,
    RowId,
    Text3,
)

router = APIRouter(route_class=CallerFirstRoute, prefix=f"{PREFIX}/consultations", tags=TAGS)


class QuestionBody(BaseModel):
    key: str = Field(..., max_length=40)
    kind: Literal["single", "multiple", "scale", "text"]
    text: Text3
    options: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    scale_min: int | None = Field(None, ge=-1000, le=1000)
    scale_max: int | None = Field(None, ge=-1000, le=1000)
    required: bool = True


class ConsultationBody(BaseModel):
    code: str = Field(..., max_length=80)
    place_code: str = Field(..., max_length=80)
    kind: Literal["survey", "hearing"] = "survey"
    title: Text3
    description: Text3 | None = None
    opens_at: datetime
    closes_at: datetime
    hearing_at: datetime | None = None
    venue: str | None = Field(None, max_length=500)
    questions: list[QuestionBody] = Field(default_factory=list, max_length=100)

    def to_new(self) -> consultations.NewConsultation:
        """The service's form of this body, its questions included."""
        data = self.model_dump()
        data["questions"] = [consultations.NewQuestion(**q) for q in data["questions"]]
        return consultations.NewConsultation(**data)


class AnswersBody(BaseModel):
    answers: dict[str, Any]
    language: Literal["kk", "ru", "en"] = "ru"


class CommentBody(BaseModel):
    text: str = Field(..., max_length=4000)
    language: Literal["kk", "ru", "en"] = "ru"


class HideBody(BaseModel):
    reason: str = Field(..., max_length=1000)


class OutcomeBody(BaseModel):
    summary: Text3
    participants: int | None = Field(None, ge=0, le=100_000_000)


@router.get("", summary="Surveys and public hearings")
def list_consultations(context: ContextDep, place: PlaceFilter = None) -> list[dict[str, Any]]:
    with context.database.session() as session:
        found = consultations.list_consultations(session, now=context.clock(), place_code=place)
        return [asdict(c) for c in found]


@router.post("", status_code=201, summary="Open a survey or hearing (officials)")
def create_consultation(
    body: ConsultationBody, user: Official, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = consultations.create_consultation(
            session, body.to_new(), actor=user.username, now=context.clock()
        )
    return asdict(info)


@router.get("/{code}", summary="A consultation with questions and comments")
def get_consultation(code: Code, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return asdict(consultations.get_consultation(session, code, now=context.clock()))


@router.post("/{code}/responses", summary="Answer (again, to change answers)")
def respond(code: Code, body: AnswersBody, user: Citizen, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = consultations.respond(
            session,
            code,
            respondent=user.username,
            answers=body.answers,
            language=body.language,
            secret_key=context.settings.secret_key,
            now=context.clock(),
            account_id=user.id,
        )
    return {"code": info.code, "responses": info.responses, "accepted": True}


@router.post("/{code}/comments", status_code=201, summary="Comment")
def comment(
    code: Code, body: CommentBody, user: CurrentUser, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = consultations.add_comment(
            session,
            code,
            author=public_name(user),
            text=body.text,
            language=body.language,
            now=context.clock(),
        )
    return asdict(info)


@router.post("/{code}/comments/{comment_id}/hide", summary="Hide a comment (officials)")
def hide(
    code: Code, comment_id: RowId, body: HideBody, user: Official, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = consultations.hide_comment(
            session, code, comment_id, reason=body.reason, actor=user.username
        )
    return asdict(info)


@router.post("/{code}/outcome", summary="Publish the summary (officials)")
def outcome(code: Code, body: OutcomeBody, user: Official, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = consultations.record_outcome(
            session,
            code,
            summary=body.summary,
            participants=body.participants,
            now=context.clock(),
        )
    return asdict(info)


@router.get("/{code}/results", summary="Results per question")
def consultation_results(code: Code, user: OptionalUser, context: ContextDep) -> dict[str, Any]:
    staff = user is not None and user.role != "citizen"
    with context.database.session() as session:
        found = consultations.consultation_results(
            session, code, now=context.clock(), with_texts=staff
        )
    return asdict(found)
