"""Staff export of requests as CSV or XLSX, with filters (status, service, department, district,
filing dates); every text cell formula-safe (``requests311.export``)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from qala.components.accounts.deps import CallerFirstRoute, ContextDep
from qala.components.requests311 import services as requests
from qala.components.requests311.export import (
    FORMATS,
    ExportFilter,
    as_csv,
    as_xlsx,
    export_rows,
)
from qala.core.errors import ValidationError
from qala.runtime import Context
from qala.web.deps import OperatorPage, TranslatorDep, UIDep

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False)

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get("/operator/export")
async def export_form(
    request: Request, _user: OperatorPage, ui: UIDep, context: ContextDep, city: str | None = None
) -> Response:
    return ui.render(request, "request_export.html", jurisdiction=city_of(context, city))


@router.get("/operator/export/requests.{fmt}")
async def export_file(
    request: Request, fmt: str, _user: OperatorPage, t: TranslatorDep, context: ContextDep
) -> Response:
    return exported(context, fmt, dict(request.query_params), t.language)


def city_of(context: Context, code: str | None) -> object:
    with context.database.session() as session:
        return requests.pick_jurisdiction(requests.load_jurisdictions(session), code)


def _day(value: str, column: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError.single(
            "expected a date YYYY-MM-DD", column=column, value=value
        ) from None


def exported(context: Context, fmt: str, query: dict[str, str], language: str) -> Response:
    """The filtered requests as a file; a bad filter is a 422 naming it."""
    if fmt not in FORMATS:
        raise HTTPException(404, f"expected one of {', '.join(FORMATS)}")
    jurisdiction = city_of(context, query.get("city") or None)
    wanted = ExportFilter(
        statuses=[s for s in query.get("status", "").split(",") if s],
        services=[s for s in query.get("service", "").split(",") if s],
        department=query.get("department") or None,
        district=query.get("district") or None,
        start=_day(query.get("from", ""), "from"),
        end=_day(query.get("to", ""), "to"),
    )
    with context.database.session() as session:
        rows = export_rows(session, jurisdiction, wanted, language=language)  # type: ignore[arg-type]
    content = as_csv(rows) if fmt == "csv" else as_xlsx(rows)
    name = f"requests-{getattr(jurisdiction, 'code', 'city')}.{fmt}"
    return Response(
        content,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
