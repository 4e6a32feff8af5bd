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
from qala.components.catalog.services import get_place
from qala.components.requests311 import services as requests
from qala.core.errors import NotFoundError
from qala.runtime import Context
from qala.web.deps import SEES_USER, TranslatorDep, UIDep
from qala.web.i18n import Translator
from qala.web.pages.citizen import city_choices, city_of, jurisdictions
from qala.web.tilemap import CityMap, Marker, centre_of, city_map, district_markers

router = APIRouter(include_in_schema=False)
ON_MAP = 300
"""The newest requests put on the map; the list shows the first ``LISTED``."""
LISTED = 50
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


def request_marker(item: Any, city: str, t: Translator) -> Marker | None:
    """A public request as a marker (None without a position); its popup in the reader's words."""
    if item.lat is None or item.long is None:
        return None
    lines = [
        t(f"status.{item.lifecycle_status}"),
        t("request.filed") + ": " + t.day(item.requested_datetime),
    ]
    if item.address:
        lines.append(item.address)
    return Marker(
        item.lat,
        item.long,
        "request",
        t("request.number", id=item.service_request_id) + " · " + item.service_name,
        tuple(lines),
        href=f"/requests/{item.service_request_id}?city={city}",
        css=item.status,
    )


def requests_map(
    context: Context, jurisdiction: Any, found: list[Any], t: Translator
) -> CityMap | None:
    """The city (its centre, else its districts', else its requests') with its districts named in
    the reader's language and the requests that have a position; None when nothing is placed."""
    markers = [m for m in (request_marker(r, jurisdiction.code, t) for r in found) if m]
    districts = district_markers(jurisdiction.districts, t.name)
    centre = place_centre(context, jurisdiction.code) or centre_of(districts) or centre_of(markers)
    if centre is None:
        return None
    return city_map(
        context.settings,
        label=t("requests.map_label", city=t.name(jurisdiction.names)),
        centre=centre,
        markers=districts + markers,
    )


def place_centre(context: Context, code: str) -> tuple[float, float] | None:
    """A catalogue place's centre (lon, lat), or None."""
    with context.database.session() as session:
        try:
            place = get_place(session, code)
        except NotFoundError:
            return None
    if place.lat is None or place.lon is None:
        return None
    return (place.lon, place.lat)
