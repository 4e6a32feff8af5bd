"""Tables of citizen service requests: jurisdictions, departments, the service catalogue, routing
rules, trusted API clients, requests, their notes and the audit trail.

Reporters' personal data (email, phone, names, device id, account id) lives only on
``Request``; the public Open311 serialisers never read those columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from qala.store.base import Base, utcnow

STATUSES = ("open", "acknowledged", "in_progress", "closed")
"""Internal lifecycle. Open311 shows ``closed`` as closed and every other status as ``open``."""


class Jurisdiction(Base):
    """A city that takes requests (Open311 ``jurisdiction_id`` is its place code, e.g. ``astana``)."""

    __tablename__ = "requests311_jurisdiction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    name_kk: Mapped[str] = mapped_column(String(200))
    name_ru: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    anonymous_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    """Whether reports without an API key are accepted (as Astana's 109 does)."""
    contact: Mapped[str | None] = mapped_column(Text)
    key_service: Mapped[str | None] = mapped_column(Text)
    """Where client developers ask for an API key (Open311 discovery ``key_service``)."""
    districts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Districts as {code, name_kk, name_ru, name_en, lat, lon}; a request's district is the nearest."""
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Where the city takes reports: {lat, lon, radius_km, boundary (GeoJSON or null)}; null
    takes any point (a catalogue loaded without a known place)."""


class Department(Base):
    """A unit of the akimat (or a utility) responsible for some requests."""

    __tablename__ = "requests311_department"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction_id: Mapped[int] = mapped_column(
        ForeignKey("requests311_jurisdiction.id"), index=True
    )
    code: Mapped[str] = mapped_column(String(80))
    name_kk: Mapped[str] = mapped_column(String(300))
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("jurisdiction_id", "code"),)


class Service(Base):
    """One request type of a city's catalogue (an Open311 service with its definition)."""

    __tablename__ = "requests311_service"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction_id: Mapped[int] = mapped_column(
        ForeignKey("requests311_jurisdiction.id"), index=True
    )
    code: Mapped[str] = mapped_column(String(80))
    name_kk: Mapped[str] = mapped_column(String(300))
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    description_kk: Mapped[str] = mapped_column(Text, default="")
    description_ru: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    group: Mapped[str] = mapped_column(String(120), default="")
    keywords: Mapped[str] = mapped_column(Text, default="")
    service_type: Mapped[str] = mapped_column(String(16), default="realtime")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("requests311_department.id"))
    sla_hours: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Open311 attribute definitions (code, datatype, required, order, descriptions, values)."""

    __table_args__ = (
        UniqueConstraint("jurisdiction_id", "code"),
        CheckConstraint("sla_hours > 0", name="sla_positive"),
        CheckConstraint("service_type in ('realtime','batch','blackbox')", name="type_known"),
    )


class RoutingRule(Base):
    """Which department takes a request of a service (or any service) in a district (or anywhere).

    The most specific matching rule wins (service and district > service > district), then the
    lowest ``priority``; with no rule the service's own department takes it.
    """

    __tablename__ = "requests311_routing_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction_id: Mapped[int] = mapped_column(
        ForeignKey("requests311_jurisdiction.id"), index=True
    )
    service_code: Mapped[str | None] = mapped_column(String(80))
    district: Mapped[str | None] = mapped_column(String(80))
    department_id: Mapped[int] = mapped_column(ForeignKey("requests311_department.id"))
    priority: Mapped[int] = mapped_column(Integer, default=100)


class ApiClient(Base):
    """A trusted client application holding an Open311 ``api_key`` (only its hash is stored)."""

    __tablename__ = "requests311_api_client"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Request(Base):
    """A citizen's service request."""

    __tablename__ = "requests311_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("requests311_jurisdiction.id"))
    # Indexed first in ix_requests311_request_service_lat_lon, which serves lookups by service.
    service_id: Mapped[int] = mapped_column(ForeignKey("requests311_service.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("requests311_department.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    close_reason: Mapped[str | None] = mapped_column(String(40))
    status_notes: Mapped[str | None] = mapped_column(Text)
    """The latest public update, shown to everyone."""
    service_notice: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address_string: Mapped[str | None] = mapped_column(Text)
    address_id: Mapped[str | None] = mapped_column(String(120))
    zipcode: Mapped[str | None] = mapped_column(String(20))
    district: Mapped[str | None] = mapped_column(String(80))
    media_url: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    assignee: Mapped[str | None] = mapped_column(String(120))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("requests311_request.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Personal data: never serialised by the public API.
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    device_id: Mapped[str | None] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(200))
    api_client_id: Mapped[int | None] = mapped_column(ForeignKey("requests311_api_client.id"))
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    """Generated demo data, never real reports."""
    supporters: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """How many residents support this request instead of filing their own (``Support`` rows,
    counted here so public reads need no join)."""

    __table_args__ = (
        CheckConstraint(
            "status in ('open','acknowledged','in_progress','closed')", name="status_known"
        ),
        # Duplicate hints: a service's requests in a small latitude band (then longitude) are read
        # straight off this index before the exact distance is computed.
        Index("ix_requests311_request_service_lat_lon", "service_id", "lat", "lon"),
        # `id` breaks ties in the public list's order (newest first), so a page is read straight
        # off the index instead of sorting every request in the 90-day window.
        Index(
            "ix_requests311_request_jurisdiction_requested_id",
            "jurisdiction_id",
            "requested_at",
            "id",
        ),
        # The same for a list of one service (the usual filter): a rare service's page is found
        # without walking past every other service's requests.
        Index(
            "ix_requests311_request_service_requested_id",
            "jurisdiction_id",
            "service_id",
            "requested_at",
            "id",
        ),
        Index("ix_requests311_request_department_status", "department_id", "status"),
    )


class Support(Base):
    """A resident supporting an open request ("me too") instead of filing a duplicate.

    One row per supporter and request: ``supporter_key`` is ``account:<username>``,
    ``email:<hash>`` or ``token:<hash>`` (an anonymous browser's follow token); ``token_key`` keeps
    the browser's token too when the resident also gave an e-mail, so either finds the row.
    """

    __tablename__ = "requests311_support"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests311_request.id"), index=True)
    supporter_key: Mapped[str] = mapped_column(String(80))
    token_key: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Personal data: for staff only, never serialised by the public API.
    account_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))

    __table_args__ = (UniqueConstraint("request_id", "supporter_key"),)


class Note(Base):
    """An update on a request: ``public`` ones reach the citizen, internal ones stay with staff."""

    __tablename__ = "requests311_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests311_request.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    author: Mapped[str] = mapped_column(String(120))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)


class AuditEntry(Base):
    """One change to a request: who, when, what (field → [before, after])."""

    __tablename__ = "requests311_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests311_request.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RateWindow(Base):
    """Public writes per client in the current and the previous window, shared by every server
    process (each also keeps its own counts in memory as a cheap first check)."""

    __tablename__ = "requests311_rate_window"

    client_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds at which the current window began (a multiple of the window's length)."""
    count: Mapped[int] = mapped_column(Integer)
    previous: Mapped[int] = mapped_column(Integer)
    """Writes in the window before ``window_start``."""


class Photo(Base):
    """A resident's photo of a request: the re-encoded file (no EXIF) and its thumbnail, kept in
    the photo store under random names; an operator may hide one from the public, with a reason."""

    __tablename__ = "requests311_photo"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests311_request.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    thumb_name: Mapped[str] = mapped_column(String(48))
    content_type: Mapped[str] = mapped_column(String(20))
    """The type the stored bytes were encoded as (``image/jpeg`` or ``image/png``)."""
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    hidden_by: Mapped[str | None] = mapped_column(String(120))
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("request_id", "position"),)
