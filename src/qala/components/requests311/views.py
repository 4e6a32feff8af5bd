"""How a request is shown: the public view (Open311 fields, never personal data) and the staff
view (with the reporter's contact, notes and audit trail), plus the id and time conventions
both share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.requests311.jurisdictions import JurisdictionInfo, ServiceInfo
from qala.components.requests311.models import AuditEntry, Note, Request
from qala.components.requests311.photos import PhotoView, photos_of
from qala.core.clock import as_utc

OPEN_STATUSES = ("open", "acknowledged", "in_progress")
"""Every status before closed; Open311 shows each of them as ``open``."""
MAX_ID = 2**31 - 1
"""Ids are 32-bit integers in both stores."""


def parse_request_id(text: str) -> int | None:
    """The id ``text`` names (ASCII digits within range), or None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


@dataclass(frozen=True)
class PublicRequest:
    """A request as anyone may see it: Open311 fields, no personal data."""

    service_request_id: str
    status: str
    """``open`` or ``closed`` (Open311)."""
    lifecycle_status: str
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime | None
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    supporters: int = 0
    """Residents who support it instead of filing their own (an extension of Open311)."""


def public_view(
    row: Any, jurisdiction: JurisdictionInfo, services: dict[int, ServiceInfo], language: str
) -> PublicRequest:
    """``row`` (a request's public columns) as anyone may see it."""
    service = services.get(row.service_id)
    department = jurisdiction.departments.get(row.department_id) if row.department_id else None
    return PublicRequest(
        service_request_id=str(row.id),
        status="closed" if row.status == "closed" else "open",
        lifecycle_status=row.status,
        status_notes=row.status_notes,
        service_name=service.names.get(language, service.names["en"]) if service else "",
        service_code=service.code if service else "",
        description=row.description,
        agency_responsible=department.names.get(language) if department else None,
        service_notice=row.service_notice,
        requested_datetime=as_utc(row.requested_at) or row.requested_at,
        updated_datetime=as_utc(row.updated_at),
        expected_datetime=as_utc(row.expected_at),
        address=row.address_string,
        address_id=row.address_id,
        zipcode=row.zipcode,
        lat=row.lat,
        long=row.lon,
        media_url=row.media_url,
        supporters=int(row.supporters or 0),
    )


@dataclass(frozen=True)
class NoteView:
    at: datetime
    author: str
    public: bool
    text: str


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class StaffRequest:
    """A request as operators see it, with the reporter's contact details, notes and audit trail."""

    id: int
    token: str
    jurisdiction: str
    service_code: str
    service_name: str
    status: str
    close_reason: str | None
    department: str | None
    assignee: str | None
    district: str | None
    description: str | None
    address: str | None
    lat: float | None
    lon: float | None
    media_url: str | None
    attributes: dict[str, Any]
    requested_at: datetime
    updated_at: datetime
    expected_at: datetime | None
    closed_at: datetime | None
    overdue: bool
    escalation_level: int
    reopen_count: int
    duplicate_of: int | None
    reporter: dict[str, str | None]
    supporters: int = 0
    """Residents who support it (see ``duplicates.support_request``)."""
    notes: list[NoteView] = field(default_factory=list)
    audit: list[AuditView] = field(default_factory=list)
    photos: list[PhotoView] = field(default_factory=list)
    """Every photo, hidden ones too (with who hid them and why); addresses relative to the
    site."""


def staff_view(
    request: Request,
    jurisdiction: JurisdictionInfo,
    now: datetime,
    *,
    full: bool,
    session: Session | None = None,
    language: str = "en",
) -> StaffRequest:
    """``request`` as operators see it; ``full`` (with ``session``) adds notes and audit trail."""
    service = jurisdiction.services_by_id.get(request.service_id)
    department = (
        jurisdiction.departments.get(request.department_id) if request.department_id else None
    )
    expected = as_utc(request.expected_at)
    notes: list[NoteView] = []
    audit: list[AuditView] = []
    photos: list[PhotoView] = []
    if full and session is not None:
        photos = photos_of(session, [request.id], base_url="", public=False).get(request.id, [])
        notes = [
            NoteView(as_utc(n.created_at) or n.created_at, n.author, n.public, n.text)
            for n in session.scalars(
                select(Note).where(Note.request_id == request.id).order_by(Note.created_at, Note.id)
            )
        ]
        audit = [
            AuditView(as_utc(a.at) or a.at, a.actor, a.action, a.changes)
            for a in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.request_id == request.id)
                .order_by(AuditEntry.at, AuditEntry.id)
            )
        ]
    return StaffRequest(
        id=request.id,
        token=request.token,
        jurisdiction=jurisdiction.code,
        service_code=service.code if service else "",
        service_name=service.names.get(language, "") if service else "",
        status=request.status,
        close_reason=request.close_reason,
        department=department.code if department else None,
        assignee=request.assignee,
        district=request.district,
        description=request.description,
        address=request.address_string,
        lat=request.lat,
        lon=request.lon,
        media_url=request.media_url,
        attributes=dict(request.attributes or {}),
        requested_at=as_utc(request.requested_at) or request.requested_at,
        updated_at=as_utc(request.updated_at) or request.updated_at,
        expected_at=expected,
        closed_at=as_utc(request.closed_at),
        overdue=request.status != "closed" and expected is not None and expected < now,
        escalation_level=request.escalation_level,
        reopen_count=request.reopen_count,
        duplicate_of=request.duplicate_of_id,
        reporter={
            "email": request.email,
            "phone": request.phone,
            "first_name": request.first_name,
            "last_name": request.last_name,
            "device_id": request.device_id,
            "account_id": request.account_id,
        },
        supporters=int(request.supporters or 0),
        notes=notes,
        audit=audit,
        photos=photos,
    )
