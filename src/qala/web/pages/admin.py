"""Analysts' and administrators' page: import a data file (with its validation report), build the
rating, and see who has an account."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from qala.components.accounts.deps import DATA_FILE_BODY, CallerFirstRoute, ContextDep
from qala.components.accounts.scope import StaffScope
from qala.components.accounts.services import list_users
from qala.components.catalog.services import check_file, import_file
from qala.core.errors import PermissionDeniedError, QalaError
from qala.runtime import Context
from qala.web.data import installed
from qala.web.deps import AnalystPage, TranslatorDep, UIDep
from qala.web.ui import UI

ALLOWED_SUFFIXES = (".csv", ".xlsx", ".parquet", ".json", ".tsv")


router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)


@router.get("/admin")
async def admin(request: Request, _user: AnalystPage, ui: UIDep, context: ContextDep) -> Response:
    return page(request, ui, context)


@router.post("/admin/import", max_body_size=DATA_FILE_BODY)
async def import_data(
    request: Request, user: AnalystPage, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return page(request, ui, context, status_code=422, error=t("admin.no_file"))
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        error = t("admin.bad_suffix", suffixes=", ".join(ALLOWED_SUFFIXES))
        return page(request, ui, context, status_code=422, error=error)
    content = await upload.read(context.settings.max_upload_bytes + 1)
    if len(content) > context.settings.max_upload_bytes:
        return page(request, ui, context, status_code=413, error=t("admin.too_big"))
    mode = str(form.get("mode", "check"))
    try:
        report = check_or_import(context, upload.filename, content, mode, user)
    except PermissionDeniedError as exc:
        error = t.message(exc.message) if exc.message is not None else str(exc)
        return page(request, ui, context, status_code=403, error=error)
    except QalaError as exc:
        problems = getattr(exc, "problems", None)
        found = {"problems": [p.as_dict() for p in problems]} if problems else None
        # The problems are listed in the reader's language below; the banner says so.
        error = t("admin.file_refused") if found else t.message(exc.message) or str(exc)
        return page(request, ui, context, status_code=422, error=error, report=found)
    return page(request, ui, context, report=report, mode=mode)


@router.post("/admin/build")
async def build(
    request: Request, user: AnalystPage, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    if not StaffScope.of(user).national:
        raise HTTPException(403, "the national rating is built by national staff")
    if not installed("rating"):
        return page(request, ui, context, status_code=404, error=t("admin.no_rating"))
    from qala.components.rating import services as rating

    form = await request.form()
    try:
        replications = max(0, min(2000, int(str(form.get("replications", "200")))))
        year_text = str(form.get("year", "")).strip()
        year = int(year_text) if year_text else None
    except ValueError:
        error = t("admin.whole_numbers")
        return page(request, ui, context, status_code=422, error=error)
    try:
        outcome = rating.build_rating(context.database, year=year, replications=replications)
    except QalaError as exc:
        return page(request, ui, context, status_code=422, error=t.error(exc))
    summary = outcome.to_json_dict()
    built = {
        "run_id": outcome.run_id,
        "year": outcome.year,
        "places": len(summary["ranks"]),
        "replications": summary["replications"],
        "illustrative": summary["illustrative"],
        "warnings": summary["warnings"],
    }
    return page(request, ui, context, built=built)


def check_or_import(
    context: Context, filename: str, content: bytes, mode: str, user: Any
) -> dict[str, Any]:
    """Check the uploaded file (``mode`` check) or import it (``partial``: the valid rows);
    only rows of the importer's place are written."""
    with tempfile.TemporaryDirectory() as folder:
        # Keep the uploaded name: problems are reported against it.
        path = Path(folder) / Path(filename).name
        path.write_bytes(content)
        if mode != "check":
            partial = mode == "partial"
            return import_file(
                context.database,
                path,
                partial=partial,
                imported_by=user.username,
                name=path.name,
                place_scope=StaffScope.of(user).place,
            ).as_dict()
        result = check_file(context.database, path, name=path.name)
        return {
            "file": result.file,
            "rows": result.rows_total,
            "accepted": len(result.values),
            "rejected_rows": result.rejected_rows,
            "written": False,
            "rows_written": 0,
            "problems": [p.as_dict() for p in result.problems],
            "warnings": [p.as_dict() for p in result.warnings],
        }


def page(
    request: Request, ui: UI, context: Context, *, status_code: int = 200, **values: Any
) -> Response:
    """The page with the accounts (administrators only), the latest rating runs and the
    outcome of what was just done."""
    users = []
    user = getattr(request.state, "user", None)
    if user is not None and user.role == "administrator":
        with context.database.session() as session:
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

        with context.database.session() as session:
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
        max_mb=context.settings.max_upload_bytes // (1024 * 1024),
        **values,
    )
