"""Citizen pages for service requests: file a request (with a map pick) and follow it.

Everything goes through the ``requests311`` component's services: ``load_jurisdictions``,
``submit_request`` (which validates, routes and audits) and ``follow_request``.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from qala.components.catalog.services import get_place
from qala.core.errors import NotFoundError, PermissionDeniedError, ValidationError
from qala.web.data import installed
from qala.web.geo import MapPoint, local_map_svg, local_view
from qala.web.i18n import Translator
from qala.web.ui import ANON_CSRF_COOKIE, UI

FIELDS = (
    "service_code",
    "description",
    "address_string",
    "lat",
    "long",
    "email",
    "phone",
    "first_name",
)


def _float(value: str) -> float | None:
    value = value.strip().replace(",", ".")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return float("nan")


def build_router(ui: UI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    if not installed("requests311"):
        return router
    from qala.components.requests311 import services as requests

    database = ui.context.database

    def jurisdictions() -> dict[str, Any]:
        with database.session() as session:
            return requests.load_jurisdictions(session)

    def city_map(jurisdiction: Any, t: Translator, *, pick: bool) -> str:
        with database.session() as session:
            try:
                place = get_place(session, jurisdiction.code)
                centre = (place.lon, place.lat)
            except NotFoundError:
                centre = (None, None)
        districts = [d for d in jurisdiction.districts if d.get("lat") is not None]
        if centre[0] is None:
            if not districts:
                return ""
            centre = (
                sum(float(d["lon"]) for d in districts) / len(districts),
                sum(float(d["lat"]) for d in districts) / len(districts),
            )
        view = local_view(float(centre[0] or 0), float(centre[1] or 0))
        points = [
            MapPoint(
                t.name(d.get("name") or {"en": d["code"]}),
                float(d["lon"]),
                float(d["lat"]),
                "pt district",
                radius=5,
                show_label=True,
            )
            for d in districts
        ]
        return local_map_svg(
            view, points, title=t("request.map_label", city=t.name(jurisdiction.names)), pick=pick
        )

    def form_page(
        request: Request,
        jurisdiction: Any,
        *,
        values: dict[str, str],
        problems: list[dict[str, Any]],
        status_code: int = 200,
    ) -> Response:
        t = Translator(ui.language(request))
        services = sorted(
            (s for s in jurisdiction.services.values() if s.active),
            key=lambda s: (s.group, t.name(s.names)),
        )
        groups: dict[str, list[Any]] = {}
        for service in services:
            groups.setdefault(service.group, []).append(service)
        by_field: dict[str, list[str]] = {}
        for problem in problems:
            by_field.setdefault(problem.get("column") or "", []).append(problem["reason"])
        return ui.render(
            request,
            "request_new.html",
            status_code=status_code,
            jurisdiction=jurisdiction,
            all_jurisdictions=list(jurisdictions().values()),
            groups=groups,
            values=values,
            problems=problems,
            by_field=by_field,
            map_svg=ui.markup(city_map(jurisdiction, t, pick=True)),
        )

    @router.get("/requests/new")
    async def new_request(
        request: Request, city: str | None = None, service: str | None = None
    ) -> Response:
        await ui.user(request)
        known = jurisdictions()
        if not known:
            raise HTTPException(404, "no city takes requests yet")
        jurisdiction = requests.pick_jurisdiction(known, city)
        return form_page(request, jurisdiction, values={"service_code": service or ""}, problems=[])

    @router.post("/requests/new")
    async def submit(request: Request) -> Response:
        user = await ui.user(request)  # checks the session's CSRF token when signed in
        form = await request.form()
        if user is None:
            expected = request.cookies.get(ANON_CSRF_COOKIE) or ""
            sent = form.get("csrf_token")
            if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
                raise HTTPException(403, "the form expired; reload the page and send it again")
        values = {k: str(form.get(k, "")).strip() for k in FIELDS}
        known = jurisdictions()
        jurisdiction = requests.pick_jurisdiction(known, str(form.get("city", "")) or None)
        attributes: dict[str, list[str]] = {}
        prefix = f"attr.{values['service_code']}."
        for key in form:
            # Each service's questions are named attr.<service>.<code>: only the chosen one's count.
            if key.startswith(prefix):
                chosen = [str(v) for v in form.getlist(key) if str(v)]
                if chosen:
                    attributes[key[len(prefix) :]] = chosen
        new = requests.NewRequest(
            service_code=values["service_code"],
            lat=_float(values["lat"]),
            lon=_float(values["long"]),
            address_string=values["address_string"] or None,
            description=values["description"] or None,
            email=values["email"] or None,
            phone=values["phone"] or None,
            first_name=values["first_name"] or None,
            account_id=user.username if user is not None else None,
            attributes=attributes,
        )
        try:
            with database.transaction() as session:
                submitted = requests.submit_request(
                    session, jurisdiction, new, now=ui.context.clock(), bus=ui.context.bus
                )
        except ValidationError as exc:
            problems = [p.as_dict() for p in exc.problems]
            return form_page(
                request, jurisdiction, values=values, problems=problems, status_code=422
            )
        except PermissionDeniedError as exc:
            return form_page(
                request,
                jurisdiction,
                values=values,
                problems=[{"column": "", "reason": str(exc)}],
                status_code=403,
            )
        return ui.redirect(request, f"/requests/{submitted.token}?city={jurisdiction.code}&new=1")

    @router.get("/requests/follow")
    async def follow_form(
        request: Request, ref: str | None = None, city: str | None = None
    ) -> Response:
        await ui.user(request)
        if ref:
            suffix = f"?city={city}" if city else ""
            return ui.redirect(request, f"/requests/{ref.strip()}{suffix}")
        return ui.render(
            request, "request_follow.html", jurisdictions=list(jurisdictions().values())
        )

    @router.get("/requests/{ref}")
    async def follow(request: Request, ref: str, city: str | None = None, new: int = 0) -> Response:
        await ui.user(request)
        t = Translator(ui.language(request))
        jurisdiction = requests.pick_jurisdiction(jurisdictions(), city)
        try:
            with database.session() as session:
                followed = requests.follow_request(session, jurisdiction, ref, language=t.language)
        except NotFoundError:
            raise HTTPException(404, t("request.not_found")) from None
        svg = ""
        item = followed.request
        if item.lat is not None and item.long is not None:
            view = local_view(item.long, item.lat, half_width_km=3.0, width=560)
            svg = local_map_svg(
                view,
                [
                    MapPoint(
                        item.service_name,
                        item.long,
                        item.lat,
                        f"pt request {item.status}",
                        radius=7,
                    )
                ],
                title=t("request.location"),
            )
        return ui.render(
            request,
            "request_follow_one.html",
            followed=followed,
            jurisdiction=jurisdiction,
            ref=ref,
            new=bool(new),
            map_svg=ui.markup(svg),
        )

    return router
