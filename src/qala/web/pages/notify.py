"""Residents' notification pages: settings and follows (``/notifications``), the unsubscribe
link's page, "mine" (their requests, ballots and follows), and the administrators' view of the
outbox. Everything goes through the ``notify`` component's services (and the requests' and
budgeting's for what "mine" lists)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.accounts.models import User
from qala.components.notify import services as notify
from qala.components.notify.outbox import read_unsubscribe_token
from qala.core.errors import NotFoundError, ValidationError
from qala.runtime import Context
from qala.web.deps import TranslatorDep, UIDep, page_user
from qala.web.ui import UI

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)

ResidentPage = Annotated[User, Depends(page_user())]
AdministratorPage = Annotated[User, Depends(page_user("administrator"))]


@router.get("/notifications")
async def settings_page(
    request: Request, user: ResidentPage, ui: UIDep, context: ContextDep
) -> Response:
    return notifications_page(request, ui, context, user)


@router.post("/notifications")
async def save_settings(
    request: Request, user: ResidentPage, ui: UIDep, context: ContextDep
) -> Response:
    form = await request.form()
    try:
        save_from_form(context, user, {k: str(v) for k, v in form.items()})
    except ValidationError as exc:
        problems = [p.as_dict() for p in exc.problems]
        return notifications_page(request, ui, context, user, problems=problems, status_code=422)
    return ui.redirect(request, "/notifications?saved=1")


@router.post("/notifications/follow")
async def follow(
    request: Request, user: ResidentPage, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    form = await request.form()
    link = follow_subject(
        context, user, str(form.get("kind", "")), str(form.get("code", "")), t.language
    )
    return ui.redirect(request, f"{link}?followed=1")


@router.post("/notifications/follows/{subscription_id}/{action}")
async def stop_or_resume(
    request: Request,
    subscription_id: int,
    action: str,
    user: ResidentPage,
    ui: UIDep,
    context: ContextDep,
) -> Response:
    set_following(context, user, subscription_id, action)
    return ui.redirect(request, "/notifications")


@router.get("/notifications/unsubscribe/{token}")
async def unsubscribe_form(
    request: Request, token: str, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    # A GET only asks: mail scanners open links, and must not unsubscribe anyone.
    if read_unsubscribe_token(context.settings.secret_key, token) is None:
        raise HTTPException(404, t("notify.unsubscribe_invalid"))
    return ui.render(request, "notify_unsubscribe.html", token=token, done=None)


@router.post("/notifications/unsubscribe/{token}")
async def unsubscribe(
    request: Request, token: str, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    with context.database.transaction() as session:
        done = notify.unsubscribe(session, context.settings.secret_key, token)
    if done is None:
        raise HTTPException(404, t("notify.unsubscribe_invalid"))
    return ui.render(request, "notify_unsubscribe.html", token=token, done=done)


@router.get("/mine")
async def mine(request: Request, user: ResidentPage, ui: UIDep, context: ContextDep) -> Response:
    return ui.render(request, "mine.html", **mine_of(context, user))


@router.get("/admin/notifications")
async def outbox_page(
    request: Request, _user: AdministratorPage, ui: UIDep, context: ContextDep, status: str = ""
) -> Response:
    return ui.render(request, "notify_outbox.html", **outbox_of(context, status))


@router.post("/admin/notifications/{message_id}/retry")
async def retry(
    request: Request, message_id: int, _user: AdministratorPage, ui: UIDep, context: ContextDep
) -> Response:
    with context.database.transaction() as session:
        try:
            notify.requeue(session, message_id, now=context.clock())
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
    return ui.redirect(request, "/admin/notifications")


# -- what the handlers do --------------------------------------------------------------------
def notifications_page(
    request: Request,
    ui: UI,
    context: Context,
    user: User,
    *,
    problems: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    with context.database.session() as session:
        preferences = notify.preferences(
            session, user.username, default_language=ui.language(request)
        )
        followed = notify.followed_by(session, user.username)
    by_field: dict[str, list[str]] = {}
    for problem in problems or []:
        by_field.setdefault(problem.get("column") or "", []).append(problem["reason"])
    return ui.render(
        request,
        "notify_settings.html",
        status_code=status_code,
        preferences=preferences,
        followed=followed,
        by_field=by_field,
        saved=request.query_params.get("saved") == "1",
    )


def save_from_form(context: Context, user: User, form: dict[str, str]) -> None:
    with context.database.transaction() as session:
        notify.save_preferences(
            session,
            user.username,
            email=form.get("email", ""),
            phone=form.get("phone", ""),
            language=form.get("language", ""),
            email_on=form.get("email_on") == "on",
            sms_on=form.get("sms_on") == "on",
            now=context.clock(),
        )


def follow_subject(context: Context, user: User, kind: str, code: str, language: str) -> str:
    """Follow a project (its title from budgeting); the page to go back to."""
    from qala.components.budgeting import projects

    if kind != "project":
        raise HTTPException(422, "only projects are followed from their page")
    with context.database.transaction() as session:
        try:
            found = projects.get_project(session, code, today=context.clock().date())
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        link = f"/budgeting/projects/{found.code}"
        notify.follow(
            session,
            user.username,
            kind="project",
            code=found.code,
            label=dict(found.title),
            link=link,
            language=language,
            now=context.clock(),
        )
    return link


def set_following(context: Context, user: User, subscription_id: int, action: str) -> None:
    if action not in ("stop", "resume"):
        raise HTTPException(404)
    with context.database.transaction() as session:
        try:
            notify.set_following(session, user.username, subscription_id, active=action == "resume")
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None


def mine_of(context: Context, user: User) -> dict[str, Any]:
    """A resident's own requests, the processes they voted in, and what they follow."""
    from qala.components.requests311.export import requests_of_account

    with context.database.session() as session:
        return {
            "my_requests": requests_of_account(session, user.username),
            "ballots": notify.ballots_of(session, user.username),
            "followed": [
                f for f in notify.followed_by(session, user.username) if f.kind != "request"
            ],
        }


def outbox_of(context: Context, status: str) -> dict[str, Any]:
    statuses = (status,) if status else ("queued", "failed")
    with context.database.session() as session:
        try:
            rows = notify.outbox(session, statuses=statuses)
        except ValidationError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"rows": rows, "counts": notify.outbox_counts(session), "status": status}
