"""The city's requests as anyone may see them: a map and a list of the recent ones.

Only what Open311's public reads publish (``requests311.find_requests``: service, status, dates,
address, position; never the reporter's name or contacts), over Open311's default window of the
last 90 days. The map is ``qala.web.tilemap``'s: tiles when the deployment names a tile server,
else the offline SVG.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from qala.components.accounts.deps import ContextDep
from qala.components.requests311 import services as requests
from qala.runtime import Context
from qala.web.city_markers import ON_MAP, framed, request_marker
from qala.web.deps import SEES_USER, TranslatorDep, UIDep
from qala.web.i18n import Translator
from qala.web.pages.citizen import city_choices, city_of, jurisdictions
from qala.web.tilemap import CityMap

router = APIRouter(include_in_schema=False)
LISTED = 50
"""The newest requests listed under the map (which shows up to ``ON_MAP``)."""
SHOWN = ("all", "open", "closed")


@router.get("/requests", dependencies=[SEES_USER])
async def public_requests(
    request: Request,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
    city: str | None = None,
    show: str = "all",
) -> Response:
    known = jurisdictions(context.database)
    if not known:
        raise HTTPException(404, t("cities.none_yet"))
    choices = city_choices(known, t)
    show = show if show in SHOWN else "all"
    where = requests.RequestFilter(statuses=None if show == "all" else [show], page_size=ON_MAP)
    with context.database.session() as session:
        if not city:
            city = requests.newest_request_city(session) or choices[0].code
        jurisdiction = city_of(known, city, t)
        found = requests.find_requests(
            session, jurisdiction, where, now=context.clock(), language=t.language
        )
    return ui.render(
        request,
        "requests_public.html",
        jurisdiction=jurisdiction,
        cities=choices,
        show=show,
        listed=found[:LISTED],
        total=len(found),
        city_map=requests_map(context, jurisdiction, found, t),
    )


def requests_map(
    context: Context, jurisdiction: Any, found: list[Any], t: Translator
) -> CityMap | None:
    """The city with its districts named in the reader's language and the requests that have a
    position; None when nothing places it."""
    markers = [m for m in (request_marker(r, jurisdiction.code, t) for r in found) if m]
    label = t("requests.map_label", city=t.name(jurisdiction.names))
    return framed(context, jurisdiction.code, label, jurisdiction.districts, markers, t)
