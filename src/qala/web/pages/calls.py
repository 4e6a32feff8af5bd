"""The yearly data call in the dashboard: the status board, a place's form, the reviewer's queue.

Thin pages over ``qala.components.catalog.calls``. Submitters (one place) fill in their place's
values with evidence and answer returned ones; reviewers and publishers (national) accept or
return values and publish. The services check every write again (a submitter of another place
gets 403 and nothing is written), and refusals come back on the page with what was wrong.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import FormData

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, RowId
from qala.components.accounts.models import User
from qala.components.accounts.scope import StaffScope
from qala.components.catalog import calls
from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import Place
from qala.core.errors import ConflictError, PermissionDeniedError, Problem, ValidationError
from qala.runtime import Context
from qala.web.deps import TranslatorDep, UIDep, page_user
from qala.web.ui import UI, role_allows

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)

CALL_ROLES = ("submitter", "reviewer", "publisher", "analyst")
CallPage = Annotated[User, Depends(page_user(*CALL_ROLES))]
SubmitterPage = Annotated[User, Depends(page_user("submitter"))]
ReviewerPage = Annotated[User, Depends(page_user("reviewer", "publisher"))]
PublisherPage = Annotated[User, Depends(page_user("publisher"))]
TEXT_LIMIT = 2_000
PlaceCode = Annotated[str, Path(max_length=80, description="A place code.")]


def _national(user: User) -> None:
    if not StaffScope.of(user).national:
        raise PermissionDeniedError(f"national staff only; this account works for {user.place}")


def _field(form: FormData, name: str, limit: int = TEXT_LIMIT) -> str:
    return str(form.get(name) or "").strip()[:limit]


def _names(context: Context, language: str) -> dict[str, str]:
    with context.database.session() as session:
        return {p.code: p.name(language) for p in session.scalars(select(Place))}


def _about(rows: list[dict[str, Any]], names: dict[str, str], language: str) -> None:
    """Each row's indicator name and unit in the reader's language, and the place a "part above
    its whole" flag names by its name rather than its code."""
    for row in rows:
        row["about"] = _indicator(row["indicator"], language)
        for flag in row.get("flags") or []:
            if "parent" in flag:
                flag["parent"] = names.get(flag["parent"], flag["parent"])


def _indicator(code: str, language: str) -> dict[str, str]:
    catalogue = load_catalogue()
    found = catalogue.indicators.get(code)
    if found is None:
        return {"code": code, "name": code, "unit": ""}
    unit = catalogue.units.get(found.unit)
    return {
        "code": code,
        "name": found.names.get(language) or found.names.get("en") or code,
        "unit": (unit.names.get(language) or unit.names.get("en") or "") if unit else "",
    }


@router.get("/calls")
async def call_list(request: Request, user: CallPage, ui: UIDep, context: ContextDep) -> Response:
    scope = StaffScope.of(user)
    with context.database.session() as session:
        rows = calls.list_calls(session, place=scope.place, today=context.clock().date())
    for row in rows:
        row["deadline_date"] = date.fromisoformat(row["deadline"])
    return ui.render(request, "calls.html", calls=rows)


@router.get("/calls/{call_id}")
async def call_board(
    request: Request, call_id: RowId, user: CallPage, ui: UIDep, context: ContextDep
) -> Response:
    return board_page(request, ui, context, user, call_id)


def board_page(
    request: Request,
    ui: UI,
    context: Context,
    user: User,
    call_id: RowId,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    """The status board: per place submitted, accepted, returned, missing, overdue."""
    scope = StaffScope.of(user)
    language = ui.language(request)
    with context.database.session() as session:
        call = calls.get_call(session, call_id)
        if not scope.national and scope.place not in call.places:
            raise PermissionDeniedError(f"call {call_id} does not ask {scope.place}")
        board = [
            r
            for r in calls.status_board(session, call_id, today=context.clock().date())
            if scope.covers(r["place"])
        ]
        released = [r for r in calls.list_releases(session) if r["call"] == call_id]
    for release in released:
        release["published_at_date"] = datetime.fromisoformat(release["published_at"])
    values.setdefault("problems", [])
    return ui.render(
        request,
        "call_board.html",
        status_code=status_code,
        call=call,
        board=board,
        released=released,
        places=_names(context, language),
        indicators=[_indicator(code, language) for code in call.indicators],
        can_review=role_allows(user, ("reviewer", "publisher")) and scope.national,
        can_publish=role_allows(user, ("publisher",)) and scope.national,
        **values,
    )


@router.get("/calls/{call_id}/places/{place}")
async def place_form(
    request: Request,
    call_id: RowId,
    place: PlaceCode,
    user: CallPage,
    ui: UIDep,
    context: ContextDep,
) -> Response:
    return sheet_page(request, ui, context, user, call_id, place)


def sheet_page(
    request: Request,
    ui: UI,
    context: Context,
    user: User,
    call_id: RowId,
    place: PlaceCode,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    """A place's asked values: a form for its submitter, read-only for the national team."""
    StaffScope.of(user).require(place, f"the values of {place}")
    language = ui.language(request)
    with context.database.session() as session:
        call = calls.get_call(session, call_id)
        rows = calls.place_sheet(session, call_id, place)
    names = _names(context, language)
    _about(rows, names, language)
    values.setdefault("problems", [])
    values.setdefault("sent", {})
    return ui.render(
        request,
        "call_place.html",
        status_code=status_code,
        call=call,
        place=place,
        place_name=names.get(place, place),
        rows=rows,
        can_submit=role_allows(user, ("submitter",)),
        **values,
    )


def _sent_values(form: FormData, indicators: list[str], place: str) -> pd.DataFrame:
    """The filled-in rows of the form (an empty value is not sent)."""
    rows = [
        {
            "place": place,
            "indicator": code,
            "value": _field(form, f"value:{code}", 40),
            "evidence": _field(form, f"evidence:{code}") or None,
            "note": _field(form, f"note:{code}") or None,
        }
        for code in indicators
        if _field(form, f"value:{code}", 40)
    ]
    return pd.DataFrame(rows, columns=["place", "indicator", "value", "evidence", "note"])


@router.post("/calls/{call_id}/places/{place}")
async def place_submit(
    request: Request,
    call_id: RowId,
    place: PlaceCode,
    user: SubmitterPage,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
) -> Response:
    form = await request.form()
    with context.database.session() as session:
        indicators = list(calls.get_call(session, call_id).indicators)
    frame = _sent_values(form, indicators, place)
    if frame.empty:
        problems = [Problem("fill in at least one value", column="value")]
        return sheet_page(
            request, ui, context, user, call_id, place, status_code=422, problems=problems
        )
    try:
        with context.database.transaction() as session:
            result = calls.submit_values(
                session,
                call_id,
                frame,
                actor=user.username,
                scope_place=StaffScope.of(user).place,
                file="form",
            )
    except (ValidationError, ConflictError) as exc:
        problems = (
            exc.problems
            if isinstance(exc, ValidationError)
            else [Problem(str(exc), message=exc.message)]
        )
        sent = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        return sheet_page(
            request,
            ui,
            context,
            user,
            call_id,
            place,
            status_code=422,
            problems=problems,
            sent=sent,
        )
    flagged = sum(1 for found in result.flags.values() if found)
    note = t("call.saved", count=result.written, flagged=flagged)
    return ui.redirect(request, ui.flash_url(f"/calls/{call_id}/places/{place}", note))


@router.post("/calls/{call_id}/places/{place}/answer")
async def place_answer(
    request: Request,
    call_id: RowId,
    place: PlaceCode,
    user: SubmitterPage,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
) -> Response:
    form = await request.form()
    raw = _field(form, "value", 40).replace(",", ".")
    try:
        value = float(raw) if raw else None
        with context.database.transaction() as session:
            calls.answer_return(
                session,
                call_id,
                place,
                _field(form, "indicator", 120),
                actor=user.username,
                scope_place=StaffScope.of(user).place,
                answer=_field(form, "answer", 10_000),
                value=value,
                evidence=_field(form, "evidence") or None,
            )
    except ValueError:
        problems = [Problem("expected a number", column="value", value=raw)]
        return sheet_page(
            request, ui, context, user, call_id, place, status_code=422, problems=problems
        )
    except (ValidationError, ConflictError) as exc:
        problems = (
            exc.problems
            if isinstance(exc, ValidationError)
            else [Problem(str(exc), message=exc.message)]
        )
        return sheet_page(
            request, ui, context, user, call_id, place, status_code=422, problems=problems
        )
    return ui.redirect(
        request, ui.flash_url(f"/calls/{call_id}/places/{place}", t("call.answered"))
    )


@router.get("/calls/{call_id}/review")
async def review_queue(
    request: Request, call_id: RowId, user: ReviewerPage, ui: UIDep, context: ContextDep
) -> Response:
    return queue_page(request, ui, context, user, call_id)


def queue_page(
    request: Request,
    ui: UI,
    context: Context,
    user: User,
    call_id: RowId,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    _national(user)
    language = ui.language(request)
    with context.database.session() as session:
        call = calls.get_call(session, call_id)
        queue = calls.review_queue(session, call_id)
    names = _names(context, language)
    _about(queue, names, language)
    values.setdefault("problems", [])
    return ui.render(
        request,
        "call_review.html",
        status_code=status_code,
        call=call,
        queue=queue,
        places=names,
        **values,
    )


@router.post("/calls/{call_id}/review")
async def review_decide(
    request: Request,
    call_id: RowId,
    user: ReviewerPage,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
) -> Response:
    _national(user)
    form = await request.form()
    decision = _field(form, "decision", 20)
    try:
        with context.database.transaction() as session:
            calls.review(
                session,
                call_id,
                _field(form, "place", 80),
                _field(form, "indicator", 120),
                decision,
                actor=user.username,
                reason=_field(form, "reason", 10_000) or None,
            )
    except ValidationError as exc:
        return queue_page(
            request, ui, context, user, call_id, status_code=422, problems=exc.problems
        )
    note = t("call.decided_" + ("accept" if decision == "accept" else "return"))
    return ui.redirect(request, ui.flash_url(f"/calls/{call_id}/review", note))


@router.post("/calls/{call_id}/publish")
async def publish(
    request: Request,
    call_id: RowId,
    user: PublisherPage,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
) -> Response:
    _national(user)
    form = await request.form()
    reason = _field(form, "reason", 10_000)
    forced = form.get("force") == "yes"
    if forced and not reason:
        problems = [Problem("a forced publication needs a reason", column="reason")]
        return board_page(request, ui, context, user, call_id, status_code=422, problems=problems)
    try:
        with context.database.transaction() as session:
            release = calls.publish(
                session, call_id, actor=user.username, incomplete_reason=reason if forced else None
            )
            number = release.number
    except ConflictError as exc:
        problems = [Problem(str(exc), column="force", message=exc.message)]
        return board_page(request, ui, context, user, call_id, status_code=409, problems=problems)
    return ui.redirect(request, ui.flash_url(f"/calls/{call_id}", t("call.published", n=number)))
