"""Participatory budgeting pages: processes, the ballot, results, and the project tracker with the
money paid and the check of the tamper-evident ledger.

Everything goes through the ``budgeting`` component: ``process.list_processes/get_process/
list_proposals``, ``ballots.cast_ballot/get_results``, ``projects.list_projects/get_project`` and
``ledger.verify_ledger``. The shell mounts these pages only when that component is installed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.accounts.identity import verified_methods
from qala.components.accounts.models import User
from qala.components.budgeting import ballots, ledger, process, projects
from qala.components.budgeting.signing import ledger_signer
from qala.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from qala.runtime import Context
from qala.web import pbtext
from qala.web.city_markers import city_districts, framed, place_name, project_marker
from qala.web.data import district_names
from qala.web.deps import SEES_USER, TranslatorDep, UIDep, page_user
from qala.web.i18n import Translator
from qala.web.tilemap import CityMap, Marker
from qala.web.ui import UI

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)
VoterPage = Annotated[User, Depends(page_user("citizen"))]


def today(context: Context) -> Any:
    return context.clock().date()


@router.get("/budgeting", dependencies=[SEES_USER])
async def overview(request: Request, ui: UIDep, t: TranslatorDep, context: ContextDep) -> Response:
    with context.database.session() as session:
        processes = process.list_processes(session)
        tracked = projects.list_projects(session, today=today(context))
    maps = projects_maps(context, tracked, t)
    return ui.render(request, "budgeting.html", processes=processes, projects=tracked, maps=maps)


@router.get("/budgeting/ledger", dependencies=[SEES_USER])
async def signed_ledger(request: Request, ui: UIDep, context: ContextDep) -> Response:
    """The ledger's signed head, its public key and how to keep a copy (before ``/{code}``)."""
    key = ledger_signer(context).public_key()
    with context.database.session() as session:
        head = ledger.newest_head(session)
        check = ledger.verify_ledger(session, public_key=key)
    base_url = context.settings.public_base_url.rstrip("/")
    return ui.render(
        request,
        "budgeting_ledger.html",
        head=head,
        key=key.as_dict(),
        check=check,
        base_url=base_url,
    )


@router.get("/budgeting/{code}", dependencies=[SEES_USER])
async def one_process(
    request: Request, code: str, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    return process_page(request, ui, t, context, code)


@router.post("/budgeting/{code}/ballot")
async def cast(
    request: Request,
    code: str,
    user: VoterPage,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
) -> Response:
    """Cast or change a ballot; on success the browser is sent on to the process page (a
    refresh then only reloads that page), which shows the receipt kept for it in a cookie."""
    form = await request.form()
    with context.database.session() as session:
        kind = process.get_process(session, code).ballot_kind
    choices = ballot_choices(form, kind)
    try:
        with context.database.transaction() as session:
            receipt = ballots.cast_ballot(
                session,
                code,
                iin=str(form.get("iin", "")).strip(),
                choices=choices,
                secret_key=context.settings.secret_key,
                now=context.clock(),
                receipt=str(form.get("receipt", "")).strip()[:100] or None,
                account_id=user.id,
            )
    except ValidationError as exc:
        problems = [t.problem(p) for p in exc.problems]
        return process_page(
            request, ui, t, context, code, problems=problems, chosen=set(choices), status_code=422
        )
    except (ConflictError, PermissionDeniedError, NotFoundError) as exc:
        problem = t.message(exc.message) if exc.message is not None else str(exc)
        return process_page(
            request, ui, t, context, code, problems=[problem], chosen=set(choices), status_code=409
        )
    answer = ui.redirect(request, f"/budgeting/{code}#ballot-receipt")
    answer.set_cookie(
        RECEIPT_COOKIE,
        receipt_cookie(context, code, receipt.receipt, revised=receipt.revised),
        max_age=RECEIPT_SECONDS,
        httponly=True,
        samesite="lax",
        path=f"/budgeting/{code}",
        secure=context.settings.secure_cookies,
    )
    return answer


RECEIPT_COOKIE = "qala_pb_receipt"
RECEIPT_SECONDS = 30 * 60
"""The receipt is shown again for half an hour after voting (a refresh, a second look) and then
only in the voter's own records."""


def _receipt_signature(context: Context, value: str) -> str:
    key = context.settings.secret_key.encode()
    return hmac.new(key, b"pb-receipt\x00" + value.encode(), "sha256").hexdigest()[:32]


def receipt_cookie(context: Context, code: str, receipt: str, *, revised: bool) -> str:
    value = f"{code}|{receipt}|{int(revised)}"
    return f"{value}|{_receipt_signature(context, value)}"


def receipt_from_cookie(request: Request, context: Context, code: str) -> tuple[str, bool] | None:
    """The receipt this browser was given for ``code`` (signed by this server), and whether
    that ballot was a change of an earlier one."""
    parts = request.cookies.get(RECEIPT_COOKIE, "").split("|")
    if len(parts) != 4 or parts[0] != code:
        return None
    value = "|".join(parts[:3])
    if not hmac.compare_digest(parts[3], _receipt_signature(context, value)):
        return None
    return parts[1], parts[2] == "1"


@router.get("/budgeting/projects/{code}", dependencies=[SEES_USER])
async def project(request: Request, code: str, ui: UIDep, context: ContextDep) -> Response:
    public_key = ledger_signer(context).public_key()
    with context.database.session() as session:
        try:
            detail = projects.get_project(session, code, today=today(context))
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        check = ledger.verify_ledger(session, public_key=public_key)
    return ui.render(request, "budgeting_project.html", project=detail, check=check)


@router.get("/budgeting/{code}/verify")
async def verify(
    request: Request, code: str, user: VoterPage, ui: UIDep, context: ContextDep
) -> Response:
    """Verify who you are with an electronic signature through NCALayer (or a signed file):
    the page's script asks ``/api/v1/auth/identity/challenge`` for a text and posts its
    signature to ``/api/v1/auth/identity/signature`` (``static/js/identity.js``)."""
    with context.database.session() as session:
        try:
            info = process.get_process(session, code)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        methods = verified_methods(session, user.id)
    return ui.render(
        request,
        "budgeting_verify.html",
        info=info,
        verified="signature" in methods,
        ncalayer_url=context.settings.ncalayer_url,
        texts=VERIFY_TEXTS,
    )


VERIFY_TEXTS = (
    "verify.challenge_loading",
    "verify.challenge_failed",
    "verify.connecting",
    "verify.signing",
    "verify.sending",
    "verify.canceled",
    "verify.ncalayer_error",
    "verify.ncalayer_closed",
    "verify.no_file",
    "verify.file_too_big",
    "verify.signed_out",
    "verify.refused.unreadable",
    "verify.refused.other",
    *(
        f"identity.refused.{reason}"
        for reason in (
            "challenge",
            "challenge_expired",
            "not_cms",
            "other_text",
            "unsupported",
            "bad_signature",
            "expired",
            "untrusted",
            "revocation_list",
            "revoked",
            "key_usage",
            "no_iin",
            "not_configured",
            "iin_taken",
            "account_bound",
        )
    ),
)
"""What the verify page's script may say, rendered in the reader's language into the page."""


def projects_maps(context: Context, tracked: list[Any], t: Translator) -> list[CityMap]:
    """One map per place with placed projects (most projects first), the place's districts named
    in the reader's language when the requests component knows them."""
    by_place: dict[str, list[Marker]] = {}
    for project in tracked:
        marker = project_marker(project, t)
        if marker is not None:
            by_place.setdefault(project.place_code, []).append(marker)
    districts = city_districts(context)
    maps = []
    for code, markers in sorted(by_place.items(), key=lambda item: -len(item[1])):
        label = t("pb.map_label", city=place_name(context, code, t))
        drawn = framed(context, code, label, districts.get(code, ()), markers, t)
        if drawn is not None:
            maps.append(drawn)
    return maps


def proposal_districts(context: Context, place_code: str, t: Translator) -> dict[str, str]:
    """District codes a proposal may carry, by name in the reader's language: the process's city
    first, then any other city's (a district process's place is the district itself)."""
    known = city_districts(context)
    ordered = [known.get(place_code, ())] + [d for c, d in known.items() if c != place_code]
    names: dict[str, str] = {}
    for districts in reversed(ordered):
        names.update({str(d["code"]): t.name(district_names(d)) for d in districts})
    return names


def ballot_choices(form: FormData, kind: str) -> list[str] | dict[str, int]:
    """The projects chosen (approval) or the points given to each (cumulative: ``points.<code>``
    fields; a point count that is not a whole number is sent on as -1 for the service to refuse)."""
    if kind != "cumulative":
        return [str(v) for v in form.getlist("project")]
    points: dict[str, int] = {}
    for key in form:
        if key.startswith("points.") and str(form.get(key, "")).strip():
            try:
                points[key[7:]] = int(str(form.get(key)))
            except ValueError:
                points[key[7:]] = -1
    return {k: v for k, v in points.items() if v}


@dataclass(frozen=True)
class ShownReceipt:
    """The receipt box: the code to keep and the chosen projects by name."""

    receipt: str
    revised: bool
    projects: list[str]


def shown_receipt(
    request: Request, context: Context, t: Translator, code: str, titles: dict[str, Any]
) -> ShownReceipt | None:
    kept = receipt_from_cookie(request, context, code)
    if kept is None:
        return None
    with context.database.session() as session:
        try:
            ballot = ballots.check_ballot(session, code, kept[0])
        except NotFoundError:
            return None
    names = [t.name(titles[c]) if c in titles else c for c in ballot.projects]
    return ShownReceipt(kept[0], kept[1], names)


def my_vote(request: Request, context: Context, code: str) -> Any:
    user = getattr(request.state, "user", None)
    if user is None:
        return None
    with context.database.session() as session:
        return ballots.account_vote(session, code, user.id)


def process_page(
    request: Request,
    ui: UI,
    t: Translator,
    context: Context,
    code: str,
    *,
    problems: list[str] | None = None,
    chosen: set[str] | None = None,
    status_code: int = 200,
) -> Response:
    with context.database.session() as session:
        try:
            info = process.get_process(session, code)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        proposals = process.list_proposals(session, code)
        results = None
        if info.phase in ("results", "implementation", "closed"):
            try:
                results = ballots.get_results(session, code)
            except NotFoundError:
                results = None
        tracked = projects.list_projects(session, today=today(context), process_code=code)
    feasible = sorted(
        (p for p in proposals if p.status == "feasible"), key=lambda p: t.name(p.title)
    )
    titles = {p.code: p.title for p in proposals}
    return ui.render(
        request,
        "budgeting_process.html",
        status_code=status_code,
        info=info,
        feasible=feasible,
        proposals=proposals,
        results=results,
        words=pbtext.project_words(results, t) if results is not None else {},
        rule_name=lambda rule: pbtext.rule_name(rule, t),
        projects=tracked,
        district_names=proposal_districts(context, info.place_code, t),
        receipt=shown_receipt(request, context, t, code, titles) if not problems else None,
        voted=my_vote(request, context, code),
        problems=problems or [],
        chosen=chosen or set(),
    )
