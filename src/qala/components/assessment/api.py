"""HTTP API of the assessment: ``/api/v1/assessment/…``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from qala.components.accounts.deps import (
    CallerFirstRoute,
    ContextDep,
    DatabaseDep,
    Year,
    require_roles,
)
from qala.components.accounts.models import User
from qala.components.assessment import readiness as readiness_mod, services
from qala.components.assessment.roadmap import load_actions
from qala.core.bounds import Code, Name, Text
from qala.core.errors import ValidationError

YearOf = Annotated[int, Query(ge=1900, le=2100, description="A calendar year.")]


class AnswerIn(BaseModel):
    score: float | None = Field(None, ge=1, le=5, description="1–5; null = don't know")
    evidence: Text = ""


class ReadinessIn(BaseModel):
    place: str = Field(..., min_length=1, max_length=80)
    year: int = Field(..., ge=1900, le=2100)
    respondent: Name = ""
    illustrative: bool = False
    answers: dict[str, AnswerIn]


class StakeholdersIn(BaseModel):
    csv: str = Field(
        ..., max_length=1_000_000, description="Rows group,respondent,area,points (with a header)."
    )
    year: int | None = Field(None, ge=1900, le=2100)


router = APIRouter(route_class=CallerFirstRoute, prefix="/api/v1/assessment", tags=["assessment"])
StaffUser = Annotated[User, Depends(require_roles("operator", "analyst"))]


def _answer_sheet(body: ReadinessIn) -> readiness_mod.AnswerSheet:
    """The posted answers as a sheet; a statement id outside the questionnaire is a 422."""
    sheet = readiness_mod.AnswerSheet(
        [
            readiness_mod.Answer(item, a.score, a.evidence, body.respondent)
            for item, a in body.answers.items()
        ],
        place=body.place,
        year=body.year,
        respondent=body.respondent,
        illustrative=body.illustrative,
        source="api",
    )
    known = {i.id for c in readiness_mod.questionnaire() for i in c.items}
    unknown = sorted(set(body.answers) - known)
    if unknown:
        raise ValidationError.single(
            "unknown statement id(s); see /api/v1/assessment/readiness/questionnaire",
            column="answers",
            value=unknown,
        )
    return sheet


@router.get("/readiness/questionnaire")
def questionnaire(
    lang: str = Query("en", description="kk, ru, en, or all", max_length=8),
) -> dict[str, Any]:
    """The readiness form: eight clusters, statements, the 1–5 scale, in one or all languages."""
    return readiness_mod.questionnaire_dict(lang)


@router.get("/readiness/template", response_class=PlainTextResponse)
def template(lang: Code = "en", place: Code = "CITY", year: YearOf = 2025) -> str:
    """A blank YAML answer file."""
    return readiness_mod.template_yaml(lang, place=place, year=year)


@router.post("/readiness", status_code=201)
def submit(body: ReadinessIn, user: StaffUser, context: ContextDep) -> dict[str, Any]:
    """Store answers (scored at once) and write them to the catalogue as chourabi2012 values."""
    sheet = _answer_sheet(body)
    response_id = services.submit_readiness(
        context.database, sheet, submitted_by=user.username, bus=context.bus
    )
    return {"id": response_id, **readiness_mod.score_readiness(sheet).as_dict()}


@router.get("/readiness/{place}")
def readiness(place: Code, year: YearOf, database: DatabaseDep) -> dict[str, Any]:
    with database.session() as session:
        return services.readiness_for(session, place, year).as_dict()


@router.get("/places/{place}")
def assess(
    place: Code,
    database: DatabaseDep,
    year: Year = None,
    budget: float = Query(services.DEFAULT_BUDGET, ge=0, description="million KZT"),
    lang: Code = "en",
) -> dict[str, Any]:
    """Balance, readiness, maturity, generation, gaps, roadmap and mentors of one place."""
    return services.assess_place(database, place, year=year, budget=budget, language=lang).as_dict()


@router.get("/places/{place}/roadmap.csv", response_class=PlainTextResponse)
def roadmap_csv(
    place: Code,
    database: DatabaseDep,
    year: Year = None,
    budget: float = services.DEFAULT_BUDGET,
) -> str:
    return services.assess_place(database, place, year=year, budget=budget).roadmap.to_csv()


@router.get("/balance")
def balance(database: DatabaseDep, year: Year = None) -> dict[str, Any]:
    """Every city's overall balance (category scores, imbalance, flag)."""
    y, frame = services.balance_overview(database, year=year)
    return {"year": y, "places": frame.reset_index().to_dict("records")}


@router.get("/actions")
def actions() -> list[dict[str, Any]]:
    """The action catalogue (typical smart-city projects)."""
    return [asdict(a) for a in load_actions().actions.values()]


@router.get("/cases")
def cases(city: Code | None = None, area: Code | None = None) -> list[dict[str, Any]]:
    """The case library: which city did what, when, at what cost, with what effect."""
    return load_actions().cases(city=city, area=area)


@router.get("/stakeholders")
def stakeholders_sample(database: DatabaseDep, year: Year = None) -> dict[str, Any]:
    """The rating under the bundled (illustrative) weights of three groups."""
    return services.stakeholder_view(database, year=year).as_dict()


@router.post("/stakeholders")
def stakeholders(body: StakeholdersIn, database: DatabaseDep) -> dict[str, Any]:
    """The rating under the groups' weights given as CSV."""
    return services.stakeholder_view(database, body.csv, year=body.year, file="body").as_dict()
