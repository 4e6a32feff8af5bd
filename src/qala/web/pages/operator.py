"""The operator's board: incidents (operate) and citizen requests (requests311), kept live.

The board listens to ``/operator/stream`` (server-sent events, pushed when a request or incident
event is published) and also polls ``/operator/live`` (an HTML fragment) every few seconds; the script pauses while
the operator's keyboard focus is inside the board so a refresh never steals a half-typed note.
Every action is a plain form POST (CSRF token included) that calls the component's service and
comes back to the board, so the page also works without scripts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.accounts.models import User
from qala.components.accounts.scope import StaffScope
from qala.components.catalog.services import get_place
from qala.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from qala.events import Event
from qala.runtime import Context
from qala.store.database import Database
from qala.web import data
from qala.web.data import installed
from qala.web.deps import OperatorPage, TranslatorDep, UIDep
from qala.web.geo import MapPoint, local_map_svg, local_view
from qala.web.i18n import Translator
from qala.web.ui import UI

REQUEST_ACTIONS = ("acknowledge", "start", "close")
PHOTO_ACTIONS = ("hide", "show")
INCIDENT_ACTIONS = ("acknowledge", "close")
STORE_POLL_S = 2
"""Seconds between looks at the store for changes other server processes made."""


class ChangeCounter:
    """Counts the events that change the board, so open boards can be told to refresh."""

    PREFIXES = ("requests311.", "operate.")

    def __init__(self) -> None:
        self.value = 0

    def __call__(self, event: Event) -> None:
        if event.name.startswith(self.PREFIXES):
            self.value += 1


router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)
CHANGES_KEY = "operator_changes"


def watch_board(context: Context) -> ChangeCounter:
    """Start counting this process's board events (``mount_web`` calls it once per app)."""
    counter = ChangeCounter()
    context.bus.subscribe("*", counter)
    context.extras[CHANGES_KEY] = counter
    return counter


@dataclass
class BoardView:
    """The board as one operator asked for it: the filters and what renders it."""

    request: Request
    ui: UI
    t: Translator
    context: Context
    department: str | None
    service: str | None
    user: User

    def render(self, template: str) -> Response:
        scope = StaffScope.of(self.user)
        try:
            values = board(
                self.request, self.context, self.ui, self.t, self.department, self.service, scope
            )
        except PermissionDeniedError as exc:
            raise HTTPException(403, str(exc)) from None
        return self.ui.render(
            self.request,
            template,
            department=self.department or "",
            service=self.service or "",
            **values,
        )


async def board_view(
    request: Request,
    user: OperatorPage,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
    department: str | None = None,
    service: str | None = None,
) -> BoardView:
    return BoardView(request, ui, t, context, department, service, user)


BoardDep = Annotated[BoardView, Depends(board_view)]


@router.get("/operator")
async def page(view: BoardDep) -> Response:
    return view.render("operator.html")


@router.get("/operator/live")
async def live(view: BoardDep) -> Response:
    """The board alone, for the page to swap in when something changed."""
    return view.render("_operator_board.html")


@router.get("/operator/stream")
async def stream(request: Request, _user: OperatorPage, context: ContextDep) -> Response:
    """Server-sent events: ``change`` when a request or incident changed — at once when the
    event was published in this process, within ``STORE_POLL_S`` when another worker made it
    (the board then fetches its fragment) — and a comment every 15 s to keep proxies from
    closing the line. Closes after 5 minutes; browsers reconnect by themselves."""
    return StreamingResponse(
        board_events(request, context.database, context.extras[CHANGES_KEY]),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/operator/requests/{request_id}/{action}")
async def request_action(request_id: int, action: str, staff: StaffDep) -> Response:
    return await staff.act(REQUEST_WORK, request_id, action)


@router.post("/operator/requests/{request_id}/photos/{photo_id}/{action}")
async def photo_action(request_id: int, photo_id: int, action: str, staff: StaffDep) -> Response:
    return await staff.act(PHOTO_WORK, request_id, action, photo_id=photo_id)


@router.post("/operator/incidents/{incident_id}/{action}")
async def incident_action(incident_id: int, action: str, staff: StaffDep) -> Response:
    return await staff.act(INCIDENT_WORK, incident_id, action)


# -- the board ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffViewer:
    """Who looks at the board, as the queue sees them (a reader, recorded as no actor)."""

    place: str | None
    department: str | None
    username: str = "viewer"


def board(
    request: Request,
    context: Context,
    ui: UI,
    t: Translator,
    department: str | None,
    service: str | None,
    scope: StaffScope,
) -> dict[str, Any]:
    """The waiting requests and active incidents of the operator's place (and departments),
    their filters and close reasons, and the map."""
    out: dict[str, Any] = {
        "queue": [],
        "queue_total": 0,
        "sort": request.query_params.get("sort") or "priority",
        "incidents": [],
        "departments": [],
        "services": [],
        "request_close_reasons": [],
        "incident_close_reasons": [],
        "jurisdiction": None,
    }
    with context.database.session() as session:
        if installed("requests311"):
            out.update(request_queue(session, context, request, t, department, scope))
        if installed("operate"):
            from qala.components.operate import incidents

            out["services"] = list(incidents.SERVICES)
            out["incidents"] = incidents.list_incidents(
                session, status="active", service=service or None, place_code=scope.place, limit=40
            )
            out["incident_close_reasons"] = list(incidents.load_routing().close_reasons)
            out["incident_units"] = {
                i.id: data.unit_label(session, i.unit, i.service, t) for i in out["incidents"]
            }
    out["map_svg"] = ui.markup(board_map(context.database, out, t))
    return out


def request_queue(
    session: Session,
    context: Context,
    request: Request,
    t: Translator,
    department: str | None,
    scope: StaffScope,
) -> dict[str, Any]:
    """The chosen city's waiting requests (first 40), by priority or newest first: the
    operator's own city and departments."""
    from qala.components.requests311 import services as requests

    known = requests.load_jurisdictions(session)
    if not known:
        return {}
    city = request.query_params.get("city") or scope.place or next(iter(known))
    viewer = StaffViewer(scope.place, ",".join(sorted(scope.departments or ())) or None)
    staff = requests.scoped_requests(session, known, viewer, city, now=context.clock())
    jurisdiction = staff.jurisdiction
    departments = sorted(
        (
            (d.code, t.name(d.names))
            for d in jurisdiction.departments.values()
            if scope.covers_department(d.code)
        ),
        key=lambda item: item[1],
    )
    wanted = department if department in {d[0] for d in departments} else None
    queue = staff.queue(department=wanted, limit=1000, language=t.language)
    if request.query_params.get("sort") == "newest":
        queue.sort(key=lambda r: r.requested_at, reverse=True)
    shown = queue[:40]
    return {
        "jurisdiction": jurisdiction,
        "departments": departments,
        "department_names": dict(departments),
        "district_names": {
            str(d["code"]): t.name(data.district_names(d)) for d in jurisdiction.districts
        },
        "queue_total": len(queue),
        "queue": shown,
        # Every photo, hidden ones too: operators judge what the public may see.
        "photos": requests.photos_of(session, [r.id for r in shown], base_url="", public=False),
        "request_close_reasons": [r for r in requests.CLOSE_REASONS if r != "duplicate"],
    }


def board_map(database: Database, values: dict[str, Any], t: Translator) -> str:
    """The city around the work: open incidents and waiting requests as points."""
    points = [
        MapPoint(
            f"#{i.id} {data.incident_title(i, t)}",
            i.lon,
            i.lat,
            "pt incident",
            href=f"#incident-{i.id}",
            radius=6,
        )
        for i in values["incidents"]
        if i.lat is not None and i.lon is not None
    ]
    points += [
        MapPoint(
            f"#{r.id} {r.service_name}",
            r.lon,
            r.lat,
            "pt request",
            href=f"#request-{r.id}",
            radius=5,
        )
        for r in values["queue"]
        if r.lat is not None and r.lon is not None
    ]
    centre = city_centre(database, values.get("jurisdiction"))
    if centre is None and points:
        centre = (
            sum(p.lon for p in points) / len(points),
            sum(p.lat for p in points) / len(points),
        )
    if centre is None:
        return ""
    view = local_view(centre[0], centre[1], half_width_km=16.0, width=640)
    inside = [
        p
        for p in points
        if view.lon_min <= p.lon <= view.lon_max and view.lat_min <= p.lat <= view.lat_max
    ]
    return local_map_svg(view, inside, title=t("operator.map_label"))


def city_centre(database: Database, jurisdiction: Any) -> tuple[float, float] | None:
    if jurisdiction is None:
        return None
    with database.session() as session:
        try:
            place = get_place(session, jurisdiction.code)
        except NotFoundError:
            return None
    if place.lat is None or place.lon is None:
        return None
    return (place.lon, place.lat)


# -- live updates -------------------------------------------------------------------------
def stored_marker(database: Database) -> tuple[int, int]:
    """The newest audit ids of requests and incidents: they grow with changes made by any
    server process, where the bus only tells of this one's."""
    with database.session() as session:
        newest_request = 0
        newest_incident = 0
        if installed("requests311"):
            from qala.components.requests311 import services as requests

            newest_request = requests.latest_change(session)
        if installed("operate"):
            from qala.components.operate import incidents

            newest_incident = incidents.latest_change(session)
    return newest_request, newest_incident


async def board_events(
    request: Request, database: Database, changes: ChangeCounter
) -> AsyncIterator[str]:
    seen = changes.value
    marker = await asyncio.to_thread(stored_marker, database)
    sent = 0
    yield "retry: 5000\n\n"
    for tick in range(300):
        if await request.is_disconnected():
            return
        changed = changes.value != seen
        seen = changes.value
        if tick % STORE_POLL_S == STORE_POLL_S - 1:
            now_marker = await asyncio.to_thread(stored_marker, database)
            changed = changed or now_marker != marker
            marker = now_marker
        if changed:
            sent += 1
            yield f"event: change\ndata: {sent}\n\n"
        elif tick % 15 == 14:
            yield ": keep-alive\n\n"
        await asyncio.sleep(1.0)


# -- actions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    """A kind of item on the board: its actions, the component that owns it, the function that
    carries an action out, and the message saying it was done."""

    actions: tuple[str, ...]
    component: str
    carry_out: Callable[..., None]
    done: str


@dataclass
class StaffAction:
    """An operator's form POST on the board; answers with a redirect back to it."""

    request: Request
    user: User
    ui: UI
    t: Translator
    context: Context

    async def act(self, work: Work, item_id: int, action: str, **extra: Any) -> Response:
        if action not in work.actions or not installed(work.component):
            raise HTTPException(404, "unknown action")
        form = await self.request.form()
        if action == "close" and not str(form.get("reason", "")).strip():
            # A close is always given its reason by the operator, never a default.
            return back(self.request, self.ui, self.t("operator.reason_needed"), "error")
        try:
            work.carry_out(self.context, item_id, action, form, user=self.user, **extra)
        except PermissionDeniedError as exc:
            raise HTTPException(403, str(exc)) from None
        except (ConflictError, NotFoundError, ValidationError) as exc:
            return back(self.request, self.ui, self.t.error(exc), "error")
        action_name = self.t("operator.action_" + action)
        return back(self.request, self.ui, self.t(work.done, id=item_id, action=action_name))


async def staff_action(
    request: Request, user: OperatorPage, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> StaffAction:
    return StaffAction(request, user, ui, t, context)


StaffDep = Annotated[StaffAction, Depends(staff_action)]


def act_on_request(
    context: Context, request_id: int, action: str, form: FormData, *, user: User
) -> None:
    from qala.components.requests311 import services as requests

    note = str(form.get("note", "")).strip() or None
    with context.database.transaction() as session:
        known = requests.load_jurisdictions(session)
        city = str(form.get("city", "")) or None
        staff = requests.scoped_requests(
            session, known, user, city, now=context.clock(), bus=context.bus
        )
        if action == "acknowledge":
            staff.acknowledge(request_id, note=note)
        elif action == "start":
            staff.start(request_id, note=note)
        else:
            staff.close(request_id, reason=str(form.get("reason")), note=note)


def act_on_photo(
    context: Context, request_id: int, action: str, form: FormData, *, user: User, photo_id: int
) -> None:
    """Hide a photo of a request from the public, or show it again, with the form's reason."""
    from qala.components.requests311 import services as requests

    with context.database.transaction() as session:
        known = requests.load_jurisdictions(session)
        city = str(form.get("city", "")) or None
        staff = requests.scoped_requests(
            session, known, user, city, now=context.clock(), bus=context.bus
        )
        requests.set_photo_hidden(
            staff,
            request_id,
            photo_id,
            hidden=action == "hide",
            reason=str(form.get("reason", "")),
            base_url=context.settings.public_base_url,
        )


def act_on_incident(
    context: Context, incident_id: int, action: str, form: FormData, *, user: User
) -> None:
    from qala.components.operate import incidents

    note = str(form.get("note", "")).strip() or None
    now = context.clock()
    actor = user.username
    with context.database.transaction() as session:
        incidents.incident_in_scope(session, incident_id, StaffScope.of(user))
        if action == "acknowledge":
            incidents.acknowledge(session, incident_id, actor=actor, now=now, note=note)
        else:
            reason = str(form.get("reason"))
            incidents.close(session, incident_id, reason=reason, actor=actor, now=now, note=note)


def back(request: Request, ui: UI, message: str, kind: str = "ok") -> Response:
    """Back to the board the form was sent from (its filters kept), with the outcome."""
    target = request.headers.get("referer") or "/operator"
    path = "/operator"
    if "/operator" in target:
        path = target[target.index("/operator") :].split("#")[0]
    return ui.redirect(request, ui.flash_url(path, message, kind))


REQUEST_WORK = Work(REQUEST_ACTIONS, "requests311", act_on_request, "operator.done_request")
PHOTO_WORK = Work(PHOTO_ACTIONS, "requests311", act_on_photo, "operator.done_photo")
INCIDENT_WORK = Work(INCIDENT_ACTIONS, "operate", act_on_incident, "operator.done_incident")
