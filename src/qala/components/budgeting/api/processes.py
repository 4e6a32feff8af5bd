"""Processes and their proposals: ``/api/v1/budgeting/processes``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.budgeting import process
from qala.components.budgeting.api.deps import (
    MAX_TENGE,
    PREFIX,
    TAGS,
    Citizen,
    Code,
    Official,
    PlaceFilter,
    Text3,
)
from qala.events import Event

router = APIRouter(route_class=CallerFirstRoute, prefix=f"{PREFIX}/processes", tags=TAGS)

ProposalCode = Annotated[str, Path(max_length=40)]


class ProcessBody(BaseModel):
    code: str = Field(..., max_length=80)
    place_code: str = Field(..., max_length=80, description="City or district, e.g. astana.")
    title: Text3
    description: Text3 | None = None
    budget: int = Field(..., gt=0, le=MAX_TENGE, description="Whole tenge.")
    proposals_open_at: datetime
    proposals_close_at: datetime
    review_close_at: datetime
    voting_open_at: datetime
    voting_close_at: datetime
    ballot_kind: Literal["approval", "cumulative", "ordinal"] = "approval"
    min_choices: int | None = Field(None, ge=1, le=1000)
    max_choices: int | None = Field(None, ge=1, le=1000)
    points_total: int | None = Field(None, ge=1, le=100_000)
    max_points_per_project: int | None = Field(None, ge=1, le=100_000)
    rule: Literal["greedy", "mes", "phragmen", "max-welfare"] = "mes"
    completion: str = Field("add1", max_length=40)
    min_voter_age: int | None = Field(16, ge=0, le=30)
    eligible_voters: int | None = Field(None, gt=0, le=100_000_000)
    capital_budget: int | None = Field(None, gt=0, le=MAX_TENGE)
    verifier: Literal["declared", "signature", "oidc"] = Field(
        "declared",
        description="How residents show who they are: `signature` (NCA-style electronic "
        "signature), `oidc` (a sign-in at the city's OpenID provider) or `declared` (an IIN "
        "typed in; demos and trainings, results unverified).",
    )


class AdvanceBody(BaseModel):
    to_phase: Literal["review", "voting", "results", "implementation", "closed"]
    note: str = Field("", max_length=4000)


class ProposalBody(BaseModel):
    title: Text3
    estimated_cost: int = Field(..., gt=0, le=MAX_TENGE, description="Whole tenge.")
    description: Text3 | None = None
    category: str = Field("", max_length=80)
    district: str | None = Field(None, max_length=80)


class ReviewBody(BaseModel):
    feasible: bool
    reason: str = Field(..., max_length=4000, description="Public reason for the decision.")
    cost: int | None = Field(
        None, gt=0, le=MAX_TENGE, description="Confirmed cost (default: the estimate)."
    )


def public_proposal(info: process.ProposalInfo) -> dict[str, Any]:
    """A proposal as the public sees it: without its author."""
    data = asdict(info)
    data.pop("author", None)
    return data


@router.get("", summary="Participatory budgeting processes")
def list_processes(
    context: ContextDep,
    place: PlaceFilter = None,
    phase: Annotated[str | None, Query(max_length=16)] = None,
) -> list[dict[str, Any]]:
    with context.database.session() as session:
        found = process.list_processes(session, place_code=place, phase=phase)
        return [asdict(p) for p in found]


@router.post("", status_code=201, summary="Open a process (officials)")
def create_process(body: ProcessBody, user: Official, context: ContextDep) -> dict[str, Any]:
    new = process.NewProcess(**body.model_dump())
    with context.database.transaction() as session:
        info = process.create_process(
            session,
            new,
            actor=user.username,
            now=context.clock(),
            secret_key=context.settings.secret_key,
        )
    return asdict(info)


@router.get("/{code}", summary="A process with its counts and phase history")
def get_process(code: Code, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return asdict(process.get_process(session, code))


@router.post("/{code}/advance", summary="Move a process to its next phase")
def advance(code: Code, body: AdvanceBody, user: Official, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = process.advance(
            session,
            code,
            to_phase=body.to_phase,
            actor=user.username,
            now=context.clock(),
            note=body.note,
        )
    # Published after the commit, so subscribers never see a phase that was rolled back.
    context.bus.publish(
        Event("budgeting.phase_changed", {"process": info.code, "phase": info.phase})
    )
    return asdict(info)


@router.get("/{code}/proposals", summary="Proposals with their public review")
def list_proposals(code: Code, context: ContextDep) -> list[dict[str, Any]]:
    with context.database.session() as session:
        return [public_proposal(p) for p in process.list_proposals(session, code)]


@router.post("/{code}/proposals", status_code=201, summary="Propose a project")
def propose(code: Code, body: ProposalBody, user: Citizen, context: ContextDep) -> dict[str, Any]:
    new = process.NewProposal(**body.model_dump())
    with context.database.transaction() as session:
        info = process.submit_proposal(
            session, code, new, author=user.username, now=context.clock(), account_id=user.id
        )
    return public_proposal(info)


@router.post(
    "/{code}/proposals/{proposal}/withdraw",
    summary="Withdraw your own proposal while proposals are open",
)
def withdraw(
    code: Code, proposal: ProposalCode, user: Citizen, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = process.withdraw_proposal(
            session, code, proposal, author=user.username, now=context.clock()
        )
    return public_proposal(info)


@router.post(
    "/{code}/proposals/{proposal}/review",
    summary="Feasibility decision with a public reason (officials)",
)
def review(
    code: Code, proposal: ProposalCode, body: ReviewBody, user: Official, context: ContextDep
) -> dict[str, Any]:
    with context.database.transaction() as session:
        info = process.review_proposal(
            session,
            code,
            proposal,
            feasible=body.feasible,
            reason=body.reason,
            cost=body.cost,
            actor=user.username,
            now=context.clock(),
        )
    return asdict(info)
