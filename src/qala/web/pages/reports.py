"""Report downloads: the city report and the national rating report as HTML and PDF.

A report is rendered once per data version (``qala.web.cache``): a repeat download answers from
the cache until values are imported or a rating is built."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from qala.components.accounts.deps import ContextDep
from qala.core.errors import NotFoundError
from qala.runtime import Context
from qala.web.cache import cached_report
from qala.web.deps import SEES_USER, TranslatorDep

if TYPE_CHECKING:
    from qala.web.reports import Report

router = APIRouter(include_in_schema=False, dependencies=[SEES_USER])
FORMATS = ("html", "pdf")


@router.get("/reports/city/{code}.{fmt}")
async def city_report(code: str, fmt: str, t: TranslatorDep, context: ContextDep) -> Response:
    from qala.web.reports import build_city_report  # matplotlib: loaded on first use

    return answer(
        context, ("city", code, fmt), t.language, lambda: build_city_report(context, code, t)
    )


@router.get("/reports/rating.{fmt}")
async def rating_report(
    fmt: str, t: TranslatorDep, context: ContextDep, year: int | None = None
) -> Response:
    from qala.web.reports import build_rating_report

    return answer(
        context,
        ("rating", year, fmt),
        t.language,
        lambda: build_rating_report(context, t, year=year),
    )


def answer(
    context: Context, what: tuple[Hashable, ...], language: str, build: Callable[[], Report]
) -> Response:
    """The report ``what`` = (kind, argument, format), from the cache when the data did not
    change; 404 for an unknown place, year or format."""
    fmt = what[-1]
    if fmt not in FORMATS:
        raise HTTPException(404, "reports come as .html or .pdf")
    try:
        body = cached_report(context, what, language, lambda: render(build(), str(fmt)))
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    if fmt == "html":
        return HTMLResponse(body)
    stem = "qala-city-" + str(what[1]) if what[0] == "city" else "qala-rating"
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{stem}.pdf"'},
    )


def render(report: Report, fmt: str) -> bytes:
    return report.html().encode("utf-8") if fmt == "html" else report.pdf()
