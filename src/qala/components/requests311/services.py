"""What the requests component does: keep a city's catalogue, take requests, move them through
their lifecycle (with routing, escalation and an audit trail) and answer questions about them.

Every function takes a SQLAlchemy ``Session`` (the caller owns the transaction) and returns plain
dataclasses, so the Open311 API, the operator API, the CLI and the dashboard are thin shells.
Reporters' personal data only ever appears in :class:`StaffRequest`.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, or_, select
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from qala.components.requests311.catalogue import (
    AttributeDefinition,
    CityCatalogue,
    check_attributes,
)
from qala.components.requests311.models import (
    STATUSES,
    ApiClient,
    AuditEntry,
    Department,
    Jurisdiction,
    Note,
    Request,
    RoutingRule,
    Service,
)
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    ValidationError,
    raise_if_problems,
)
from qala.events import Event, EventBus

CLOSE_REASONS = ("resolved", "duplicate", "not_actionable", "out_of_jurisdiction", "withdrawn")
"""Why a request was closed; ``duplicate`` is set only by :func:`merge_duplicate`."""
OPEN_STATUSES = ("open", "acknowledged", "in_progress")
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 500
MAX_URL = 2048
MAX_NOTE = 4000
MAX_PAGE_SIZE = 1000
DEFAULT_WINDOW = timedelta(days=90)
"""Open311's default for GET requests without dates or ids: the most recent 90 days."""
ESCALATION_LEVELS = 3
MAX_ID = 2**31 - 1
"""Ids are 32-bit integers in both stores."""


def parse_request_id(text: str) -> int | None:
    """The id ``text`` names (ASCII digits within range), or None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive date-times; every stored time is UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _name(row: Any, prefix: str, language: str) -> str:
    return str(getattr(row, f"{prefix}_{language}", None) or getattr(row, f"{prefix}_en", "") or "")


def publish_after_commit(session: Session, bus: EventBus | None, event: Event) -> None:
    """Publish ``event`` once the session's transaction has committed and given its connection
    back to the pool (never for rolled-back work).

    Subscribers (other components) write in their own transactions: publishing inside ours would
    let them see uncommitted ids, wait on our write lock (SQLite) or, under load, need a second
    pooled connection per request while holding the first, which can drain the pool.
    """
    if bus is None:
        return
    if _PENDING_EVENTS not in session.info:
        session.info[_PENDING_EVENTS] = []
        sqlalchemy_event.listen(session, "after_commit", _mark_committed)
        sqlalchemy_event.listen(session, "after_transaction_end", _publish_if_committed)
    session.info[_PENDING_EVENTS].append((bus, event))


_PENDING_EVENTS = "requests311.pending_events"
_COMMITTED = "requests311.committed"


def _mark_committed(session: Session) -> None:
    # SQLAlchemy also calls after_commit when a savepoint is released; wait for the real commit.
    if not session.in_nested_transaction():
        session.info[_COMMITTED] = True


def _publish_if_committed(session: Session, transaction: Any) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    pending = session.info.get(_PENDING_EVENTS, [])
    session.info[_PENDING_EVENTS] = []
    if session.info.pop(_COMMITTED, False):
        for bus, event in pending:
            bus.publish(event)


def _pending_count(session: Session) -> int:
    return len(session.info.get(_PENDING_EVENTS, []))


def _forget_pending_after(session: Session, count: int) -> None:
    """Drop events of work rolled back to a savepoint."""
    if _PENDING_EVENTS in session.info:
        del session.info[_PENDING_EVENTS][count:]


# ---------------------------------------------------------------------------------------------
# The catalogue in memory


@dataclass(frozen=True)
class ServiceInfo:
    id: int
    code: str
    names: dict[str, str]
    descriptions: dict[str, str]
    group: str
    keywords: tuple[str, ...]
    service_type: str
    department_id: int | None
    sla_hours: float
    active: bool
    attributes: tuple[AttributeDefinition, ...]

    @property
    def metadata(self) -> bool:
        """Open311 ``metadata``: whether the service has a definition (form attributes)."""
        return bool(self.attributes)


@dataclass(frozen=True)
class DepartmentInfo:
    id: int
    code: str
    names: dict[str, str]


@dataclass(frozen=True)
class JurisdictionInfo:
    id: int
    code: str
    names: dict[str, str]
    anonymous_allowed: bool
    contact: str | None
    key_service: str | None
    districts: tuple[dict[str, Any], ...]
    services: dict[str, ServiceInfo]
    departments: dict[int, DepartmentInfo]
    routing: tuple[tuple[str | None, str | None, int, int], ...]
    """(service_code, district, priority, department_id), most specific first."""

    def service(self, code: str) -> ServiceInfo:
        found = self.services.get(code)
        if found is None or not found.active:
            raise NotFoundError(f"no service `{code}` in {self.code}; GET services lists them")
        return found

    def department_by_code(self, code: str) -> DepartmentInfo:
        for department in self.departments.values():
            if department.code == code:
                return department
        raise NotFoundError(f"no department `{code}` in {self.code}")

    def route(self, service_code: str, district: str | None) -> int | None:
        """The department for a request: the most specific routing rule, else the service's own."""
        for rule_service, rule_district, _priority, department_id in self.routing:
            if (rule_service in (None, service_code)) and (rule_district in (None, district)):
                return department_id
        return self.services[service_code].department_id

    def nearest_district(
        self, lat: float | None, lon: float | None, *, within_km: float = 25.0
    ) -> str | None:
        """The district whose centre is nearest to the point (None when none is within reach)."""
        if lat is None or lon is None:
            return None
        best: tuple[float, str] | None = None
        for district in self.districts:
            if district.get("lat") is None or district.get("lon") is None:
                continue
            km = haversine_km(lat, lon, float(district["lat"]), float(district["lon"]))
            if km <= within_km and (best is None or km < best[0]):
                best = (km, str(district["code"]))
        return best[1] if best else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def load_jurisdictions(session: Session) -> dict[str, JurisdictionInfo]:
    """Every city's catalogue, read once (the API keeps it in a short-lived cache)."""
    result: dict[str, JurisdictionInfo] = {}
    services_by: dict[int, dict[str, ServiceInfo]] = {}
    for s in session.scalars(select(Service).order_by(Service.jurisdiction_id, Service.code)):
        services_by.setdefault(s.jurisdiction_id, {})[s.code] = ServiceInfo(
            id=s.id,
            code=s.code,
            names={lang: _name(s, "name", lang) for lang in ("kk", "ru", "en")},
            descriptions={lang: _name(s, "description", lang) for lang in ("kk", "ru", "en")},
            group=s.group,
            keywords=tuple(k for k in s.keywords.split(",") if k),
            service_type=s.service_type,
            department_id=s.department_id,
            sla_hours=s.sla_hours,
            active=s.active,
            attributes=tuple(
                sorted(
                    (AttributeDefinition.from_json(a) for a in s.attributes or []),
                    key=lambda a: a.order,
                )
            ),
        )
    departments_by: dict[int, dict[int, DepartmentInfo]] = {}
    for d in session.scalars(select(Department)):
        departments_by.setdefault(d.jurisdiction_id, {})[d.id] = DepartmentInfo(
            d.id, d.code, {lang: _name(d, "name", lang) for lang in ("kk", "ru", "en")}
        )
    rules_by: dict[int, list[tuple[str | None, str | None, int, int]]] = {}
    for r in session.scalars(select(RoutingRule)):
        rules_by.setdefault(r.jurisdiction_id, []).append(
            (r.service_code, r.district, r.priority, r.department_id)
        )
    for j in session.scalars(select(Jurisdiction)):
        rules = sorted(
            rules_by.get(j.id, []),
            key=lambda rule: (-(rule[0] is not None) * 2 - (rule[1] is not None), rule[2]),
        )
        result[j.code] = JurisdictionInfo(
            id=j.id,
            code=j.code,
            names={lang: _name(j, "name", lang) for lang in ("kk", "ru", "en")},
            anonymous_allowed=j.anonymous_allowed,
            contact=j.contact,
            key_service=j.key_service,
            districts=tuple(j.districts or ()),
            services=services_by.get(j.id, {}),
            departments=departments_by.get(j.id, {}),
            routing=tuple(rules),
        )
    return result


class CatalogueCache:
    """Jurisdictions and services kept in memory for ``ttl`` seconds (catalogues change rarely;
    every request handler would otherwise re-read them)."""

    def __init__(self, sessions: Callable[[], Any], *, ttl: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._loaded_at = -math.inf
        self._value: dict[str, JurisdictionInfo] = {}
        self._lock = threading.Lock()

    @property
    def fresh(self) -> bool:
        """Whether ``get`` will answer from memory, without reading the store."""
        return time.monotonic() - self._loaded_at <= self._ttl

    def get(self) -> dict[str, JurisdictionInfo]:
        if time.monotonic() - self._loaded_at > self._ttl:
            with self._lock:
                if time.monotonic() - self._loaded_at > self._ttl:
                    with self._sessions() as session:
                        self._value = load_jurisdictions(session)
                    self._loaded_at = time.monotonic()
        return self._value

    def invalidate(self) -> None:
        self._loaded_at = -math.inf

    def jurisdiction(self, code: str | None) -> JurisdictionInfo:
        """The named jurisdiction, or the only one when none is named."""
        known = self.get()
        return pick_jurisdiction(known, code)


def pick_jurisdiction(known: dict[str, JurisdictionInfo], code: str | None) -> JurisdictionInfo:
    if code:
        found = known.get(code.strip().lower())
        if found is None:
            raise NotFoundError(
                f"no jurisdiction `{code[:80]}`; known: {', '.join(sorted(known)) or 'none yet'}"
            )
        return found
    if len(known) == 1:
        return next(iter(known.values()))
    if not known:
        raise NotFoundError("no city has a service catalogue yet (`qala requests load-catalogue`)")
    raise ValidationError(
        [
            Problem(
                f"this server serves several cities; name one of {', '.join(sorted(known))}",
                column="jurisdiction_id",
                code="required",
            )
        ],
        "jurisdiction_id is required",
    )


# ---------------------------------------------------------------------------------------------
# Writing the catalogue


def load_catalogue(session: Session, catalogue: CityCatalogue) -> JurisdictionInfo:
    """Create or update a city's jurisdiction, departments, services and routing (idempotent).

    Services missing from ``catalogue`` are deactivated, never deleted (requests point at them).
    """
    jurisdiction = session.scalar(select(Jurisdiction).where(Jurisdiction.code == catalogue.code))
    if jurisdiction is None:
        jurisdiction = Jurisdiction(code=catalogue.code)
        session.add(jurisdiction)
    jurisdiction.name_kk, jurisdiction.name_ru, jurisdiction.name_en = (
        catalogue.name[k] for k in ("kk", "ru", "en")
    )
    jurisdiction.anonymous_allowed = catalogue.anonymous_allowed
    jurisdiction.contact, jurisdiction.key_service = catalogue.contact, catalogue.key_service
    jurisdiction.districts = [
        {
            "code": d.code,
            "name_kk": d.name["kk"],
            "name_ru": d.name["ru"],
            "name_en": d.name["en"],
            "lat": d.lat,
            "lon": d.lon,
        }
        for d in catalogue.districts
    ]
    session.flush()
    departments = {
        d.code: d
        for d in session.scalars(
            select(Department).where(Department.jurisdiction_id == jurisdiction.id)
        )
    }
    for definition in catalogue.departments:
        department = departments.get(definition.code) or Department(
            jurisdiction_id=jurisdiction.id, code=definition.code
        )
        department.name_kk, department.name_ru, department.name_en = (
            definition.name[k] for k in ("kk", "ru", "en")
        )
        department.email = definition.email
        if definition.code not in departments:
            session.add(department)
            departments[definition.code] = department
    session.flush()
    services = {
        s.code: s
        for s in session.scalars(select(Service).where(Service.jurisdiction_id == jurisdiction.id))
    }
    for s in services.values():
        s.active = False
    for service_definition in catalogue.services:
        service = services.get(service_definition.code) or Service(
            jurisdiction_id=jurisdiction.id, code=service_definition.code
        )
        service.name_kk, service.name_ru, service.name_en = (
            service_definition.name[k] for k in ("kk", "ru", "en")
        )
        service.description_kk, service.description_ru, service.description_en = (
            service_definition.description[k] for k in ("kk", "ru", "en")
        )
        service.group, service.keywords = (
            service_definition.group,
            ",".join(service_definition.keywords),
        )
        service.service_type, service.sla_hours, service.active = (
            service_definition.service_type,
            service_definition.sla_hours,
            True,
        )
        service.department_id = (
            departments[service_definition.department].id if service_definition.department else None
        )
        service.attributes = [a.as_json() for a in service_definition.attributes]
        if service_definition.code not in services:
            session.add(service)
    for rule in session.scalars(
        select(RoutingRule).where(RoutingRule.jurisdiction_id == jurisdiction.id)
    ):
        session.delete(rule)
    session.add_all(
        RoutingRule(
            jurisdiction_id=jurisdiction.id,
            service_code=r.service,
            district=r.district,
            department_id=departments[r.department].id,
            priority=r.priority,
        )
        for r in catalogue.routing
    )
    session.flush()
    return load_jurisdictions(session)[catalogue.code]


def create_api_client(session: Session, name: str) -> str:
    """Register a trusted client application; returns its ``api_key`` (shown once, stored hashed)."""
    key = secrets.token_urlsafe(24)
    session.add(ApiClient(name=name, key_hash=_key_hash(key)))
    session.flush()
    return key


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def resolve_api_key(session: Session, key: str) -> int:
    """The id of the active client holding ``key``; PermissionDeniedError otherwise."""
    client_id = session.scalar(
        select(ApiClient.id).where(ApiClient.key_hash == _key_hash(key), ApiClient.active.is_(True))
    )
    if client_id is None:
        raise PermissionDeniedError("api_key is not valid")
    return client_id


# ---------------------------------------------------------------------------------------------
# Taking a request


@dataclass
class NewRequest:
    """What a citizen (or an app on their behalf) submits: Open311 POST fields."""

    service_code: str
    lat: float | None = None
    lon: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    description: str | None = None
    media_url: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    device_id: str | None = None
    account_id: str | None = None


@dataclass(frozen=True)
class Submitted:
    service_request_id: str
    token: str
    service_notice: str | None
    department: str | None
    district: str | None


def _limit(problems: list[Problem], column: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        problems.append(
            Problem(f"at most {limit} characters", column=column, value=f"{len(value)} characters")
        )


def check_new_request(
    jurisdiction: JurisdictionInfo, new: NewRequest
) -> tuple[ServiceInfo | None, dict[str, Any], list[Problem]]:
    """Every problem with a submission, each naming its field."""
    problems: list[Problem] = []
    service = jurisdiction.services.get(new.service_code)
    if not new.service_code:
        problems.append(Problem("is required", column="service_code", code="required"))
    elif service is None or not service.active:
        problems.append(
            Problem(
                f"no such service in {jurisdiction.code}; GET services lists them",
                column="service_code",
                value=new.service_code[:80],
                code="unknown_service",
            )
        )
        service = None
    has_point = new.lat is not None or new.lon is not None
    if has_point:
        if new.lat is None or new.lon is None:
            problems.append(
                Problem(
                    "give both lat and long",
                    column="lat" if new.lat is None else "long",
                    code="required",
                )
            )
        else:
            if not (math.isfinite(new.lat) and -90 <= new.lat <= 90):
                problems.append(
                    Problem("expected a latitude between -90 and 90", column="lat", value=new.lat)
                )
            if not (math.isfinite(new.lon) and -180 <= new.lon <= 180):
                problems.append(
                    Problem(
                        "expected a longitude between -180 and 180", column="long", value=new.lon
                    )
                )
    elif not (new.address_string or "").strip() and not (new.address_id or "").strip():
        problems.append(
            Problem(
                "a location is required: lat and long, address_string or address_id",
                column="lat",
                code="required",
            )
        )
    _limit(problems, "address_string", new.address_string, MAX_ADDRESS)
    _limit(problems, "address_id", new.address_id, 120)
    _limit(problems, "zipcode", new.zipcode, 20)
    _limit(problems, "description", new.description, MAX_DESCRIPTION)
    for column, value, limit in (
        ("email", new.email, 254),
        ("phone", new.phone, 40),
        ("first_name", new.first_name, 120),
        ("last_name", new.last_name, 120),
        ("device_id", new.device_id, 200),
        ("account_id", new.account_id, 200),
    ):
        _limit(problems, column, value, limit)
    if new.email and ("@" not in new.email or " " in new.email.strip()):
        problems.append(Problem("expected an e-mail address", column="email", code="invalid_email"))
    if new.phone and not all(c.isdigit() or c in "+-() " for c in new.phone):
        problems.append(
            Problem(
                "expected a phone number (digits, spaces, + - ( ))",
                column="phone",
                code="invalid_phone",
            )
        )
    if new.media_url:
        _limit(problems, "media_url", new.media_url, MAX_URL)
        if not new.media_url.lower().startswith(("http://", "https://")):
            problems.append(
                Problem("expected an http(s) URL", column="media_url", code="invalid_url")
            )
    clean: dict[str, Any] = {}
    if service is not None:
        clean, attribute_problems = check_attributes(service.attributes, new.attributes)
        problems.extend(attribute_problems)
    return service, clean, problems


def submit_request(
    session: Session,
    jurisdiction: JurisdictionInfo,
    new: NewRequest,
    *,
    now: datetime,
    api_client_id: int | None = None,
    bus: EventBus | None = None,
    illustrative: bool = False,
) -> Submitted:
    """Validate and store a new request, routed to its department; raises ValidationError listing
    every problem, or PermissionDeniedError when the city takes no anonymous reports."""
    if api_client_id is None and not jurisdiction.anonymous_allowed:
        raise PermissionDeniedError(
            f"{jurisdiction.code} accepts requests only from clients with an api_key"
        )
    service, attributes, problems = check_new_request(jurisdiction, new)
    raise_if_problems(problems, "the service request is invalid")
    assert service is not None
    district = jurisdiction.nearest_district(new.lat, new.lon)
    department_id = jurisdiction.route(service.code, district)
    department = jurisdiction.departments.get(department_id) if department_id else None
    notice = None
    if department is not None:
        notice = f"{department.names['en']}: answer expected within {service.sla_hours:g} h"
    token = secrets.token_urlsafe(12)
    # Core inserts: the ORM unit of work costs more CPU than the two statements themselves.
    values = dict(
        token=token,
        jurisdiction_id=jurisdiction.id,
        service_id=service.id,
        department_id=department_id,
        status="open",
        service_notice=notice,
        description=(new.description or None),
        lat=new.lat,
        lon=new.lon,
        address_string=(new.address_string or None),
        address_id=(new.address_id or None),
        zipcode=(new.zipcode or None),
        district=district,
        media_url=(new.media_url or None),
        attributes=attributes,
        requested_at=now,
        updated_at=now,
        expected_at=now + timedelta(hours=service.sla_hours),
        email=new.email or None,
        phone=new.phone or None,
        first_name=new.first_name or None,
        last_name=new.last_name or None,
        device_id=new.device_id or None,
        account_id=new.account_id or None,
        api_client_id=api_client_id,
        illustrative=illustrative,
        escalation_level=0,
        reopen_count=0,
        escalated_at=None,
        acknowledged_at=None,
        closed_at=None,
        close_reason=None,
        status_notes=None,
        assignee=None,
        duplicate_of_id=None,
    )
    request_id = int(session.execute(_INSERT_REQUEST, values).scalar_one())
    session.execute(
        _INSERT_AUDIT,
        {
            "request_id": request_id,
            "at": now,
            "actor": "citizen" if api_client_id is None else f"api_client:{api_client_id}",
            "action": "created",
            "changes": {
                "status": [None, "open"],
                "department": [None, department.code if department else None],
                "district": [None, district],
            },
        },
    )
    publish_after_commit(
        session,
        bus,
        Event(
            "requests311.created",
            {
                "id": request_id,
                "service": service.code,
                "jurisdiction": jurisdiction.code,
                "lat": new.lat,
                "lon": new.lon,
                "district": district,
                "department": department.code if department else None,
                "requested_at": now.isoformat(),
            },
        ),
    )
    return Submitted(
        str(request_id), token, notice, department.code if department else None, district
    )


# ---------------------------------------------------------------------------------------------
# Reading requests (the public view)


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
_AUDIT_TABLE = cast(Table, AuditEntry.__table__)
_R = _REQUEST_TABLE.c
# Plain table columns, not ORM attributes: Core results then skip per-row ORM adaptation, which
# costs more than the query itself on the hot public read path.
_PUBLIC_COLUMNS = tuple(
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
    )
)


# Values go to execute() as parameters, not into .values(): the statement is then compiled once
# and reused, where .values() made and cache-keyed 35 bound parameters on every citizen report.
_INSERT_REQUEST = insert(_REQUEST_TABLE).returning(_R.id)
_INSERT_AUDIT = insert(_AUDIT_TABLE)
# The two single-row public reads are built once: building and cache-keying a statement per call
# costs more CPU than PostgreSQL spends answering it (bench/requests311_load.py, GET phases).
_ONE_PUBLIC = select(*_PUBLIC_COLUMNS).where(
    _R.id == bindparam("request_id"), _R.jurisdiction_id == bindparam("jurisdiction_id")
)
_ID_FOR_TOKEN = select(_R.id).where(
    _R.token == bindparam("token"), _R.jurisdiction_id == bindparam("jurisdiction_id")
)


def _public(
    row: Any, jurisdiction: JurisdictionInfo, services: dict[int, ServiceInfo], language: str
) -> PublicRequest:
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
    )


def _services_by_id(jurisdiction: JurisdictionInfo) -> dict[int, ServiceInfo]:
    return {s.id: s for s in jurisdiction.services.values()}


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
    query = select(*_PUBLIC_COLUMNS).where(_R.jurisdiction_id == jurisdiction.id)
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
    services = _services_by_id(jurisdiction)
    return [_public(row, jurisdiction, services, language) for row in session.execute(query)]


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
    return _public(row, jurisdiction, _services_by_id(jurisdiction), language)


def request_id_for_token(
    session: Session | Connection, jurisdiction: JurisdictionInfo, token: str
) -> int:
    found = session.scalar(_ID_FOR_TOKEN, {"token": token, "jurisdiction_id": jurisdiction.id})
    if found is None:
        raise NotFoundError("no service request has this token")
    return int(found)


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
    return FollowedRequest(
        public,
        [PublicUpdate(as_utc(at) or at, text) for at, text in notes],
        str(duplicate_of) if duplicate_of else None,
    )


# ---------------------------------------------------------------------------------------------
# Staff: the lifecycle


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
    notes: list[NoteView] = field(default_factory=list)
    audit: list[AuditView] = field(default_factory=list)


def _staff(
    request: Request,
    jurisdiction: JurisdictionInfo,
    now: datetime,
    *,
    full: bool,
    session: Session | None = None,
    language: str = "en",
) -> StaffRequest:
    services = _services_by_id(jurisdiction)
    service = services.get(request.service_id)
    department = (
        jurisdiction.departments.get(request.department_id) if request.department_id else None
    )
    expected = as_utc(request.expected_at)
    notes: list[NoteView] = []
    audit: list[AuditView] = []
    if full and session is not None:
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
        notes=notes,
        audit=audit,
    )


class Requests:
    """Staff operations on one city's requests, each recorded in the audit trail.

    Parameters
    ----------
    session
        The unit of work (the caller commits).
    jurisdiction
        The city.
    actor
        Who acts (a username, or ``escalation`` for the timer).
    now
        The clock reading to stamp changes with.
    bus
        Where ``requests311.*`` events go (optional).
    """

    def __init__(
        self,
        session: Session,
        jurisdiction: JurisdictionInfo,
        *,
        actor: str,
        now: datetime,
        bus: EventBus | None = None,
    ) -> None:
        self.session = session
        self.jurisdiction = jurisdiction
        self.actor = actor
        self.now = now
        self.bus = bus

    # -- reading
    def load(self, request_id: int) -> Request:
        request = self.session.get(Request, request_id)
        if request is None or request.jurisdiction_id != self.jurisdiction.id:
            raise NotFoundError(f"no service request {request_id} in {self.jurisdiction.code}")
        return request

    def detail(self, request_id: int, *, language: str = "en") -> StaffRequest:
        return _staff(
            self.load(request_id),
            self.jurisdiction,
            self.now,
            full=True,
            session=self.session,
            language=language,
        )

    def queue(
        self,
        *,
        department: str | None = None,
        statuses: Sequence[str] = OPEN_STATUSES,
        assignee: str | None = None,
        overdue_only: bool = False,
        limit: int = 200,
        offset: int = 0,
        language: str = "en",
    ) -> list[StaffRequest]:
        """A department's work queue: unclosed requests, most escalated and oldest first."""
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise ValidationError.single(
                f"unknown status; expected {', '.join(STATUSES)}", column="status", value=bad[0]
            )
        query = select(Request).where(
            Request.jurisdiction_id == self.jurisdiction.id, Request.status.in_(list(statuses))
        )
        if department is not None:
            query = query.where(
                Request.department_id == self.jurisdiction.department_by_code(department).id
            )
        if assignee is not None:
            query = query.where(Request.assignee == assignee)
        if overdue_only:
            query = query.where(Request.expected_at < self.now)
        query = (
            query.order_by(Request.escalation_level.desc(), Request.requested_at, Request.id)
            .limit(min(limit, 1000))
            .offset(offset)
        )
        return [
            _staff(r, self.jurisdiction, self.now, full=False, language=language)
            for r in self.session.scalars(query)
        ]

    # -- writing
    def _record(self, request: Request, action: str, changes: dict[str, Any]) -> None:
        self.session.add(
            AuditEntry(
                request_id=request.id, at=self.now, actor=self.actor, action=action, changes=changes
            )
        )
        request.updated_at = self.now

    def _set(self, request: Request, action: str, **values: Any) -> None:
        changes = {}
        for name, value in values.items():
            before = getattr(request, name)
            if before != value:
                changes[name] = [_jsonable(before), _jsonable(value)]
                setattr(request, name, value)
        self._record(request, action, changes)

    def _publish(self, name: str, request: Request, **extra: Any) -> None:
        publish_after_commit(
            self.session,
            self.bus,
            Event(
                f"requests311.{name}",
                {"id": request.id, "jurisdiction": self.jurisdiction.code, **extra},
            ),
        )

    def acknowledge(self, request_id: int, *, note: str | None = None) -> StaffRequest:
        request = self.load(request_id)
        self._require(request, ("open",), "acknowledge")
        self._set(request, "acknowledged", status="acknowledged", acknowledged_at=self.now)
        self._maybe_note(request, note, public=True)
        return self._done(request)

    def start(self, request_id: int, *, note: str | None = None) -> StaffRequest:
        request = self.load(request_id)
        self._require(request, ("open", "acknowledged"), "start work on")
        values: dict[str, Any] = {"status": "in_progress"}
        if request.acknowledged_at is None:
            values["acknowledged_at"] = self.now
        self._set(request, "started", **values)
        self._maybe_note(request, note, public=True)
        return self._done(request)

    def close(self, request_id: int, *, reason: str, note: str | None = None) -> StaffRequest:
        if reason not in CLOSE_REASONS or reason == "duplicate":
            allowed = [r for r in CLOSE_REASONS if r != "duplicate"]
            raise ValidationError.single(
                f"expected one of {', '.join(allowed)} (mark duplicates with merge)",
                column="reason",
                value=reason,
            )
        request = self.load(request_id)
        self._require(request, OPEN_STATUSES, "close")
        self._set(request, "closed", status="closed", close_reason=reason, closed_at=self.now)
        self._maybe_note(request, note, public=True)
        self._publish("closed", request, reason=reason)
        return self._done(request)

    def reopen(self, request_id: int, *, reason: str) -> StaffRequest:
        if not reason.strip():
            raise ValidationError.single("say why the request is reopened", column="reason")
        request = self.load(request_id)
        self._require(request, ("closed",), "reopen")
        if request.close_reason == "duplicate":
            raise ConflictError(
                f"request {request.id} is a duplicate of {request.duplicate_of_id}; reopen that one"
            )
        self._set(
            request,
            "reopened",
            status="open",
            close_reason=None,
            closed_at=None,
            reopen_count=request.reopen_count + 1,
            escalation_level=0,
            expected_at=self.now + timedelta(hours=self._sla(request)),
        )
        self._maybe_note(request, reason, public=True)
        self._publish("reopened", request)
        return self._done(request)

    def merge_duplicate(self, request_id: int, *, into: int) -> StaffRequest:
        """Close ``request_id`` as a duplicate of ``into`` (followed to its original)."""
        request = self.load(request_id)
        original = self.load(into)
        while original.duplicate_of_id is not None:
            original = self.load(original.duplicate_of_id)
        if original.id == request.id:
            raise ConflictError(f"request {request.id} cannot be a duplicate of itself")
        self._require(request, OPEN_STATUSES, "merge")
        self._set(
            request,
            "merged",
            status="closed",
            close_reason="duplicate",
            closed_at=self.now,
            duplicate_of_id=original.id,
        )
        self._maybe_note(request, f"Merged into request {original.id}.", public=True)
        self._maybe_note(original, f"Request {request.id} was merged into this one.", public=False)
        self._record(original, "absorbed_duplicate", {"duplicate": [None, request.id]})
        self._publish("merged", request, into=original.id)
        return self._done(request)

    def assign(
        self, request_id: int, *, assignee: str | None = None, department: str | None = None
    ) -> StaffRequest:
        request = self.load(request_id)
        values: dict[str, Any] = {}
        if assignee is not None:
            if len(assignee) > 120:
                raise ValidationError.single("at most 120 characters", column="assignee")
            values["assignee"] = assignee or None
        if department is not None:
            values["department_id"] = self.jurisdiction.department_by_code(department).id
        if not values:
            raise ValidationError.single(
                "give an assignee, a department or both", column="assignee", code="required"
            )
        self._set(request, "assigned", **values)
        return self._done(request)

    def add_note(self, request_id: int, *, text: str, public: bool) -> StaffRequest:
        request = self.load(request_id)
        if not text.strip():
            raise ValidationError.single("is empty", column="text", code="required")
        self._maybe_note(request, text, public=public)
        self._record(request, "public_update" if public else "internal_note", {})
        return self._done(request)

    def escalate(self, request_id: int, *, level: int) -> StaffRequest:
        request = self.load(request_id)
        self._set(request, "escalated", escalation_level=level, escalated_at=self.now)
        self._publish("escalated", request, level=level)
        return self._done(request)

    def bulk(self, request_ids: Iterable[int], action: str, **options: Any) -> list[StaffRequest]:
        """Apply one action to many requests in one transaction: all succeed, or none is changed and
        the error lists every request that failed and why."""
        actions: dict[str, Callable[..., StaffRequest]] = {
            "acknowledge": self.acknowledge,
            "start": self.start,
            "close": self.close,
            "reopen": self.reopen,
            "assign": self.assign,
            "note": self.add_note,
            "merge": self.merge_duplicate,
        }
        if action not in actions:
            raise ValidationError.single(
                f"expected one of {', '.join(actions)}", column="action", value=action
            )
        done: list[StaffRequest] = []
        problems: list[Problem] = []
        events_before = _pending_count(self.session)
        everything = self.session.begin_nested()
        for request_id in dict.fromkeys(request_ids):
            events_here = _pending_count(self.session)
            try:
                with self.session.begin_nested():
                    done.append(actions[action](request_id, **options))
            except (ValidationError, ConflictError, NotFoundError) as exc:
                _forget_pending_after(self.session, events_here)
                problems.append(Problem(str(exc).splitlines()[0], column="ids", value=request_id))
            except TypeError as exc:
                everything.rollback()
                _forget_pending_after(self.session, events_before)
                raise ValidationError.single(
                    f"wrong options for {action}: {exc}", column="options"
                ) from None
        if problems:
            everything.rollback()
            _forget_pending_after(self.session, events_before)
            raise_if_problems(problems, f"bulk {action}: nothing was changed")
        everything.commit()
        return done

    # -- helpers
    def _sla(self, request: Request) -> float:
        service = _services_by_id(self.jurisdiction).get(request.service_id)
        return service.sla_hours if service else 72.0

    def _require(self, request: Request, statuses: Sequence[str], verb: str) -> None:
        if request.status not in statuses:
            raise ConflictError(f"cannot {verb} request {request.id}: it is {request.status}")

    def _maybe_note(self, request: Request, text: str | None, *, public: bool) -> None:
        if not text or not text.strip():
            return
        if len(text) > MAX_NOTE:
            raise ValidationError.single(f"at most {MAX_NOTE} characters", column="note")
        self.session.add(
            Note(
                request_id=request.id,
                created_at=self.now,
                author=self.actor,
                public=public,
                text=text.strip(),
            )
        )
        if public:
            request.status_notes = text.strip()

    def _done(self, request: Request) -> StaffRequest:
        self.session.flush()
        return _staff(request, self.jurisdiction, self.now, full=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (as_utc(value) or value).isoformat()
    return value


def escalate_overdue(
    session: Session, jurisdiction: JurisdictionInfo, *, now: datetime, bus: EventBus | None = None
) -> list[tuple[int, int]]:
    """Raise the escalation level of every unclosed request past its SLA.

    Level ``k`` (1–3) is reached once ``k`` SLA periods have passed since the request (so level 1
    when the answer is late, level 2 at twice the SLA…). Returns (request id, new level) pairs;
    running it again changes nothing until more time passes.
    """
    staff = Requests(session, jurisdiction, actor="escalation", now=now, bus=bus)
    sla_by_service = {s.id: s.sla_hours for s in jurisdiction.services.values()}
    rows = session.execute(
        select(
            Request.id,
            Request.service_id,
            Request.requested_at,
            Request.expected_at,
            Request.escalation_level,
        ).where(
            Request.jurisdiction_id == jurisdiction.id,
            Request.status.in_(OPEN_STATUSES),
            Request.expected_at < now,
            Request.escalation_level < ESCALATION_LEVELS,
        )
    ).all()
    changed = []
    for request_id, service_id, _requested_at, expected_at, level in rows:
        sla = timedelta(hours=sla_by_service.get(service_id, 72.0))
        # After a reopen the SLA clock restarts at expected_at - SLA.
        start = (as_utc(expected_at) or now) - sla
        periods = int((now - start) / sla)
        target = min(ESCALATION_LEVELS, periods)
        if target > level:
            staff.escalate(request_id, level=target)
            changed.append((request_id, target))
    return changed


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
