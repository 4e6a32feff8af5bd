"""Report downloads: the city report and the national rating report as HTML and PDF."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from qala.core.errors import NotFoundError
from qala.web.i18n import Translator
from qala.web.ui import UI


def build_router(ui: UI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    context = ui.context

    @router.get("/reports/city/{code}.{fmt}")
    async def city_report(request: Request, code: str, fmt: str) -> Response:
        await ui.user(request)
        from qala.web.reports import build_city_report

        t = Translator(ui.language(request))
        try:
            report = build_city_report(context, code, t)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        return _answer(report, fmt, f"qala-city-{code}")

    @router.get("/reports/rating.{fmt}")
    async def rating_report(request: Request, fmt: str, year: int | None = None) -> Response:
        await ui.user(request)
        from qala.web.reports import build_rating_report

        t = Translator(ui.language(request))
        try:
            report = build_rating_report(context, t, year=year)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        return _answer(report, fmt, "qala-rating")

    return router


def _answer(report: object, fmt: str, stem: str) -> Response:
    from qala.web.reports import Report

    assert isinstance(report, Report)
    if fmt == "html":
        return HTMLResponse(report.html())
    if fmt == "pdf":
        return Response(
            report.pdf(),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{stem}.pdf"'},
        )
    raise HTTPException(404, "reports come as .html or .pdf")
