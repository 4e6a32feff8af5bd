"""Questions about requests: the public Open311 reads (lists with filters, one request, a token's
request, a citizen following theirs) and the staff's work queue and counts.

The public reads are built for load: the single-row statements are built once, and
:class:`PublicReads` runs them outside a transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Table, bindparam, func, or_, select
from sqlalchemy.orm import Session

from qala.components.requests311.jurisdictions import JurisdictionInfo
from qala.components.requests311.models import STATUSES, AuditEntry, Jurisdiction, Note, Request
from qala.components.requests311.photos import PhotoView, photos_of
from qala.components.requests311.views import (
    OPEN_STATUSES,
    PublicRequest,
    StaffRequest,
    as_utc,
    parse_request_id,
    public_view,
    staff_view,
)
from qala.core.errors import NotFoundError, ValidationError
from qala.store.database import Database

MAX_PAGE_SIZE = 1000
DEFAULT_WINDOW = timedelta(days=90)
"""Open311's default for GET requests without dates or ids: the most recent 90 days."""


@dataclass
class RequestFilter:
    """Open311 GET requests filters (plus ``page``/``page_size``, a common extension)."""

    service_request_ids: list[int] | None = None
    service_codes: list[str] | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    statuses: list[str] | None = None
    page: int = 1
    page_size: int = MAX_PAGE_SIZE


_REQUEST_TABLE = cast(Table, Request.__table__)
_R = _REQUEST_TABLE.c
# Plain table columns, not ORM attributes: Core results then skip per-row ORM adaptation, which
# costs more than the query itself on the hot public read path.
PUBLIC_COLUMNS = tuple(
    _REQUEST_TABLE.c[name]
    for name in (
        "id",
        "status",
        "status_notes",
        "description",
        "service_notice",
        "requested_at",
        "updated_at",
        "expected_at",
        "address_string",
        "address_id",
        "zipcode",
        "lat",
        "lon",
        "media_url",
        "service_id",
        "department_id",
        "supporters",
    )
)


# The two single-row public reads are built once: building and cache-keying a statement per call
# costs more CPU than PostgreSQL spends answering it (bench/requests311_load.py, GET phases).
_ONE_PUBLIC = select(*PUBLIC_COLUMNS).where(
    _R.id == bindparam("request_id"), _R.jurisdiction_id == bindparam("jurisdiction_id")
)
_ID_FOR_TOKEN = select(_R.id).where(
    _R.token == bindparam("token"), _R.jurisdiction_id == bindparam("jurisdiction_id")
)


def find_requests(
    session: Session | Connection,
    jurisdiction: JurisdictionInfo,
    where: RequestFilter,
    *,
    now: datetime,
    language: str = "en",
) -> list[PublicRequest]:
    """Requests matching Open311 filters, newest first. Ids override every other filter; without
    ids or dates the window is the most recent 90 days, as the standard says."""
    query = select(*PUBLIC_COLUMNS).where(_R.jurisdiction_id == jurisdiction.id)
    if where.service_request_ids:
        query = query.where(_R.id.in_(where.service_request_ids)).order_by(_R.id)
    else:
        if where.service_codes:
            ids = [s.id for s in jurisdiction.services.values() if s.code in where.service_codes]
            query = query.where(_R.service_id.in_(ids))
        start, end = where.start_date, where.end_date
        if start is None and end is None:
            start = now - DEFAULT_WINDOW
        if start is not None:
            query = query.where(_R.requested_at >= start)
        if end is not None:
            query = query.where(_R.requested_at <= end)
        if where.statuses:
            wanted: set[str] = set()
            for status in where.statuses:
                wanted.update(OPEN_STATUSES if status == "open" else (status,))
            query = query.where(_R.status.in_(sorted(wanted)))
        size = max(1, min(where.page_size, MAX_PAGE_SIZE))
        query = query.order_by(_R.requested_at.desc(), _R.id.desc())
        query = query.limit(size).offset((max(1, where.page) - 1) * size)
    services = jurisdiction.services_by_id
    return [public_view(row, jurisdiction, services, language) for row in session.execute(query)]


def get_public_request(
    session: Session | Connection,
    jurisdiction: JurisdictionInfo,
    request_id: int,
    *,
    language: str = "en",
) -> PublicRequest:
    row = session.execute(
        _ONE_PUBLIC, {"request_id": request_id, "jurisdiction_id": jurisdiction.id}
    ).first()
    if row is None:
        raise NotFoundError(f"no service request {request_id} in {jurisdiction.code}")
    return public_view(row, jurisdiction, jurisdiction.services_by_id, language)


def request_id_for_token(
    session: Session | Connection, jurisdiction: JurisdictionInfo, token: str
) -> int:
    found = session.scalar(_ID_FOR_TOKEN, {"token": token, "jurisdiction_id": jurisdiction.id})
    if found is None:
        raise NotFoundError("no service request has this token")
    return int(found)


def jurisdiction_of_token(session: Session, token: str) -> str | None:
    """The code of the city whose request carries ``token`` (None when no request does)."""
    found = session.scalar(
        select(Jurisdiction.code)
        .join(Request, Request.jurisdiction_id == Jurisdiction.id)
        .where(Request.token == token)
    )
    return str(found) if found is not None else None


@dataclass(frozen=True)
class PublicUpdate:
    at: datetime
    text: str


@dataclass(frozen=True)
class FollowedRequest:
    """What a citizen following a request sees: the public request and its public updates."""

    request: PublicRequest
    updates: list[PublicUpdate]
    duplicate_of: str | None
    photos: list[PhotoView] = field(default_factory=list)
    """The photos the public may see (none an operator hid), addresses relative to the site."""


def follow_request(
    session: Session, jurisdiction: JurisdictionInfo, id_or_token: str, *, language: str = "en"
) -> FollowedRequest:
    """Look a request up by its id or its token, with the public updates only."""
    request_id = parse_request_id(id_or_token) or request_id_for_token(
        session, jurisdiction, id_or_token
    )
    public = get_public_request(session, jurisdiction, request_id, language=language)
    notes = session.execute(
        select(Note.created_at, Note.text)
        .where(Note.request_id == request_id, Note.public.is_(True))
        .order_by(Note.created_at, Note.id)
    ).all()
    duplicate_of = session.scalar(select(Request.duplicate_of_id).where(Request.id == request_id))
    photos = photos_of(session, [request_id], base_url="", public=True).get(request_id, [])
    return FollowedRequest(
        public,
        [PublicUpdate(as_utc(at) or at, text) for at, text in notes],
        str(duplicate_of) if duplicate_of else None,
        photos,
    )


class PublicReads:
    """One platform's public reads. Each is a single SELECT, so it runs outside a transaction
    (no BEGIN/ROLLBACK round trips) on a Core connection from the store's pool."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._engine = database.engine.execution_options(isolation_level="AUTOCOMMIT")

    def find(
        self, jurisdiction: JurisdictionInfo, where: RequestFilter, *, now: datetime, language: str
    ) -> list[PublicRequest]:
        """:func:`find_requests` on its own connection."""
        with self._engine.connect() as connection:
            return find_requests(connection, jurisdiction, where, now=now, language=language)

    def one(
        self, jurisdiction: JurisdictionInfo, request_id: int, *, language: str
    ) -> PublicRequest:
        """:func:`get_public_request` on its own connection (read on the event loop too)."""
        self._database.ensure_connected()
        with self._engine.connect() as connection:
            return get_public_request(connection, jurisdiction, request_id, language=language)

    def id_for_token(self, jurisdiction: JurisdictionInfo, token: str) -> int:
        """:func:`request_id_for_token` on its own connection."""
        with self._engine.connect() as connection:
            return request_id_for_token(connection, jurisdiction, token)


def request_queue(
    session: Session,
    jurisdiction: JurisdictionInfo,
    *,
    now: datetime,
    department: str | None = None,
    statuses: Sequence[str] = OPEN_STATUSES,
    assignee: str | None = None,
    overdue_only: bool = False,
    limit: int = 200,
    offset: int = 0,
    language: str = "en",
    department_ids: frozenset[int] | None = None,
) -> list[StaffRequest]:
    """A department's work queue: unclosed requests, most escalated and oldest first (only
    ``department_ids``' when given: an operator's own departments)."""
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise ValidationError.single(
            f"unknown status; expected {', '.join(STATUSES)}", column="status", value=bad[0]
        )
    query = select(Request).where(
        Request.jurisdiction_id == jurisdiction.id, Request.status.in_(list(statuses))
    )
    if department is not None:
        query = query.where(Request.department_id == jurisdiction.department_by_code(department).id)
    if department_ids is not None:
        query = query.where(Request.department_id.in_(sorted(department_ids)))
    if assignee is not None:
        query = query.where(Request.assignee == assignee)
    if overdue_only:
        query = query.where(Request.expected_at < now)
    query = (
        query.order_by(Request.escalation_level.desc(), Request.requested_at, Request.id)
        .limit(min(limit, 1000))
        .offset(offset)
    )
    return [
        staff_view(r, jurisdiction, now, full=False, language=language)
        for r in session.scalars(query)
    ]


def newest_request_city(session: Session) -> str | None:
    """The code of the city whose request is the newest (a public list's default city)."""
    return session.scalar(
        select(Jurisdiction.code)
        .join(Request, Request.jurisdiction_id == Jurisdiction.id)
        .order_by(Request.requested_at.desc(), Request.id.desc())
        .limit(1)
    )


def latest_change(session: Session | Connection) -> int:
    """A number that grows with every change to any request (its audit trail's newest id), so
    a board in any server process can tell that it is out of date."""
    return int(session.scalar(select(func.max(AuditEntry.id))) or 0)


def count_requests(session: Session, jurisdiction: JurisdictionInfo) -> dict[str, int]:
    rows = session.execute(
        select(Request.status, func.count())
        .where(Request.jurisdiction_id == jurisdiction.id)
        .group_by(Request.status)
    ).all()
    return {status: int(n) for status, n in rows}


def search_text(
    session: Session, jurisdiction: JurisdictionInfo, text: str, *, limit: int = 50
) -> list[int]:
    """Ids of requests whose description or address mentions ``text`` (for operators)."""
    pattern = f"%{text}%"
    return list(
        session.scalars(
            select(Request.id)
            .where(Request.jurisdiction_id == jurisdiction.id)
            .where(or_(Request.description.ilike(pattern), Request.address_string.ilike(pattern)))
            .order_by(Request.id.desc())
            .limit(limit)
        )
    )
