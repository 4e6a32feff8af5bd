"""The readiness questionnaire in the web app: Chourabi et al.'s eight clusters, answered 1–5.

A thin page over ``qala.components.assessment``: the form comes from the questionnaire it ships,
answers are stored with ``submit_readiness`` (which also writes the cluster values back to the
catalogue) and the result shown is the component's own scoring.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qala.components.catalog.services import get_place, list_places
from qala.core.errors import NotFoundError, Problem, ValidationError
from qala.web.i18n import Translator
from qala.web.ui import UI

ASSESSORS = ("analyst", "operator")


def build_router(ui: UI) -> APIRouter:
    from qala.components.assessment import readiness as questionnaire
    from qala.components.assessment.services import readiness_for, submit_readiness

    router = APIRouter(include_in_schema=False)
    database = ui.context.database

    def page(
        request: Request, *, place: str, year: int, status_code: int = 200, **values: Any
    ) -> Response:
        language = ui.language(request)
        result = None
        with database.session() as session:
            try:
                result = readiness_for(session, get_place(session, place).code, year)
            except NotFoundError:
                result = None
            places = [
                {"code": p.code, "name": p.name(language)}
                for p in list_places(session, level="city")
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

    @router.get("/readiness")
    async def readiness_form(
        request: Request, place: str = "astana", year: int | None = None
    ) -> Response:
        await ui.require(request, ASSESSORS)
        return page(request, place=place, year=year or date.today().year)

    @router.post("/readiness")
    async def readiness_submit(request: Request) -> Response:
        user = await ui.require(request, ASSESSORS)
        form = await request.form()
        place = str(form.get("place") or "")
        raw_year = str(form.get("year") or "")
        known = [
            item["id"]
            for cluster in questionnaire.questionnaire_dict("en")["clusters"]
            for item in cluster["items"]
        ]
        answers: dict[str, str] = {}
        sheet_answers = []
        problems: list[Problem] = []
        for item_id in known:
            raw = str(form.get(f"score:{item_id}") or "")
            answers[item_id] = raw
            evidence = str(form.get(f"evidence:{item_id}") or "").strip()[:2000]
            if raw in ("", "dont_know"):
                score = None
            elif raw in {"1", "2", "3", "4", "5"}:
                score = float(raw)
            else:
                problems.append(Problem("expected 1–5 or don't know", column=item_id, value=raw))
                continue
            sheet_answers.append(
                questionnaire.Answer(
                    item=item_id, score=score, evidence=evidence, respondent=user.username
                )
            )
        if not raw_year.isdigit():
            problems.append(Problem("year must be a whole number", column="year", value=raw_year))
        if not any(a.score is not None for a in sheet_answers):
            problems.append(Problem("answer at least one statement", column="answers"))
        year = int(raw_year) if raw_year.isdigit() else date.today().year
        if problems:
            return page(
                request, place=place, year=year, status_code=422, problems=problems, answers=answers
            )
        sheet = questionnaire.AnswerSheet(
            answers=sheet_answers,
            place=place,
            year=year,
            respondent=user.username,
            source="web form",
        )
        try:
            submit_readiness(
                database,
                sheet,
                place=place,
                year=year,
                submitted_by=user.username,
                bus=ui.context.bus,
            )
        except (ValidationError, NotFoundError) as exc:
            found = (
                exc.problems
                if isinstance(exc, ValidationError)
                else [Problem(str(exc), column="place")]
            )
            return page(
                request, place=place, year=year, status_code=422, problems=found, answers=answers
            )
        saved = Translator(ui.language(request))("readiness.saved")
        query = urlencode({"place": place, "year": year, "flash": saved})
        return ui.redirect(request, f"/readiness?{query}")

    return router
