"""The HTTP API at ``/api/v1/budgeting/``.

Anyone reads processes, proposals, results, consultations, projects and the ledger (and verifies
it); signed-in citizens propose, vote, answer, comment and rate; officials (operator,
administrator) run processes, review proposals and keep projects up to date; analysts (and
officials) read the indicators; administrators write them to the catalogue.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from qala.components.accounts.deps import CurrentUser, OptionalUser, require_roles
from qala.components.accounts.models import User
from qala.events import Event
from qala.runtime import Context

PREFIX = "/api/v1/budgeting"

Citizen = Annotated[User, Depends(require_roles("citizen"))]
Official = Annotated[User, Depends(require_roles("operator", "administrator"))]
Analyst = Annotated[User, Depends(require_roles("operator", "analyst", "administrator"))]
Administrator = Annotated[User, Depends(require_roles("administrator"))]
Code = Annotated[str, Path(max_length=80, description="A process, project or consultation code.")]
Text3 = dict[str, str] | str
MAX_ID = 2**31 - 1


class ProcessBody(BaseModel):
    code: str = Field(..., max_length=80)
    place_code: str = Field(..., max_length=80, description="City or district, e.g. astana.")
    title: Text3
    description: Text3 | None = None
    budget: int = Field(..., gt=0, description="Whole tenge.")
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
    completion: str = "add1"
    min_voter_age: int | None = Field(16, ge=0, le=30)
    eligible_voters: int | None = Field(None, gt=0)
    capital_budget: int | None = Field(None, gt=0)


class AdvanceBody(BaseModel):
    to_phase: Literal["review", "voting", "results", "implementation", "closed"]
    note: str = Field("", max_length=4000)


class ProposalBody(BaseModel):
    title: Text3
    estimated_cost: int = Field(..., gt=0, description="Whole tenge.")
    description: Text3 | None = None
    category: str = Field("", max_length=80)
    district: str | None = Field(None, max_length=80)


class ReviewBody(BaseModel):
    feasible: bool
    reason: str = Field(..., max_length=4000, description="Public reason for the decision.")
    cost: int | None = Field(None, gt=0, description="Confirmed cost (default: the estimate).")


class IinBody(BaseModel):
    iin: str = Field(..., max_length=20, description="12-digit IIN; only its keyed hash is kept.")


class BallotBody(IinBody):
    choices: list[str] | dict[str, int] = Field(
        ...,
        description='Approval/ordinal: ["P01", "P04"] (ordinal: best first); cumulative: {"P01": 3}.',
    )
    receipt: str | None = Field(
        None, max_length=64, description="The receipt of your ballot, to revise it."
    )


class ReceiptBody(BaseModel):
    receipt: str = Field(..., max_length=64)


class QuestionBody(BaseModel):
    key: str = Field(..., max_length=40)
    kind: Literal["single", "multiple", "scale", "text"]
    text: Text3
    options: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    scale_min: int | None = None
    scale_max: int | None = None
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
    participants: int | None = Field(None, ge=0)


class ProjectBody(BaseModel):
    code: str = Field(..., max_length=80)
    place_code: str = Field(..., max_length=80)
    title: Text3
    description: Text3 | None = None
    budget: int = Field(..., ge=0)
    planned_end: date
    planned_start: date | None = None
    contractor: str | None = Field(None, max_length=300)


class MilestoneBody(BaseModel):
    title: str = Field(..., max_length=300)
    due_on: date


class DoneBody(BaseModel):
    done_on: date


class PaymentBody(BaseModel):
    paid_on: date
    amount: int = Field(..., gt=0)
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


def _public_proposal(info: Any) -> dict[str, Any]:
    data = asdict(info)
    data.pop("author", None)
    return data


def build_router(context: Context) -> APIRouter:
    from qala.components.budgeting import (
        ballots,
        consultations,
        ledger,
        process,
        projects,
        voters,
    )

    router = APIRouter(prefix=PREFIX, tags=["budgeting"])
    key = context.settings.secret_key

    def now() -> datetime:
        return context.clock()

    def today() -> date:
        return process.as_utc(now()).date()  # type: ignore[union-attr]

    # --- processes ---------------------------------------------------------------------------

    @router.get("/processes", summary="Participatory budgeting processes")
    def list_processes(
        place: Annotated[str | None, Query(max_length=80)] = None,
        phase: Annotated[str | None, Query(max_length=16)] = None,
    ) -> list[dict[str, Any]]:
        with context.database.session() as session:
            return [
                asdict(p) for p in process.list_processes(session, place_code=place, phase=phase)
            ]

    @router.post("/processes", status_code=201, summary="Open a process (officials)")
    def create_process(body: ProcessBody, user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = process.create_process(
                session,
                process.NewProcess(**body.model_dump()),
                actor=user.username,
                now=now(),
                secret_key=key,
            )
        return asdict(info)

    @router.get("/processes/{code}", summary="A process with its counts and phase history")
    def get_process(code: Code) -> dict[str, Any]:
        with context.database.session() as session:
            return asdict(process.get_process(session, code))

    @router.post("/processes/{code}/advance", summary="Move a process to its next phase")
    def advance(code: Code, body: AdvanceBody, user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = process.advance(
                session,
                code,
                to_phase=body.to_phase,
                actor=user.username,
                now=now(),
                note=body.note,
            )
        # Published after the commit, so subscribers never see a phase that was rolled back.
        context.bus.publish(
            Event("budgeting.phase_changed", {"process": info.code, "phase": info.phase})
        )
        return asdict(info)

    @router.get("/processes/{code}/proposals", summary="Proposals with their public review")
    def list_proposals(code: Code) -> list[dict[str, Any]]:
        with context.database.session() as session:
            return [_public_proposal(p) for p in process.list_proposals(session, code)]

    @router.post("/processes/{code}/proposals", status_code=201, summary="Propose a project")
    def propose(code: Code, body: ProposalBody, user: Citizen) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = process.submit_proposal(
                session,
                code,
                process.NewProposal(**body.model_dump()),
                author=user.username,
                now=now(),
            )
        return _public_proposal(info)

    @router.post(
        "/processes/{code}/proposals/{proposal}/withdraw",
        summary="Withdraw your own proposal while proposals are open",
    )
    def withdraw(
        code: Code, proposal: Annotated[str, Path(max_length=40)], user: Citizen
    ) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = process.withdraw_proposal(
                session, code, proposal, author=user.username, now=now()
            )
        return _public_proposal(info)

    @router.post(
        "/processes/{code}/proposals/{proposal}/review",
        summary="Feasibility decision with a public reason (officials)",
    )
    def review(
        code: Code,
        proposal: Annotated[str, Path(max_length=40)],
        body: ReviewBody,
        user: Official,
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
                now=now(),
            )
        return asdict(info)

    @router.post("/processes/{code}/voters", summary="Register as a voter with your IIN")
    def register(code: Code, body: IinBody, user: Citizen) -> dict[str, Any]:
        with context.database.transaction() as session:
            status = voters.register_voter(session, code, body.iin, secret_key=key, now=now())
        return asdict(status)

    @router.post("/processes/{code}/voters/status", summary="Am I registered; have I voted?")
    def status(code: Code, body: IinBody, user: Citizen) -> dict[str, Any]:
        with context.database.session() as session:
            return asdict(voters.voter_status(session, code, body.iin, secret_key=key, now=now()))

    @router.post(
        "/processes/{code}/ballots",
        status_code=201,
        summary="Cast a ballot, or revise it with its receipt, until voting closes",
    )
    def cast(code: Code, body: BallotBody, user: Citizen) -> dict[str, Any]:
        with context.database.transaction() as session:
            receipt = ballots.cast_ballot(
                session,
                code,
                iin=body.iin,
                choices=body.choices,
                secret_key=key,
                now=now(),
                receipt=body.receipt,
            )
        # Answered only after the commit: an acknowledged ballot is a stored ballot.
        return asdict(receipt)

    @router.post("/processes/{code}/ballots/check", summary="See the ballot kept under a receipt")
    def check(code: Code, body: ReceiptBody) -> dict[str, Any]:
        with context.database.session() as session:
            return asdict(ballots.check_ballot(session, code, body.receipt))

    @router.get("/processes/{code}/results", summary="Results, explained project by project")
    def results(code: Code) -> dict[str, Any]:
        with context.database.session() as session:
            return asdict(ballots.get_results(session, code))

    @router.get(
        "/processes/{code}/export.pb",
        response_class=PlainTextResponse,
        summary="The process as a pabulib .pb file (after voting closed)",
    )
    def export(
        code: Code, language: Annotated[Literal["kk", "ru", "en"], Query()] = "en"
    ) -> PlainTextResponse:
        with context.database.session() as session:
            text = ballots.export_pabulib(session, code, language=language)
        return PlainTextResponse(
            text,
            headers={"Content-Disposition": f'attachment; filename="{code}.pb"'},
        )

    # --- consultations -----------------------------------------------------------------------

    @router.get("/consultations", summary="Surveys and public hearings")
    def list_consultations(
        place: Annotated[str | None, Query(max_length=80)] = None,
    ) -> list[dict[str, Any]]:
        with context.database.session() as session:
            return [
                asdict(c)
                for c in consultations.list_consultations(session, now=now(), place_code=place)
            ]

    @router.post("/consultations", status_code=201, summary="Open a survey or hearing (officials)")
    def create_consultation(body: ConsultationBody, user: Official) -> dict[str, Any]:
        data = body.model_dump()
        data["questions"] = [consultations.NewQuestion(**q) for q in data["questions"]]
        with context.database.transaction() as session:
            info = consultations.create_consultation(
                session, consultations.NewConsultation(**data), actor=user.username, now=now()
            )
        return asdict(info)

    @router.get("/consultations/{code}", summary="A consultation with questions and comments")
    def get_consultation(code: Code) -> dict[str, Any]:
        with context.database.session() as session:
            return asdict(consultations.get_consultation(session, code, now=now()))

    @router.post("/consultations/{code}/responses", summary="Answer (again, to change answers)")
    def respond(code: Code, body: AnswersBody, user: Citizen) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = consultations.respond(
                session,
                code,
                respondent=user.username,
                answers=body.answers,
                language=body.language,
                secret_key=key,
                now=now(),
            )
        return {"code": info.code, "responses": info.responses, "accepted": True}

    @router.post("/consultations/{code}/comments", status_code=201, summary="Comment")
    def comment(code: Code, body: CommentBody, user: CurrentUser) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = consultations.add_comment(
                session,
                code,
                author=user.username,
                text=body.text,
                language=body.language,
                now=now(),
            )
        return asdict(info)

    @router.post(
        "/consultations/{code}/comments/{comment_id}/hide", summary="Hide a comment (officials)"
    )
    def hide(
        code: Code,
        comment_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        body: HideBody,
        user: Official,
    ) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = consultations.hide_comment(
                session, code, comment_id, reason=body.reason, actor=user.username
            )
        return asdict(info)

    @router.post("/consultations/{code}/outcome", summary="Publish the summary (officials)")
    def outcome(code: Code, body: OutcomeBody, user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = consultations.record_outcome(
                session, code, summary=body.summary, participants=body.participants, now=now()
            )
        return asdict(info)

    @router.get("/consultations/{code}/results", summary="Results per question")
    def consultation_results(code: Code, user: OptionalUser) -> dict[str, Any]:
        with context.database.session() as session:
            found = consultations.consultation_results(session, code, now=now())
        data = asdict(found)
        if user is None or user.role == "citizen":
            # Free-text answers may hold personal details: the public sees how many there are.
            for question in data["questions"]:
                question["texts"] = []
        return data

    # --- projects ----------------------------------------------------------------------------

    @router.get("/projects", summary="Tracked city projects")
    def list_projects(
        place: Annotated[str | None, Query(max_length=80)] = None,
        status: Annotated[str | None, Query(max_length=16)] = None,
        origin: Annotated[Literal["participatory", "city"] | None, Query()] = None,
        process_code: Annotated[str | None, Query(alias="process", max_length=80)] = None,
    ) -> list[dict[str, Any]]:
        with context.database.session() as session:
            return [
                asdict(p)
                for p in projects.list_projects(
                    session,
                    today=today(),
                    place_code=place,
                    status=status,
                    origin=origin,
                    process_code=process_code,
                )
            ]

    @router.post("/projects", status_code=201, summary="Track a city project (officials)")
    def create_project(body: ProjectBody, user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = projects.create_project(
                session, projects.NewProject(**body.model_dump()), actor=user.username, now=now()
            )
        return asdict(info)

    @router.get("/projects/{code}", summary="A project: money, milestones, risks, ratings")
    def get_project(code: Code) -> dict[str, Any]:
        with context.database.session() as session:
            return asdict(projects.get_project(session, code, today=today()))

    @router.patch("/projects/{code}", summary="Update fields (status, contractor…) (officials)")
    def update_project(code: Code, body: dict[str, Any], user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = projects.update_project(session, code, body, actor=user.username, now=now())
        return asdict(info)

    @router.post("/projects/{code}/milestones", status_code=201, summary="Add a milestone")
    def add_milestone(code: Code, body: MilestoneBody, user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            return projects.add_milestone(
                session, code, title=body.title, due_on=body.due_on, actor=user.username, now=now()
            )

    @router.post("/projects/{code}/milestones/{milestone_id}/done", summary="Milestone reached")
    def milestone_done(
        code: Code,
        milestone_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        body: DoneBody,
        user: Official,
    ) -> dict[str, Any]:
        with context.database.transaction() as session:
            return projects.complete_milestone(
                session, code, milestone_id, done_on=body.done_on, actor=user.username, now=now()
            )

    @router.post("/projects/{code}/payments", status_code=201, summary="Record a payment")
    def pay(code: Code, body: PaymentBody, user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            return projects.record_payment(
                session, code, **body.model_dump(), actor=user.username, now=now()
            )

    @router.post("/projects/{code}/risks", status_code=201, summary="Add to the risk register")
    def add_risk(code: Code, body: RiskBody, user: Official) -> dict[str, Any]:
        with context.database.transaction() as session:
            return projects.add_risk(
                session, code, **body.model_dump(), actor=user.username, now=now()
            )

    @router.patch("/projects/{code}/risks/{risk_id}", summary="Update a risk")
    def update_risk(
        code: Code,
        risk_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        body: dict[str, Any],
        user: Official,
    ) -> dict[str, Any]:
        with context.database.transaction() as session:
            return projects.update_risk(
                session, code, risk_id, body, actor=user.username, now=now()
            )

    @router.post("/projects/{code}/ratings", summary="Rate a delivered project (1–5)")
    def rate(code: Code, body: RatingBody, user: Citizen) -> dict[str, Any]:
        with context.database.transaction() as session:
            info = projects.rate_project(
                session,
                code,
                rater=user.username,
                stars=body.stars,
                comment=body.comment,
                secret_key=key,
                now=now(),
            )
        return asdict(info)

    # --- ledger and indicators ---------------------------------------------------------------

    @router.get("/ledger", summary="Ledger entries, in order, for anyone to verify")
    def entries(
        after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        subject: Annotated[str | None, Query(max_length=80)] = None,
    ) -> list[dict[str, Any]]:
        with context.database.session() as session:
            return [
                e.as_dict()
                for e in ledger.list_entries(session, after=after, limit=limit, subject=subject)
            ]

    @router.get("/ledger/verify", summary="Verify the whole ledger (chain, head and tables)")
    def verify(
        expected_head: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        with context.database.session() as session:
            return ledger.verify_ledger(session, expected_head=expected_head).as_dict()

    @router.get("/indicators", summary="Participation and delivery indicators")
    def indicators(user: Analyst) -> list[dict[str, Any]]:
        from qala.components.budgeting.indicators import compute_indicators

        with context.database.session() as session:
            frame = compute_indicators(session).rows
        return [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]

    @router.post("/indicators", summary="Write the indicators to the catalogue (administrators)")
    def write(user: Administrator) -> dict[str, Any]:
        from qala.components.budgeting.indicators import compute_indicators, write_indicators

        with context.database.session() as session:
            result = compute_indicators(session)
        return {
            "rows_written": write_indicators(context.database, result, imported_by=user.username)
        }

    return router
