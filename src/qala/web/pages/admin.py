"""Analysts' and administrators' page: import a data file (with its validation report), build the
rating, and see who has an account."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from qala.components.accounts.services import list_users
from qala.components.catalog.services import check_file, import_file
from qala.core.errors import QalaError
from qala.web.data import installed
from qala.web.i18n import Translator
from qala.web.ui import UI

ANALYSTS = ("analyst",)
ALLOWED_SUFFIXES = (".csv", ".xlsx", ".parquet", ".json", ".tsv")


def build_router(ui: UI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    database = ui.context.database

    def page(request: Request, *, status_code: int = 200, **values: Any) -> Response:
        users = []
        user = getattr(request.state, "user", None)
        if user is not None and user.role == "administrator":
            with database.session() as session:
                users = [
                    {
                        "username": u.username,
                        "name": u.display_name,
                        "role": u.role,
                        "department": u.department,
                    }
                    for u in list_users(session)
                ]
        runs: list[Any] = []
        if installed("rating"):
            from qala.components.rating import services as rating

            with database.session() as session:
                runs = rating.list_runs(session)[:10]
        values.setdefault("report", None)
        values.setdefault("built", None)
        values.setdefault("error", None)
        return ui.render(
            request,
            "admin.html",
            status_code=status_code,
            users=users,
            runs=runs,
            rating_installed=installed("rating"),
            max_mb=ui.context.settings.max_upload_bytes // (1024 * 1024),
            **values,
        )

    @router.get("/admin")
    async def admin(request: Request) -> Response:
        await ui.require(request, ANALYSTS)
        return page(request)

    @router.post("/admin/import")
    async def import_data(request: Request) -> Response:
        user = await ui.require(request, ANALYSTS)
        t = Translator(ui.language(request))
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return page(request, status_code=422, error=t("admin.no_file"))
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in ALLOWED_SUFFIXES:
            return page(
                request,
                status_code=422,
                error=t("admin.bad_suffix", suffixes=", ".join(ALLOWED_SUFFIXES)),
            )
        content = await upload.read(ui.context.settings.max_upload_bytes + 1)
        if len(content) > ui.context.settings.max_upload_bytes:
            return page(request, status_code=413, error=t("admin.too_big"))
        mode = str(form.get("mode", "check"))
        with tempfile.TemporaryDirectory() as folder:
            # Keep the uploaded name: problems are reported against it.
            path = Path(folder) / Path(upload.filename).name
            path.write_bytes(content)
            try:
                if mode == "check":
                    result = check_file(database, path)
                    report = {
                        "file": result.file,
                        "rows": result.rows_total,
                        "accepted": len(result.values),
                        "rejected_rows": result.rejected_rows,
                        "written": False,
                        "rows_written": 0,
                        "problems": [p.as_dict() for p in result.problems],
                        "warnings": [p.as_dict() for p in result.warnings],
                    }
                else:
                    report = import_file(
                        database, path, partial=(mode == "partial"), imported_by=user.username
                    ).as_dict()
            except QalaError as exc:
                problems = getattr(exc, "problems", None)
                return page(
                    request,
                    status_code=422,
                    error=str(exc),
                    report={"problems": [p.as_dict() for p in problems]} if problems else None,
                )
        return page(request, report=report, mode=mode)

    @router.post("/admin/build")
    async def build(request: Request) -> Response:
        await ui.require(request, ANALYSTS)
        if not installed("rating"):
            return page(request, status_code=404, error="rating component not installed")
        from qala.components.rating import services as rating

        form = await request.form()
        try:
            replications = max(0, min(2000, int(str(form.get("replications", "200")))))
            year_text = str(form.get("year", "")).strip()
            year = int(year_text) if year_text else None
        except ValueError:
            return page(
                request, status_code=422, error="replications and year must be whole numbers"
            )
        try:
            outcome = rating.build_rating(database, year=year, replications=replications)
        except QalaError as exc:
            return page(request, status_code=422, error=str(exc))
        summary = outcome.to_json_dict()
        built = {
            "run_id": outcome.run_id,
            "year": outcome.year,
            "places": len(summary["ranks"]),
            "replications": summary["replications"],
            "illustrative": summary["illustrative"],
            "warnings": summary["warnings"],
        }
        return page(request, built=built)

    return router
