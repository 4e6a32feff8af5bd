"""Requests as spreadsheets for staff (CSV, XLSX), filtered, and a signed-in resident's own
requests ("mine").

Every text cell goes through :func:`qala.core.cells.neutralise`: a description a resident typed
as ``=HYPERLINK(…)`` stays text in Excel and LibreOffice. Reporters' contact details are never
exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.requests311.jurisdictions import JurisdictionInfo
from qala.components.requests311.models import STATUSES, Jurisdiction, Request, Service
from qala.components.requests311.views import as_utc
from qala.core.cells import neutralise
from qala.core.errors import Problem, raise_if_problems

MAX_EXPORT_ROWS = 100_000
FORMATS = ("csv", "xlsx")
COLUMNS = (
    "id",
    "status",
    "close_reason",
    "service_code",
    "service",
    "department",
    "district",
    "assignee",
    "description",
    "address",
    "lat",
    "long",
    "requested_at",
    "expected_at",
    "closed_at",
    "escalation_level",
    "reopen_count",
    "duplicate_of",
    "public_note",
)


@dataclass
class ExportFilter:
    """Which requests: by status, service, department, district and filing date (inclusive)."""

    statuses: Sequence[str] = ()
    services: Sequence[str] = ()
    department: str | None = None
    district: str | None = None
    start: date | None = None
    end: date | None = None


def _check(jurisdiction: JurisdictionInfo, wanted: ExportFilter) -> None:
    problems: list[Problem] = []
    for status in wanted.statuses:
        if status not in STATUSES:
            problems.append(
                Problem(f"expected one of {', '.join(STATUSES)}", column="status", value=status)
            )
    for code in wanted.services:
        if code not in jurisdiction.services:
            problems.append(
                Problem(f"no such service in {jurisdiction.code}", column="service", value=code)
            )
    if wanted.department and not any(
        d.code == wanted.department for d in jurisdiction.departments.values()
    ):
        problems.append(
            Problem(
                f"no such department in {jurisdiction.code}",
                column="department",
                value=wanted.department,
            )
        )
    if wanted.start and wanted.end and wanted.start > wanted.end:
        problems.append(Problem("the start is after the end", column="from"))
    raise_if_problems(problems, "the export filters are invalid")


def export_rows(
    session: Session, jurisdiction: JurisdictionInfo, wanted: ExportFilter, *, language: str
) -> list[list[Any]]:
    """The header and one row per request (oldest first); raises ValidationError naming each bad
    filter."""
    _check(jurisdiction, wanted)
    query = select(Request).where(Request.jurisdiction_id == jurisdiction.id)
    if wanted.statuses:
        query = query.where(Request.status.in_(list(wanted.statuses)))
    if wanted.services:
        ids = [jurisdiction.services[code].id for code in wanted.services]
        query = query.where(Request.service_id.in_(ids))
    if wanted.department:
        query = query.where(
            Request.department_id == jurisdiction.department_by_code(wanted.department).id
        )
    if wanted.district:
        query = query.where(Request.district == wanted.district)
    if wanted.start:
        query = query.where(Request.requested_at >= datetime.combine(wanted.start, time.min))
    if wanted.end:
        end = datetime.combine(wanted.end + timedelta(days=1), time.min)
        query = query.where(Request.requested_at < end)
    query = query.order_by(Request.requested_at, Request.id).limit(MAX_EXPORT_ROWS)
    services = {s.id: s for s in jurisdiction.services.values()}
    rows: list[list[Any]] = [list(COLUMNS)]
    for r in session.scalars(query):
        service = services.get(r.service_id)
        department = jurisdiction.departments.get(r.department_id) if r.department_id else None
        rows.append(
            [
                r.id,
                r.status,
                r.close_reason,
                service.code if service else "",
                (service.names.get(language) or service.names.get("en", "")) if service else "",
                department.code if department else "",
                r.district,
                r.assignee,
                r.description,
                r.address_string,
                r.lat,
                r.lon,
                _stamp(r.requested_at),
                _stamp(r.expected_at),
                _stamp(r.closed_at),
                r.escalation_level,
                r.reopen_count,
                r.duplicate_of_id,
                r.status_notes,
            ]
        )
    return [[neutralise(cell) for cell in row] for row in rows]


def _stamp(moment: datetime | None) -> str | None:
    found = as_utc(moment)
    return found.isoformat(timespec="seconds") if found else None


def as_csv(rows: list[list[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel reads Kazakh and Russian text right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def as_xlsx(rows: list[list[Any]], *, title: str = "requests") -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    for row in rows:
        # Neutralised already: no text starts with "=", which openpyxl would store as a formula.
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class MyRequest:
    """One of a resident's own requests, for their "mine" page."""

    id: int
    token: str
    city: str
    service_names: dict[str, str]
    status: str
    close_reason: str | None
    requested_at: datetime
    updated_at: datetime


def requests_of_account(session: Session, account: str, *, limit: int = 200) -> list[MyRequest]:
    """The requests filed while signed in as ``account``, newest first."""
    query = (
        select(Request, Jurisdiction.code)
        .join(Jurisdiction, Jurisdiction.id == Request.jurisdiction_id)
        .where(Request.account_id == account)
        .order_by(Request.requested_at.desc(), Request.id.desc())
        .limit(limit)
    )
    found: list[MyRequest] = []
    for request, city in session.execute(query).all():
        service = session.get(Service, request.service_id)
        names = (
            {"kk": service.name_kk, "ru": service.name_ru, "en": service.name_en} if service else {}
        )
        found.append(
            MyRequest(
                request.id,
                request.token,
                city,
                names,
                request.status,
                request.close_reason,
                as_utc(request.requested_at) or request.requested_at,
                as_utc(request.updated_at) or request.updated_at,
            )
        )
    return found
