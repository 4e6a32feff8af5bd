"""Tracked city projects: ``/api/v1/budgeting/projects``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.budgeting import projects
from qala.components.budgeting.api.deps import (
    MAX_TENGE,
    PREFIX,
    TAGS,
    Citizen,
    Code,
    Official,
    PlaceFilter,
    RowId,
    Text3,
    today,
)

router = APIRouter(route_class=CallerFirstRoute, prefix=f"{PREFIX}/projects", tags=TAGS)


class ProjectBody(BaseModel):
    code: str = Field(..., max_length=80)
    place_code: str = Field(..., max_length=80)
    title: Text3
    description: Text3 | None = None
    budget: int = Field(..., ge=0, le=MAX_TENGE)
    planned_end: date
    planned_start: date | None = None
    contractor: str | None = Field(None, max_length=300)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class MilestoneBody(BaseModel):
    title: str = Field(..., max_length=300)
    due_on: date


class DoneBody(BaseModel):
    done_on: date


class PaymentBody(BaseModel):
    paid_on: date
    amount: int = Field(..., gt=0, le=MAX_TENGE)
    payee: str = Field(..., max_length=300)
    purpose: str = Field("", max_length=2000)
    reference: str = Field("", max_length=120)


class RiskBody(BaseModel):
    risk: str = Field(..., max_length=2000)
    likelihood: int = Field(..., ge=1, le=5)
    impact: int = Field(..., ge=1, le=5)
    owner: str = Field(..., max_length=200)
    mitigation: str = Field("", max_length=4000)


class RatingBody(BaseModel):
    stars: int = Field(..., ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)


@router.get("", summary="Tracked city projects")
def list_projects(
    context: ContextDep,
    place: PlaceFilter = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    origin: Annotated[Literal["participatory", "city"] | None, Query()] = None,
    process_code: Annotated[str | None, Query(alias="process", max_length=80)] = None,
) -> list[dict[str, Any]]:
    with context.database.session() as session:
        found = projects.list_projects(
            session,
            today=today(context),
            place_code=place,
            status=status,
            origin=origin,
            process_code=process_code,
        )
        return [asdict(p) for p in found]


@router.post("", status_code=201, summary="Track a city project (officials)")
def create_project(body: ProjectBody, user: Official, context: ContextDep) -> dict[str, Any]:
    new = projects.NewProject(**body.model_dump())
    with context.database.transaction() as session:
        info = projects.create_project(session, new, actor=user.username, now=context.clock())
    return asdict(info)


@router.get("/{code}", summary="A project: money, milestones, risks, ratings")
def get_project(code: Code, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return asdict(projects.get_project(session, code, today=today(context)))


@router.patch("/{code}", summary="Update fields (status, contractor…) (officials)")
def update_project(
    code: Code, body: dict[str, Any], user: Official, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = projects.update_project(
            session, code, body, actor=user.username, now=context.clock()
        )
    return asdict(info)


@router.post("/{code}/milestones", status_code=201, summary="Add a milestone")
def add_milestone(
    code: Code, body: MilestoneBody, user: Official, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        return projects.add_milestone(
            session,
            code,
            title=body.title,
            due_on=body.due_on,
            actor=user.username,
            now=context.clock(),
        )


@router.post("/{code}/milestones/{milestone_id}/done", summary="Milestone reached")
def milestone_done(
    code: Code, milestone_id: RowId, body: DoneBody, user: Official, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        return projects.complete_milestone(
            session,
            code,
            milestone_id,
            done_on=body.done_on,
            actor=user.username,
            now=context.clock(),
        )


@router.post("/{code}/payments", status_code=201, summary="Record a payment")
def pay(code: Code, body: PaymentBody, user: Official, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        return projects.record_payment(
            session, code, **body.model_dump(), actor=user.username, now=context.clock()
        )


@router.post("/{code}/risks", status_code=201, summary="Add to the risk register")
def add_risk(code: Code, body: RiskBody, user: Official, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        return projects.add_risk(
            session, code, **body.model_dump(), actor=user.username, now=context.clock()
        )


@router.patch("/{code}/risks/{risk_id}", summary="Update a risk")
def update_risk(
    code: Code, risk_id: RowId, body: dict[str, Any], user: Official, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        return projects.update_risk(
            session, code, risk_id, body, actor=user.username, now=context.clock()
        )


@router.post("/{code}/ratings", summary="Rate a delivered project (1–5)")
def rate(code: Code, body: RatingBody, user: Citizen, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = projects.rate_project(
            session,
            code,
            rater=user.username,
            stars=body.stars,
            comment=body.comment,
            secret_key=context.settings.secret_key,
            now=context.clock(),
        )
    return asdict(info)
