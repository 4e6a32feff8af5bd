"""The readiness questionnaire in the web app: Chourabi et al.'s eight clusters, answered 1–5.

A thin page over ``qala.components.assessment``: the form comes from the questionnaire it ships,
answers are stored with ``submit_readiness`` (which also writes the cluster values back to the
catalogue) and the result shown is the component's own scoring. The shell mounts it only when
that component is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, DatabaseDep
from qala.components.assessment import readiness as questionnaire
from qala.components.assessment.services import readiness_for, submit_readiness
from qala.components.catalog.services import get_place, list_places
from qala.core.errors import NotFoundError, Problem, ValidationError
from qala.store.database import Database
from qala.web.deps import AssessorPage, TranslatorDep, UIDep
from qala.web.ui import UI

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)


@router.get("/readiness")
async def readiness_form(
    request: Request,
    _user: AssessorPage,
    ui: UIDep,
    database: DatabaseDep,
    place: str = "astana",
    year: int | None = None,
) -> Response:
    return page(request, ui, database, place=place, year=year or date.today().year)


@router.post("/readiness")
async def readiness_submit(
    request: Request, user: AssessorPage, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    form = await request.form()
    place = str(form.get("place") or "")
    sent = read_sheet(form, respondent=user.username)
    problems = sent.problems
    if not problems:
        try:
            submit_readiness(
                context.database,
                sent.sheet(place),
                place=place,
                year=sent.year,
                submitted_by=user.username,
                bus=context.bus,
            )
        except ValidationError as exc:
            problems = exc.problems
        except NotFoundError as exc:
            problems = [Problem(str(exc), column="place")]
    if problems:
        return page(
            request,
            ui,
            context.database,
            place=place,
            year=sent.year,
            status_code=422,
            problems=problems,
            answers=sent.raw,
        )
    query = urlencode({"place": place, "year": sent.year})
    return ui.redirect(request, ui.flash_url(f"/readiness?{query}", t("readiness.saved")))


@dataclass
class SentSheet:
    """What the form sent: the raw choices (to show again), the answers, and what was wrong."""

    respondent: str
    year: int
    raw: dict[str, str] = field(default_factory=dict)
    answers: list[Any] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def sheet(self, place: str) -> Any:
        return questionnaire.AnswerSheet(
            answers=self.answers,
            place=place,
            year=self.year,
            respondent=self.respondent,
            source="web form",
        )


def read_sheet(form: FormData, *, respondent: str) -> SentSheet:
    """Each statement's ``score:<id>`` (1–5, empty or ``dont_know``) and ``evidence:<id>``."""
    raw_year = str(form.get("year") or "")
    year = int(raw_year) if raw_year.isdigit() else date.today().year
    sent = SentSheet(respondent, year)
    for cluster in questionnaire.questionnaire_dict("en")["clusters"]:
        for item in cluster["items"]:
            item_id = item["id"]
            raw = str(form.get(f"score:{item_id}") or "")
            sent.raw[item_id] = raw
            evidence = str(form.get(f"evidence:{item_id}") or "").strip()[:2000]
            if raw in ("", "dont_know"):
                score = None
            elif raw in {"1", "2", "3", "4", "5"}:
                score = float(raw)
            else:
                problem = Problem("expected 1–5 or don't know", column=item_id, value=raw)
                sent.problems.append(problem)
                continue
            sent.answers.append(
                questionnaire.Answer(
                    item=item_id, score=score, evidence=evidence, respondent=respondent
                )
            )
    if not raw_year.isdigit():
        sent.problems.append(Problem("year must be a whole number", column="year", value=raw_year))
    if not any(a.score is not None for a in sent.answers):
        sent.problems.append(Problem("answer at least one statement", column="answers"))
    return sent


def page(
    request: Request,
    ui: UI,
    database: Database,
    *,
    place: str,
    year: int,
    status_code: int = 200,
    **values: Any,
) -> Response:
    """The questionnaire, with the stored result for the place and year when there is one."""
    language = ui.language(request)
    result = None
    with database.session() as session:
        try:
            result = readiness_for(session, get_place(session, place).code, year)
        except NotFoundError:
            result = None
        places = [
            {"code": p.code, "name": p.name(language)} for p in list_places(session, level="city")
        ]
    values.setdefault("problems", [])
    values.setdefault("answers", {})
    return ui.render(
        request,
        "readiness.html",
        status_code=status_code,
        form=questionnaire.questionnaire_dict(language),
        places=places,
        place=place,
        year=year,
        result=result,
        **values,
    )
