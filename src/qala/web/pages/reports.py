"""Report downloads: the city report and the national rating report as HTML and PDF.

A report is rendered once per data version (``qala.web.cache``): a repeat download answers from
the cache until values are imported or a rating is built. Building one costs up to a second and a
half of a core, so each address may have only ``Settings.report_builds_per_minute`` built; past
that it gets 429 with ``Retry-After`` (reports already built still answer from the cache)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import partial
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, client_address
from qala.core.errors import NotFoundError
from qala.core.ratelimit import RateLimiter
from qala.runtime import Context
from qala.web.cache import cached_report
from qala.web.deps import SEES_USER, TranslatorDep
from qala.web.i18n import Translator

if TYPE_CHECKING:
    from qala.web.reports import Report

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False, dependencies=[SEES_USER])
FORMATS = ("html", "pdf")


@router.get("/reports/city/{code}.{fmt}")
async def city_report(
    request: Request, code: str, fmt: str, t: TranslatorDep, context: ContextDep
) -> Response:
    from qala.web.reports import build_city_report  # matplotlib: loaded on first use

    build = partial(build_city_report, context, code, t)
    return answer(request, context, ("city", code, fmt), t, build)


@router.get("/reports/rating.{fmt}")
async def rating_report(
    request: Request, fmt: str, t: TranslatorDep, context: ContextDep, year: int | None = None
) -> Response:
    from qala.web.reports import build_rating_report

    build = partial(build_rating_report, context, t, year=year)
    return answer(request, context, ("rating", year, fmt), t, build)


class _TooManyBuilds(Exception):
    def __init__(self, wait: float) -> None:
        self.wait = wait


def _builds_limiter(context: Context) -> RateLimiter:
    limiter = context.extras.get("report_builds")
    if not isinstance(limiter, RateLimiter):
        limiter = context.extras["report_builds"] = RateLimiter(
            context.settings.report_builds_per_minute
        )
    return limiter


def answer(
    request: Request,
    context: Context,
    what: tuple[Hashable, ...],
    t: Translator,
    build: Callable[[], Report],
) -> Response:
    """The report ``what`` = (kind, argument, format), from the cache when the data did not
    change; 404 for an unknown place, year or format; 429 past the address's builds."""
    fmt = what[-1]
    if fmt not in FORMATS:
        raise HTTPException(404, "reports come as .html or .pdf")
    limiter = _builds_limiter(context)

    def counted_build() -> bytes:
        wait = limiter.hit(client_address(request))
        if wait:
            raise _TooManyBuilds(wait)
        return render(build(), str(fmt))

    try:
        body = cached_report(context, what, t.language, counted_build)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except _TooManyBuilds as busy:
        seconds = RateLimiter.retry_after_seconds(busy.wait)
        return PlainTextResponse(
            t("report.too_many", seconds=seconds),
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
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
