"""What the city maps show, in the reader's words: public requests, placed projects, district
centres, and where a city is. Shared by ``/requests``, ``/budgeting`` and the city page; each part
is left out when its component is not installed."""

from __future__ import annotations

from typing import Any

from qala.components.catalog.services import get_place
from qala.core.errors import NotFoundError
from qala.runtime import Context
from qala.web.data import installed
from qala.web.i18n import Translator
from qala.web.tilemap import CityMap, Marker, centre_of, city_map, district_markers

ON_MAP = 300
"""The newest public requests put on a map."""


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


def project_marker(project: Any, t: Translator) -> Marker | None:
    """A tracked project as a marker (None when it has no position)."""
    if project.lat is None or project.lon is None:
        return None
    status = t(f"pb.project_{project.status}") + (f" · {t('pb.late')}" if project.late else "")
    return Marker(
        project.lat,
        project.lon,
        "project",
        t.name(project.title),
        (
            status,
            f"{t('pb.budget')}: {t.money(project.budget)}",
            f"{t('pb.paid')}: {t.money(project.paid)}",
        ),
        href=f"/budgeting/projects/{project.code}",
    )


def city_districts(context: Context) -> dict[str, Any]:
    """Districts of the cities that take requests, by city (none without that component)."""
    if not installed("requests311"):
        return {}
    from qala.components.requests311 import services as requests

    with context.database.session() as session:
        return {code: j.districts for code, j in requests.load_jurisdictions(session).items()}


def place_centre(context: Context, code: str) -> tuple[float, float] | None:
    """A catalogue place's centre (lon, lat), or None."""
    with context.database.session() as session:
        try:
            place = get_place(session, code)
        except NotFoundError:
            return None
    return None if place.lat is None or place.lon is None else (place.lon, place.lat)


def place_name(context: Context, code: str, t: Translator) -> str:
    with context.database.session() as session:
        try:
            return t.name(get_place(session, code))
        except NotFoundError:
            return code


def framed(
    context: Context, code: str, label: str, districts: Any, markers: list[Marker], t: Translator
) -> CityMap | None:
    """The map around city ``code`` (its centre, else its districts', else the markers'), its
    districts named in the reader's language; None when nothing places it."""
    landmarks = district_markers(districts, t.name)
    centre = place_centre(context, code) or centre_of(landmarks) or centre_of(markers)
    if centre is None:
        return None
    return city_map(context.settings, label=label, centre=centre, markers=landmarks + markers)


def city_page_map(context: Context, code: str, t: Translator) -> CityMap | None:
    """The city page's map: the city's recent public requests and its placed projects (None when
    it has neither)."""
    markers: list[Marker] = []
    districts: Any = ()
    if installed("requests311"):
        from qala.components.requests311 import services as requests

        with context.database.session() as session:
            jurisdiction = requests.load_jurisdictions(session).get(code)
            if jurisdiction is not None:
                districts = jurisdiction.districts
                found = requests.find_requests(
                    session,
                    jurisdiction,
                    requests.RequestFilter(page_size=ON_MAP),
                    now=context.clock(),
                    language=t.language,
                )
                markers += [m for m in (request_marker(r, code, t) for r in found) if m]
    if installed("budgeting"):
        from qala.components.budgeting import projects

        with context.database.session() as session:
            tracked = projects.list_projects(session, today=context.clock().date(), place_code=code)
        markers += [m for m in (project_marker(p, t) for p in tracked) if m]
    if not markers:
        return None
    return framed(
        context, code, t("city.map_label", city=place_name(context, code, t)), districts, markers, t
    )
