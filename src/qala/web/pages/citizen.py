"""Citizen pages for service requests: file a request (with a map pick) and follow it.

Everything goes through the ``requests311`` component's services: ``load_jurisdictions``,
``submit_request`` (which validates, routes and audits) and ``follow_request``. The shell mounts
these pages only when that component is installed.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from qala.components.accounts.deps import (
    CallerFirstRoute,
    ContextDep,
    DatabaseDep,
    OptionalUser,
    client_address,
)
from qala.components.catalog.services import get_place
from qala.components.requests311 import services as requests
from qala.components.requests311.duplicates import (
    NEARBY_METRES,
    Supporter,
    find_nearby,
    nearby_entry,
)
from qala.components.requests311.intake import Poster, RateLimited, report_intake
from qala.components.requests311.photo_files import (
    HEIF,
    MAX_PHOTO_BYTES,
    MAX_PHOTO_FORM_BYTES,
    PHOTO_FIELD,
    PhotoUpload,
    location_of,
)
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    UnavailableError,
    ValidationError,
)
from qala.core.messages import msg
from qala.store.database import Database
from qala.web import data
from qala.web.deps import SEES_USER, TranslatorDep, UIDep
from qala.web.geo import MapPoint, local_map_svg, local_view
from qala.web.i18n import Translator
from qala.web.ui import UI, anon_form_token_ok

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)

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
SUPPORTER_COOKIE = "qala_supporter"
"""An anonymous browser's follow token: one support per request from it (hashed in the store)."""


def _float(value: str) -> float | None:
    value = value.strip().replace(",", ".")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return float("nan")


def jurisdictions(database: Database) -> dict[str, Any]:
    with database.session() as session:
        return requests.load_jurisdictions(session)


@router.get("/requests/new", dependencies=[SEES_USER])
async def new_request(
    request: Request,
    ui: UIDep,
    t: TranslatorDep,
    database: DatabaseDep,
    city: str | None = None,
    service: str | None = None,
) -> Response:
    known = jurisdictions(database)
    if not known:
        raise HTTPException(404, t("cities.none_yet"))
    if not city and len(known) > 1:
        return ui.render(request, "request_city_pick.html", cities=city_choices(known, t))
    jurisdiction = city_of(known, city, t)
    values = {"service_code": service or ""}
    return form_page(request, ui, t, database, jurisdiction, values=values, problems=[])


# The route's own cut-off sits past the form's, so a browser (which declares the length) gets the
# translated 413 page rather than the bare answer of the body limit.
@router.post("/requests/new", max_body_size=MAX_PHOTO_FORM_BYTES + 1024 * 1024)
async def submit(
    request: Request,
    user: OptionalUser,  # checks the session's CSRF token when signed in
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
) -> Response:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PHOTO_FORM_BYTES:
        raise HTTPException(413, "the form with its photos may be at most 30 MB")
    form = await request.form(max_files=20)
    if user is None and not anon_form_token_ok(request, form.get("csrf_token")):
        raise HTTPException(403, "the form expired; reload the page and send it again")
    values = {k: str(form.get(k, "")).strip() for k in FIELDS}
    known = jurisdictions(context.database)
    jurisdiction = city_of(known, str(form.get("city", "")) or None, t)
    new = new_request_of(values, form, user.username if user is not None else None)
    new.language = t.language
    new.photos = await photos_of(form)
    hints = unseen_hints(context, jurisdiction, values, str(form.get("nearby_seen", "")), t)
    if hints:  # browsers clear file fields: the resident is told to choose the photos again
        return form_page(
            request,
            ui,
            t,
            context.database,
            jurisdiction,
            values=values,
            problems=[],
            notices=["request.photos_again"] if new.photos else [],
            hints=hints,
        )
    try:
        submitted = submit_counted(context, jurisdiction, new, client_address(request))
    except RateLimited as exc:
        return too_many(request, ui, exc)
    except (ValidationError, PermissionDeniedError, UnavailableError) as exc:
        problems, status_code = refusal_problems(exc)
        notices = suggest_photo_location(values, new.photos)
        return form_page(
            request,
            ui,
            t,
            context.database,
            jurisdiction,
            values=values,
            problems=problems,
            status_code=status_code,
            notices=notices,
        )
    return ui.redirect(request, f"/requests/{submitted.token}?city={jurisdiction.code}&new=1")


@router.get("/requests/follow", dependencies=[SEES_USER])
async def follow_form(
    request: Request,
    ui: UIDep,
    t: TranslatorDep,
    database: DatabaseDep,
    ref: str | None = None,
    city: str | None = None,
) -> Response:
    if ref:
        suffix = f"?city={city}" if city else ""
        return ui.redirect(request, f"/requests/{ref.strip()}{suffix}")
    known = city_choices(jurisdictions(database), t)
    return ui.render(request, "request_follow.html", jurisdictions=known)


@router.get("/requests/nearby")
async def nearby(
    request: Request,
    t: TranslatorDep,
    context: ContextDep,
    service: Annotated[str, Query(max_length=80)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    long: Annotated[float, Query(ge=-180, le=180)],
    city: Annotated[str | None, Query(max_length=80)] = None,
    text: Annotated[str, Query(max_length=4000)] = "",
) -> Response:
    """Open requests of ``service`` near the point, for the form's hints (JSON, anonymous)."""
    try:
        report_intake(context).admit_hint(Poster.of(None, client_address(request)))
    except RateLimited as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)
    jurisdiction = city_of(requests.catalogue_cache(context).get(), city, t)
    hints = nearby_hints(context, jurisdiction, t, service, lat, long, text)
    return JSONResponse({"radius_m": NEARBY_METRES, "requests": hints})


@router.post("/requests/{request_id}/support")
async def support(
    request: Request,
    request_id: Annotated[int, Path(ge=1, le=requests.MAX_ID)],
    user: OptionalUser,  # checks the session's CSRF token when signed in
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
) -> Response:
    """Support an open request instead of filing a copy (from the form's hints or its page)."""
    form = await request.form()
    if user is None and not anon_form_token_ok(request, form.get("csrf_token")):
        raise HTTPException(403, "the form expired; reload the page and send it again")
    jurisdiction = city_of(jurisdictions(context.database), str(form.get("city", "")) or None, t)
    token = request.cookies.get(SUPPORTER_COOKIE) or secrets.token_urlsafe(18)
    supporter = Supporter(
        account=user.username if user is not None else None,
        email=str(form.get("email", "")).strip()[:300] or None,
        follow_token=None if user is not None else token[:64],
        language=t.language,
    )
    try:
        message, kind = supported_message(context, jurisdiction, request_id, supporter, request, t)
    except RateLimited as exc:
        return too_many(request, ui, exc)
    path = f"/requests/{request_id}?city={jurisdiction.code}"
    response = ui.redirect(request, ui.flash_url(path, message, kind))
    if user is None:
        response.set_cookie(
            SUPPORTER_COOKIE,
            token,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            path="/",
            secure=context.settings.secure_cookies,
        )
    return response


@router.get("/requests/{ref}", dependencies=[SEES_USER])
async def follow(
    request: Request,
    ref: str,
    ui: UIDep,
    t: TranslatorDep,
    database: DatabaseDep,
    city: str | None = None,
    new: int = 0,
) -> Response:
    try:
        with database.session() as session:
            jurisdiction = city_of_followed(session, jurisdictions(database), city, ref, t)
            followed = requests.follow_request(session, jurisdiction, ref, language=t.language)
    except NotFoundError:
        raise HTTPException(404, t("request.not_found")) from None
    return ui.render(
        request,
        "request_follow_one.html",
        followed=followed,
        jurisdiction=jurisdiction,
        ref=ref,
        new=bool(new),
        map_svg=ui.markup(request_map(followed.request, t)),
    )


# -- what the handlers build ----------------------------------------------------------------
def city_of(known: dict[str, Any], code: str | None, t: Translator) -> Any:
    """The named city (a translated 404 page for an unknown one; with one city, that one)."""
    try:
        return requests.pick_jurisdiction(known, code)
    except (NotFoundError, ValidationError):
        city = (code or "")[:80]
        unknown = NotFoundError(f"no city `{city}` takes reports here")
        raise unknown.with_message(msg("cities.unknown", city=city)) from None


def city_of_followed(
    session: Any, known: dict[str, Any], code: str | None, ref: str, t: Translator
) -> Any:
    """The named city, else the one whose request carries the token ``ref`` (tokens are unique
    across cities, so a followed link needs no city)."""
    if code or len(known) <= 1:
        return city_of(known, code, t)
    found = requests.jurisdiction_of_token(session, ref[:40])
    if found is None or found not in known:
        raise NotFoundError("no service request has this token")
    return known[found]


def city_choices(known: dict[str, Any], t: Translator) -> list[Any]:
    """The cities in the reader's alphabetical order."""
    return sorted(known.values(), key=lambda j: t.name(j.names).casefold())


def submit_counted(context: Any, jurisdiction: Any, new: Any, address: str) -> Any:
    """Store a report from the form under the same per-address limits as Open311 posts: this
    process's count first, then the shared one inside the report's transaction."""
    intake = report_intake(context)
    poster = Poster.of(None, address)
    intake.admit(poster)
    return intake.submit(jurisdiction, new, poster)


def nearby_hints(
    context: Any,
    jurisdiction: Any,
    t: Translator,
    service: str,
    lat: float,
    lon: float,
    text: str | None,
) -> list[dict[str, Any]]:
    """The open requests near a point as the form shows them (texts in the reader's language)."""
    with context.database.session() as session:
        found = find_nearby(
            session,
            jurisdiction,
            service_code=service,
            lat=lat,
            lon=lon,
            description=text,
            language=t.language,
        )
    hints = []
    for item in found:
        entry = nearby_entry(item, city=jurisdiction.code)
        entry["label"] = t("request.number", id=entry["id"])
        entry["distance_text"] = t("request.nearby_distance", metres=entry["distance_m"])
        entry["supporters_text"] = t("request.supporters", count=entry["supporters"])
        hints.append(entry)
    return hints


def nearby_key(values: dict[str, str]) -> str:
    """What the resident was shown hints for: the service and the point as typed."""
    return f"{values['service_code']}|{values['lat']}|{values['long']}"


def unseen_hints(
    context: Any, jurisdiction: Any, values: dict[str, str], seen: str, t: Translator
) -> list[dict[str, Any]]:
    """Nearby open requests of the chosen service the resident has not been shown yet (the
    form's script marks what it showed; without it the server shows them once before filing)."""
    key = nearby_key(values)
    values["nearby_seen"] = key
    lat, lon = _float(values["lat"]), _float(values["long"])
    if seen == key or not values["service_code"] or lat is None or lon is None:
        return []
    try:
        return nearby_hints(
            context, jurisdiction, t, values["service_code"], lat, lon, values["description"]
        )
    except ValidationError:  # a bad point: the form's own checks name it
        return []


def supported_message(
    context: Any,
    jurisdiction: Any,
    request_id: int,
    supporter: Supporter,
    request: Request,
    t: Translator,
) -> tuple[str, str]:
    """Record the support and say how it went (message, flash kind)."""
    intake = report_intake(context)
    try:
        done = intake.support(
            jurisdiction, request_id, supporter, Poster.of(None, client_address(request))
        )
    except NotFoundError:
        raise HTTPException(404, t("request.not_found")) from None
    except ConflictError:
        return t("request.support_closed"), "error"
    except ValidationError as exc:
        return t.problem(exc.problems[0]), "error"
    if done.added:
        return t("request.supported", id=request_id), "ok"
    return t("request.already_supported"), "ok"


def refusal_problems(exc: Exception) -> tuple[list[dict[str, Any]], int]:
    """What the form shows for a refused report, and its status: the problems of bad input
    (422), the photo storage that failed (503: nothing was stored, send it again later) or a
    city that takes no anonymous reports (403)."""
    if isinstance(exc, ValidationError):
        return [p.as_dict() for p in exc.problems], 422
    if isinstance(exc, UnavailableError):
        problem = Problem(
            "the photo storage is unavailable; try again later",
            column=PHOTO_FIELD,
            code="photo_storage_unavailable",
            message=msg("problem.photo_storage_unavailable"),
        )
        return [problem.as_dict()], 503
    return [{"column": "", "reason": str(exc)}], 403


def too_many(request: Request, ui: UI, exc: RateLimited) -> Response:
    """The translated 429 page, with when to try again."""
    response = ui.render(
        request, "error.html", status_code=429, code=429, retry_after=exc.retry_after
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def photos_of(form: FormData) -> list[PhotoUpload]:
    """The photos chosen in the form's two file fields (camera and gallery); an empty field
    sends an unnamed empty part, which is no photo."""
    photos = []
    for item in form.getlist(PHOTO_FIELD):
        if isinstance(item, UploadFile) and (item.filename or item.size):
            photos.append(PhotoUpload(await item.read(MAX_PHOTO_BYTES + 1), item.filename or ""))
    return photos


def suggest_photo_location(values: dict[str, str], photos: list[PhotoUpload]) -> list[str]:
    """With no point chosen, the place a photo was taken (its GPS EXIF) fills the form's
    coordinates for the resident to check. Returns the notices the page shows: that, and that
    photos must be chosen again (a browser never refills a file field)."""
    if not photos:
        return []
    notices = ["request.photos_again"]
    found = None if values["lat"] or values["long"] else location_of(photos)
    if found is not None:
        values["lat"], values["long"] = f"{found[0]:.6f}", f"{found[1]:.6f}"
        notices.append("request.photo_location")
    return notices


def new_request_of(values: dict[str, str], form: FormData, account: str | None) -> Any:
    """The service's request from the form; each service's questions are named
    ``attr.<service>.<code>`` and only the chosen service's count."""
    attributes: dict[str, list[str]] = {}
    prefix = f"attr.{values['service_code']}."
    for key in form:
        if key.startswith(prefix):
            chosen = [str(v) for v in form.getlist(key) if str(v)]
            if chosen:
                attributes[key[len(prefix) :]] = chosen
    return requests.NewRequest(
        service_code=values["service_code"],
        lat=_float(values["lat"]),
        lon=_float(values["long"]),
        address_string=values["address_string"] or None,
        description=values["description"] or None,
        email=values["email"] or None,
        phone=values["phone"] or None,
        first_name=values["first_name"] or None,
        account_id=account,
        attributes=attributes,
    )


def form_page(
    request: Request,
    ui: UI,
    t: Translator,
    database: Database,
    jurisdiction: Any,
    *,
    values: dict[str, str],
    problems: list[dict[str, Any]],
    status_code: int = 200,
    notices: list[str] | None = None,
    hints: list[dict[str, Any]] | None = None,
) -> Response:
    services = sorted(
        (s for s in jurisdiction.services.values() if s.active),
        key=lambda s: (s.group, t.name(s.names)),
    )
    groups: dict[str, list[Any]] = {}
    for service in services:
        groups.setdefault(service.group, []).append(service)
    problems = [translated_problem(p, jurisdiction, t) for p in problems]
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        by_field.setdefault(problem.get("column") or "", []).append(t.problem(problem))
    return ui.render(
        request,
        "request_new.html",
        status_code=status_code,
        jurisdiction=jurisdiction,
        several_cities=len(jurisdictions(database)) > 1,
        groups=groups,
        values=values,
        problems=problems,
        by_field=by_field,
        notices=notices or [],
        photo_types="image/jpeg,image/png" + (",image/heic,image/heif" if HEIF else ""),
        map_svg=ui.markup(city_map(database, jurisdiction, t, pick=True)),
        nearby=hints or [],
        nearby_radius=f"{NEARBY_METRES:g}",
    )


def translated_problem(problem: dict[str, Any], jurisdiction: Any, t: Translator) -> dict[str, Any]:
    """A problem whose reason the page says in the reader's language (where a message exists)."""
    if problem.get("code") == requests.OUTSIDE_CODE:
        return {**problem, "reason": t("cities.outside", city=t.name(jurisdiction.names))}
    return problem


def city_map(database: Database, jurisdiction: Any, t: Translator, *, pick: bool) -> str:
    """The city with its districts, centred on the city (else on its districts)."""
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
            t.name(data.district_names(d)),
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


def request_map(item: Any, t: Translator) -> str:
    """The followed request's place on a small map (none when it has no coordinates)."""
    if item.lat is None or item.long is None:
        return ""
    view = local_view(item.long, item.lat, half_width_km=3.0, width=560)
    point = MapPoint(item.service_name, item.long, item.lat, f"pt request {item.status}", radius=7)
    return local_map_svg(view, [point], title=t("request.location"))
