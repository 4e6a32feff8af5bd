"""Taking citizens' reports: checking and storing a new request (routed to its department), the
trusted applications' api keys, and how fast each client may post.

:class:`ReportIntake` is one platform's door for Open311 posts: the in-memory and shared rate
limits and the api keys already known valid (one per context, from :func:`report_intake`).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, literal, select, true
from sqlalchemy.orm import Session

from qala.components.requests311.after_commit import publish_after_commit
from qala.components.requests311.catalogue import check_attributes
from qala.components.requests311.duplicates import Supported, Supporter, support_request
from qala.components.requests311.jurisdictions import JurisdictionInfo, ServiceInfo
from qala.components.requests311.models import ApiClient, AuditEntry, Request
from qala.components.requests311.photo_files import (
    PHOTO_FIELD,
    PhotoUpload,
    PreparedPhoto,
    prepare_photos,
)
from qala.components.requests311.photos import (
    attach_photos,
    photo_store,
    photo_url,
    remove_files,
    write_files,
)
from qala.components.requests311.ratelimit import RateLimiter, SharedRateLimit, count_statement
from qala.core.errors import PermissionDeniedError, Problem, QalaError, raise_if_problems
from qala.core.messages import msg
from qala.events import Event, EventBus, publish_in_transaction
from qala.runtime import Context
from qala.store.direct import DirectStatement, Sent
from qala.store.ids import SequenceIds
from qala.store.statements import dialect_name

MAX_DESCRIPTION = 4000
MAX_ADDRESS = 500
MAX_URL = 2048
OUTSIDE_CODE = "outside_jurisdiction"
"""The problem code of a point outside the chosen city (pages show it translated)."""
INTAKE_KEY = "requests311.intake"
"""Where :func:`report_intake` keeps a platform's intake in ``Context.extras``."""

_REQUEST_TABLE = cast(Table, Request.__table__)
_AUDIT_TABLE = cast(Table, AuditEntry.__table__)
# Values go to execute() as parameters, not into .values(): the statement is then compiled once
# and reused, where .values() made and cache-keyed 35 bound parameters on every citizen report.
_INSERT_REQUEST = insert(_REQUEST_TABLE).returning(_REQUEST_TABLE.c.id)
_INSERT_AUDIT = insert(_AUDIT_TABLE)
REQUEST_IDS = SequenceIds(_REQUEST_TABLE.name)
"""Ids of reports stored in one statement: known beforehand, the statements of Notify and
Operate that name the new request need not wait for its row."""
_AUDIT_COLUMNS = ("at", "actor", "action", "changes")
"""The audit row's columns besides ``request_id`` (bound as ``audit_<column>``)."""


@lru_cache(maxsize=8)
def _store_in_one_statement(columns: tuple[str, ...], window: int | None) -> DirectStatement:
    """PostgreSQL: a report's row and its audit row, and its count in the shared rate limit when
    ``window`` is given, as one statement (data-modifying ``WITH`` clauses) answering the new id
    and the counts — one round trip instead of three. The report's values are bound as
    ``request_<column>``, the audit's as ``audit_<column>``, the count's as
    :func:`count_statement` names them."""
    # A nested INSERT gets no Python-side column defaults: every such column must be given.
    missing = [
        column.name
        for column in _REQUEST_TABLE.c
        if column.default is not None and column.name not in columns
    ]
    if missing:
        raise ValueError(f"a report's values must include {', '.join(missing)}")
    created = (
        insert(_REQUEST_TABLE)
        .values(
            {
                name: bindparam(f"request_{name}", type_=_REQUEST_TABLE.c[name].type)
                for name in columns
            }
        )
        .returning(_REQUEST_TABLE.c.id)
        .cte("created")
    )
    audited = insert(_AUDIT_TABLE).from_select(
        ["request_id", *_AUDIT_COLUMNS],
        select(
            created.c.id,
            *(
                bindparam(f"audit_{name}", type_=_AUDIT_TABLE.c[name].type)
                for name in _AUDIT_COLUMNS
            ),
        ),
    )
    if window is None:
        answer = select(created.c.id, literal(0), literal(0))
    else:
        counted = count_statement("postgresql", window).cte("counted")
        answer = select(created.c.id, counted.c.count, counted.c.previous).join_from(
            created, counted, true()
        )
    return DirectStatement(answer.add_cte(audited.cte("audited")))


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
    language: str | None = None
    """The language the resident filed in (kk, ru, en): what they are answered in."""
    photos: list[PhotoUpload] = field(default_factory=list)
    """Photos as sent (at most three), checked and re-encoded by :func:`checked_photos`."""


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
            Problem(
                f"at most {limit} characters",
                column=column,
                value=f"{len(value)} characters",
                message=msg("problem.too_long", count=limit, n=limit, got=len(value)),
            )
        )


def check_new_request(
    jurisdiction: JurisdictionInfo, new: NewRequest
) -> tuple[ServiceInfo | None, dict[str, Any], list[Problem]]:
    """Every problem with a submission, each naming its field."""
    problems: list[Problem] = []
    service = jurisdiction.services.get(new.service_code)
    if not new.service_code:
        problems.append(
            Problem(
                "is required",
                column="service_code",
                code="required",
                message=msg("problem.required_service"),
            )
        )
    elif service is None or not service.active:
        problems.append(
            Problem(
                f"no such service in {jurisdiction.code}; GET services lists them",
                column="service_code",
                value=new.service_code[:80],
                code="unknown_service",
                message=msg("problem.unknown_service", city=jurisdiction.code),
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
                    message=msg("problem.both_coordinates"),
                )
            )
        else:
            if not (math.isfinite(new.lat) and -90 <= new.lat <= 90):
                problems.append(
                    Problem(
                        "expected a latitude between -90 and 90",
                        column="lat",
                        value=new.lat,
                        message=msg("problem.latitude"),
                    )
                )
            if not (math.isfinite(new.lon) and -180 <= new.lon <= 180):
                problems.append(
                    Problem(
                        "expected a longitude between -180 and 180",
                        column="long",
                        value=new.lon,
                        message=msg("problem.longitude"),
                    )
                )
            if not problems and not jurisdiction.contains(new.lat, new.lon):
                problems.append(
                    Problem(
                        f"the point is outside {jurisdiction.names['en']}; report it to the city"
                        " where the problem is (GET discovery lists them)",
                        column="lat",
                        value=f"{new.lat:.5f},{new.lon:.5f}",
                        code=OUTSIDE_CODE,
                    )
                )
    elif not (new.address_string or "").strip() and not (new.address_id or "").strip():
        problems.append(
            Problem(
                "a location is required: lat and long, address_string or address_id",
                column="lat",
                code="required",
                message=msg("problem.location_required"),
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
        problems.append(
            Problem(
                "expected an e-mail address",
                column="email",
                code="invalid_email",
                message=msg("problem.invalid_email"),
            )
        )
    if new.phone and not all(c.isdigit() or c in "+-() " for c in new.phone):
        problems.append(
            Problem(
                "expected a phone number (digits, spaces, + - ( ))",
                column="phone",
                code="invalid_phone",
                message=msg("problem.invalid_phone"),
            )
        )
    if new.media_url and new.photos:
        problems.append(
            Problem(
                "send photos or a media_url, not both",
                column=PHOTO_FIELD,
                code="photo_and_url",
                message=msg("problem.photo_and_url"),
            )
        )
    if new.media_url:
        _limit(problems, "media_url", new.media_url, MAX_URL)
        if not new.media_url.lower().startswith(("http://", "https://")):
            problems.append(
                Problem(
                    "expected an http(s) URL",
                    column="media_url",
                    code="invalid_url",
                    message=msg("problem.invalid_url"),
                )
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
    photos: list[PreparedPhoto] | None = None,
    base_url: str = "",
    counted: Counted | None = None,
) -> Submitted:
    """Validate and store a new request, routed to its department; raises ValidationError listing
    every problem, or PermissionDeniedError when the city takes no anonymous reports.

    ``photos`` (checked by :func:`checked_photos`, their files already in the photo store) get
    their rows, and the first one's address under ``base_url`` becomes the ``media_url``.
    ``counted``: the post also counts in that shared rate limit, whatever it holds;
    :class:`RateLimited` when it is one too many (on PostgreSQL decided once the components that
    hear of the report have written: the refusal rolls back their rows with the report's)."""
    if api_client_id is None and not jurisdiction.anonymous_allowed:
        raise PermissionDeniedError(
            f"{jurisdiction.code} accepts requests only from clients with an api_key"
        )
    service, attributes, problems = check_new_request(jurisdiction, new)
    in_one_statement = not problems and dialect_name(session) == "postgresql"
    if counted is not None and not in_one_statement:
        # Counted first, as with one statement: a refused post is refused whatever it holds.
        counted.refuse_if_over(counted.limit.hit(session, counted.key))
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
        media_url=photo_url(base_url, photos[0].name) if photos else (new.media_url or None),
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
        supporters=0,
    )
    audit = {
        "at": now,
        "actor": "citizen" if api_client_id is None else f"api_client:{api_client_id}",
        "action": "created",
        "changes": {
            "status": [None, "open"],
            "department": [None, department.code if department else None],
            "district": [None, district],
            **({"photos": [0, len(photos)]} if photos else {}),
        },
    }
    stored: StoredReport | None = None
    if in_one_statement:
        stored = _send_with_audit(session, values, audit, counted)
        request_id = stored.request_id
    else:
        request_id = int(session.execute(_INSERT_REQUEST, values).scalar_one())
        session.execute(_INSERT_AUDIT, {"request_id": request_id, **audit})
    if photos:
        attach_photos(session, request_id, photos, now=now, base_url=base_url)
    # Inside the transaction, with what only a subscriber answering the resident needs (contact
    # and language): a notification is then stored exactly when the request is.
    publish_in_transaction(
        session,
        Event(
            "requests311.received",
            {
                "id": request_id,
                "token": token,
                "jurisdiction": jurisdiction.code,
                "service_names": dict(service.names),
                "email": new.email or None,
                "phone": new.phone or None,
                "account": new.account_id or None,
                "language": new.language,
                "illustrative": illustrative,
                "at": now.isoformat(),
            },
        ),
        bus,
    )
    created = Event(
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
    )
    # Announced twice: inside the transaction for subscribers that write with our session (Operate
    # records the request as an NGSI-LD ServiceRequest there: one statement or two, not a second
    # transaction per report), and once committed for everyone else.
    publish_in_transaction(session, created, bus)
    publish_after_commit(session, bus, created)
    if stored is not None:
        stored.refuse_if_over()
    return Submitted(
        str(request_id), token, notice, department.code if department else None, district
    )


@dataclass(frozen=True)
class StoredReport:
    """A report's statement sent to the store (:func:`_send_with_audit`), its id known."""

    request_id: int
    sent: Sent
    counted: Counted | None
    elapsed: float

    def refuse_if_over(self) -> None:
        """Raise :class:`RateLimited` when the report's count in the shared limit refuses it
        (its statement runs now if nothing has run it yet)."""
        [(_request_id, count, previous)] = self.sent.rows()
        if self.counted is not None and self.counted.limit.limit > 0:
            self.counted.refuse_if_over(
                self.counted.limit.wait(int(count), int(previous), self.elapsed)
            )


def _send_with_audit(
    session: Session, values: dict[str, Any], audit: dict[str, Any], counted: Counted | None
) -> StoredReport:
    """Send a report and its audit row (and its count, with ``counted``) as one statement on
    PostgreSQL, the id drawn beforehand: the statement waits to go to the store with the
    statements of the components that hear of the report (:meth:`DirectStatement.send`). The
    caller asks :meth:`StoredReport.refuse_if_over` before the transaction ends (a refusal
    rolls back the row, the count and what the others wrote)."""
    values = {"id": REQUEST_IDS.take(session.connection()), **values}
    parameters = {f"request_{name}": value for name, value in values.items()}
    parameters.update((f"audit_{name}", value) for name, value in audit.items())
    window = None
    elapsed = 0.0
    if counted is not None and counted.limit.limit > 0:
        window = counted.limit.window
        counting, elapsed = counted.limit.counting(session, counted.key)
        parameters.update(counting)
    statement = _store_in_one_statement(tuple(values), window)
    sent = statement.send(session, parameters)
    return StoredReport(values["id"], sent, counted, elapsed)


def checked_photos(jurisdiction: JurisdictionInfo, new: NewRequest) -> list[PreparedPhoto]:
    """``new``'s photos checked and re-encoded. A refused photo, or any other problem of the
    submission, raises ValidationError listing them all before a file is written."""
    if not new.photos:
        return []
    prepared, problems = prepare_photos(new.photos)
    raise_if_problems(
        check_new_request(jurisdiction, new)[2] + problems, "the service request is invalid"
    )
    return prepared


class RateLimited(QalaError):
    """A client posted faster than its limit; ``retry_after`` is the whole seconds to wait."""

    def __init__(self, wait: float) -> None:
        self.retry_after = RateLimiter.retry_after_seconds(wait)
        super().__init__(f"too many requests from this client; try again in {self.retry_after} s")


@dataclass(frozen=True)
class Counted:
    """A report's count in a shared rate limit, taken in the report's own transaction (on
    PostgreSQL in the statement that stores it)."""

    limit: SharedRateLimit
    key: str

    @staticmethod
    def refuse_if_over(wait: float) -> None:
        """Raise :class:`RateLimited` when the count answered a wait (non-zero)."""
        if wait:
            raise RateLimited(wait)


@dataclass(frozen=True)
class Poster:
    """Who posts a report, as the rate limits count it: by address, or by application."""

    address_key: str
    api_key: str | None
    app_key: str | None

    @classmethod
    def of(cls, api_key: str | None, host: str) -> Poster:
        """The poster behind an ``api_key`` (empty or None: anonymous) from address ``host``."""
        app_key = f"key:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}" if api_key else None
        return cls(f"ip:{host}", api_key or None, app_key)


class ApiKeyCache:
    """Resolved api_key hashes for ``ttl`` seconds, so trusted clients don't cost a query per
    post."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[int, float]] = {}

    def get(self, key: str) -> int | None:
        found = self._known.get(_key_hash(key))
        if found and time.monotonic() - found[1] < self.ttl:
            return found[0]
        return None

    def put(self, key: str, client_id: int) -> None:
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[_key_hash(key)] = (client_id, time.monotonic())


@dataclass
class ReportIntake:
    """One platform's door for citizen reports.

    Each post is counted twice, for anonymous reporters by address and for trusted applications
    by api key (they post for many residents and get a higher limit): first in this process's
    memory (:meth:`admit`, so a flood is refused before it costs a transaction), then in the
    store inside the report's own transaction (:meth:`submit`, so all server processes share one
    limit and a refused post rolls back with its count).
    """

    context: Context
    anonymous_local: RateLimiter
    anonymous_shared: SharedRateLimit
    trusted_local: RateLimiter
    trusted_shared: SharedRateLimit
    hints_local: RateLimiter
    """Duplicate-hint lookups per address: a read, so counted in this process only."""
    keys: ApiKeyCache = field(default_factory=ApiKeyCache)

    @classmethod
    def for_context(cls, context: Context) -> ReportIntake:
        anonymous, trusted = (
            context.settings.rate_limit_per_minute,
            context.settings.trusted_rate_limit_per_minute,
        )
        return cls(
            context,
            RateLimiter(anonymous),
            SharedRateLimit(anonymous),
            RateLimiter(trusted),
            SharedRateLimit(trusted),
            RateLimiter(anonymous),
        )

    def admit_hint(self, poster: Poster) -> None:
        """Count a duplicate-hint lookup from ``poster``'s address (the form's per-address limit,
        apart from its posts); raises :class:`RateLimited` when it is one too many."""
        wait = self.hints_local.hit(poster.address_key)
        if wait:
            raise RateLimited(wait)

    def support(
        self, jurisdiction: JurisdictionInfo, request_id: int, supporter: Supporter, poster: Poster
    ) -> Supported:
        """Record ``supporter`` behind a request, counted as a post of ``poster`` (both limits)."""
        self.admit(poster)
        context = self.context
        with context.database.transaction() as session:
            wait = self.anonymous_shared.hit(session, poster.address_key)
            if wait:
                raise RateLimited(wait)
            return support_request(
                session, jurisdiction, request_id, supporter, now=context.clock(), bus=context.bus
            )

    def admit(self, poster: Poster) -> None:
        """Count a post in this process; raises :class:`RateLimited` when it is one too many.

        Only a key already known to be valid gets the trusted limit here; any other post counts
        against its address, so made-up keys can't buy a flood the higher limit.
        """
        if poster.api_key and self.keys.get(poster.api_key) is not None:
            wait = self.trusted_local.hit(str(poster.app_key))
        else:
            wait = self.anonymous_local.hit(poster.address_key)
        if wait:
            raise RateLimited(wait)

    def submit(self, jurisdiction: JurisdictionInfo, new: NewRequest, poster: Poster) -> Submitted:
        """Store ``new`` for ``poster`` (an invalid api key is refused), counted in the shared
        limit inside the same transaction. Photos are decoded only once the poster may post;
        their files are written before the transaction and removed again if it fails."""
        client_id = self.client_id(poster.api_key) if poster.api_key else None
        if client_id is None and not jurisdiction.anonymous_allowed:
            raise PermissionDeniedError(
                f"{jurisdiction.code} accepts requests only from clients with an api_key"
            )
        context = self.context
        photos = checked_photos(jurisdiction, new)
        store = photo_store(context)
        write_files(store, photos)
        try:
            counted = (
                Counted(self.trusted_shared, str(poster.app_key))
                if client_id is not None
                else Counted(self.anonymous_shared, poster.address_key)
            )
            # Everything the report writes goes through SQLAlchemy or direct statements: its BEGIN
            # can go with the first of them.
            with context.database.transaction(begin_with_first_statements=True) as session:
                # Raising rolls the count back with the report.
                return submit_request(
                    session,
                    jurisdiction,
                    new,
                    now=context.clock(),
                    api_client_id=client_id,
                    bus=context.bus,
                    photos=photos,
                    base_url=context.settings.public_base_url,
                    counted=counted,
                )
        except BaseException:
            remove_files(store, photos)
            raise

    def client_id(self, api_key: str) -> int:
        """The id of the client holding ``api_key`` (cached); PermissionDeniedError if none."""
        client_id = self.keys.get(api_key)
        if client_id is None:
            with self.context.database.session() as session:
                client_id = resolve_api_key(session, api_key)
            self.keys.put(api_key, client_id)
        return client_id


def report_intake(context: Context) -> ReportIntake:
    """The platform's intake, made on first use and kept in ``context.extras`` (its counts and
    known keys belong to one platform, never to every app in the process)."""
    intake = context.extras.get(INTAKE_KEY)
    if not isinstance(intake, ReportIntake):
        intake = context.extras[INTAKE_KEY] = ReportIntake.for_context(context)
    return intake
