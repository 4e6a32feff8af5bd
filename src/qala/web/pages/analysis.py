"""The what-if rating and the analysis views of a stored rating.

``/rating/what-if`` — sliders for area and group weights, normalisation, aggregation, imputation
and the stakeholder presets; everyone may try settings (nothing is stored), analysts may save
them as a variant spec. The page is rendered with the settings in its query, so a link
reproduces a view; the script only asks ``/rating/what-if/results`` for the same settings as JSON
(ranks, scores, rank intervals, who moved and why) and rewrites the table and the link.

``/rating/analysis`` — framework sunburst, indicator distributions with the treatment applied,
correlation heat maps within and across levels, and ranks between two stored runs.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, OptionalUser
from qala.core.errors import NotFoundError, QalaError
from qala.web import analysis_views as views
from qala.web.deps import SEES_USER, AnalystPage, TranslatorDep, UIDep
from qala.web.ui import role_allows

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False, dependencies=[SEES_USER])


@router.get("/rating/what-if")
async def whatif_page(
    request: Request, ui: UIDep, t: TranslatorDep, context: ContextDep, user: OptionalUser
) -> Response:
    try:
        view = views.whatif_page(context, dict(request.query_params), t)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except QalaError as exc:
        raise HTTPException(422, str(exc)) from None
    return ui.render(request, "whatif.html", **view, can_save=role_allows(user, ("analyst",)))


@router.get("/rating/what-if/results")
async def whatif_results(request: Request, t: TranslatorDep, context: ContextDep) -> Response:
    # a plain JSON response: the payload is already JSON types, FastAPI's encoder would only
    # walk it again on every slider move
    return JSONResponse(views.whatif_json(context, dict(request.query_params), t))


@router.post("/rating/what-if/variants")
async def whatif_save(
    request: Request, _user: AnalystPage, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    query = {k: v for k, v in form.items() if k not in ("csrf_token", "name")}
    try:
        name = views.save_variant(context, query, form.get("name", ""))
    except QalaError as exc:
        back = f"/rating/what-if?{urlencode(query)}"
        return ui.redirect(request, ui.flash_url(back, t.error(exc), "error"))
    back = f"/rating/what-if?{urlencode(query)}"
    return ui.redirect(request, ui.flash_url(back, t("analysis.saved", name=name)))


@router.get("/rating/analysis")
async def analysis_page(
    request: Request, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    try:
        view = views.analysis_page(context, dict(request.query_params), t)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except QalaError as exc:
        raise HTTPException(422, str(exc)) from None
    return ui.render(request, "analysis.html", **view)
