"""Participatory budgeting pages: processes, the ballot, results, and the project tracker with the
money paid and the check of the tamper-evident ledger.

Everything goes through the ``budgeting`` component: ``process.list_processes/get_process/
list_proposals``, ``ballots.cast_ballot/get_results``, ``projects.list_projects/get_project`` and
``ledger.verify_ledger``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from qala.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from qala.web.i18n import Translator
from qala.web.ui import UI

VOTERS = ("citizen",)


def build_router(ui: UI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    from qala.components.budgeting import ballots, ledger, process, projects

    database = ui.context.database

    def today() -> Any:
        return ui.context.clock().date()

    @router.get("/budgeting")
    async def overview(request: Request) -> Response:
        await ui.user(request)
        with database.session() as session:
            processes = process.list_processes(session)
            tracked = projects.list_projects(session, today=today())
        return ui.render(request, "budgeting.html", processes=processes, projects=tracked)

    def process_page(
        request: Request,
        code: str,
        *,
        receipt: Any = None,
        problems: list[str] | None = None,
        chosen: set[str] | None = None,
        status_code: int = 200,
    ) -> Response:
        t = Translator(ui.language(request))
        with database.session() as session:
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
            tracked = projects.list_projects(session, today=today(), process_code=code)
        feasible = [p for p in proposals if p.status == "feasible"]
        feasible.sort(key=lambda p: t.name(p.title))
        return ui.render(
            request,
            "budgeting_process.html",
            status_code=status_code,
            info=info,
            feasible=feasible,
            proposals=proposals,
            results=results,
            projects=tracked,
            receipt=receipt,
            problems=problems or [],
            chosen=chosen or set(),
        )

    @router.get("/budgeting/{code}")
    async def one_process(request: Request, code: str) -> Response:
        await ui.user(request)
        return process_page(request, code)

    @router.post("/budgeting/{code}/ballot")
    async def cast(request: Request, code: str) -> Response:
        await ui.require(request, VOTERS)
        form = await request.form()
        iin = str(form.get("iin", "")).strip()
        with database.session() as session:
            kind = process.get_process(session, code).ballot_kind
        choices: list[str] | dict[str, int]
        if kind == "cumulative":
            points: dict[str, int] = {}
            for key in form:
                if key.startswith("points.") and str(form.get(key, "")).strip():
                    try:
                        points[key[7:]] = int(str(form.get(key)))
                    except ValueError:
                        points[key[7:]] = -1
            choices = {k: v for k, v in points.items() if v}
        else:
            choices = [str(v) for v in form.getlist("project")]
        try:
            with database.transaction() as session:
                receipt = ballots.cast_ballot(
                    session,
                    code,
                    iin=iin,
                    choices=choices,
                    secret_key=ui.context.settings.secret_key,
                    now=ui.context.clock(),
                    receipt=str(form.get("receipt", "")).strip() or None,
                )
        except ValidationError as exc:
            return process_page(
                request,
                code,
                problems=[str(p) for p in exc.problems],
                chosen=set(choices),
                status_code=422,
            )
        except (ConflictError, PermissionDeniedError, NotFoundError) as exc:
            return process_page(
                request, code, problems=[str(exc)], chosen=set(choices), status_code=409
            )
        return process_page(request, code, receipt=receipt)

    @router.get("/budgeting/projects/{code}")
    async def project(request: Request, code: str) -> Response:
        await ui.user(request)
        with database.session() as session:
            try:
                detail = projects.get_project(session, code, today=today())
            except NotFoundError as exc:
                raise HTTPException(404, str(exc)) from None
            check = ledger.verify_ledger(session)
        return ui.render(request, "budgeting_project.html", project=detail, check=check)

    return router
