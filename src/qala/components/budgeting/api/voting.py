"""Voters, ballots and results of a process: ``/api/v1/budgeting/processes/{code}/…``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.budgeting import ballots, voters
from qala.components.budgeting.api.deps import PREFIX, TAGS, Citizen, Code, Points, ProjectChoice

router = APIRouter(route_class=CallerFirstRoute, prefix=f"{PREFIX}/processes", tags=TAGS)


class IinBody(BaseModel):
    iin: str = Field(
        ...,
        max_length=20,
        description="Your 12-digit IIN (bound to your account on first use; another account's "
        "is refused); only keyed hashes of it are kept.",
    )


class BallotBody(IinBody):
    choices: (
        Annotated[list[ProjectChoice], Field(max_length=1000)]
        | Annotated[dict[ProjectChoice, Points], Field(max_length=1000)]
    ) = Field(
        ...,
        description='Approval/ordinal: ["P01", "P04"] (ordinal: best first); cumulative: {"P01": 3}.',
    )
    receipt: str | None = Field(
        None, max_length=64, description="The receipt of your ballot, to revise it."
    )


class ReceiptBody(BaseModel):
    receipt: str = Field(..., max_length=64)


@router.post("/{code}/voters", summary="Register as a voter with your IIN")
def register(code: Code, body: IinBody, user: Citizen, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        status = voters.register_voter(
            session,
            code,
            body.iin,
            secret_key=context.settings.secret_key,
            now=context.clock(),
            account_id=user.id,
        )
    return asdict(status)


@router.post("/{code}/voters/status", summary="Am I registered; have I voted?")
def status(code: Code, body: IinBody, user: Citizen, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        found = voters.voter_status(
            session,
            code,
            body.iin,
            secret_key=context.settings.secret_key,
            now=context.clock(),
            account_id=user.id,
        )
    return asdict(found)


@router.post(
    "/{code}/ballots",
    status_code=201,
    summary="Cast a ballot, or revise it with its receipt, until voting closes",
)
def cast(code: Code, body: BallotBody, user: Citizen, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        receipt = ballots.cast_ballot(
            session,
            code,
            iin=body.iin,
            choices=body.choices,
            secret_key=context.settings.secret_key,
            now=context.clock(),
            receipt=body.receipt,
            account_id=user.id,
        )
    # Answered only after the commit: an acknowledged ballot is a stored ballot.
    return asdict(receipt)


@router.post("/{code}/ballots/check", summary="See the ballot kept under a receipt")
def check(code: Code, body: ReceiptBody, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return asdict(ballots.check_ballot(session, code, body.receipt))


@router.get("/{code}/results", summary="Results, explained project by project")
def results(code: Code, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return asdict(ballots.get_results(session, code))


@router.get(
    "/{code}/export.pb",
    response_class=PlainTextResponse,
    summary="The process as a pabulib .pb file (after voting closed)",
)
def export(
    code: Code,
    context: ContextDep,
    language: Annotated[Literal["kk", "ru", "en"], Query()] = "en",
) -> PlainTextResponse:
    with context.database.session() as session:
        text = ballots.export_pabulib(session, code, language=language)
    return PlainTextResponse(
        text, headers={"Content-Disposition": f'attachment; filename="{code}.pb"'}
    )
