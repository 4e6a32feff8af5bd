"""Duplicate hints and support: while a resident files a report, the open requests of the same
service within a few tens of metres are shown, and the resident may *support* one ("me too")
instead of filing a copy; supporters are counted on the request and told of its progress.

How nearby requests are found and ranked
----------------------------------------
1. A box of ``radius_m`` around the point (degrees of latitude are 111.32 km; of longitude that
   times the cosine of the latitude) is read off the index ``(service_id, lat, lon)``, open
   statuses only: one service's requests in a band of about 100 m.
2. The exact great-circle (haversine) distance drops the box's corners.
3. Each is scored ``closeness + similarity``: closeness is ``1 - distance / radius`` (1 on the
   spot, 0 at the edge), similarity the share of words the two descriptions have in common
   (Jaccard overlap of their words of three letters or more, case-folded). The best first, ties
   by distance; a description only reorders, it never hides a request.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qala.components.requests311.jurisdictions import JurisdictionInfo
from qala.components.requests311.models import AuditEntry, Request, Support
from qala.components.requests311.queries import PUBLIC_COLUMNS
from qala.components.requests311.views import OPEN_STATUSES, PublicRequest, as_utc, public_view
from qala.core.errors import ConflictError, NotFoundError, Problem, ValidationError
from qala.core.messages import msg
from qala.engines.geo.area import haversine_km
from qala.events import Event, EventBus, publish_in_transaction

NEARBY_METRES = 50.0
"""How far from the point an open request of the same service counts as a likely duplicate."""
MAX_RADIUS_METRES = 200.0
MAX_HINTS = 5
METRES_PER_DEGREE = 111_320.0
MAX_TEXT = 4000

_R = cast(Table, Request.__table__).c
_WORD = re.compile(r"\w{3,}")


def distance_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points, metres (haversine)."""
    return 1000.0 * haversine_km(lat1, lon1, lat2, lon2)


def words(text: str | None) -> set[str]:
    """The words of ``text`` of three letters or more, case-folded (any script)."""
    return {w for w in _WORD.findall((text or "").casefold()) if not w.isdigit()}


def text_similarity(a: str | None, b: str | None) -> float:
    """The share of words two texts have in common (Jaccard: shared / all), 0 when either has
    none."""
    left, right = words(a), words(b)
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


@dataclass(frozen=True)
class NearbyRequest:
    """An open request near the point: how far, how alike its text, and the rank's score."""

    request: PublicRequest
    distance_m: float
    similarity: float
    score: float


def find_nearby(
    session: Session,
    jurisdiction: JurisdictionInfo,
    *,
    service_code: str,
    lat: float,
    lon: float,
    description: str | None = None,
    radius_m: float = NEARBY_METRES,
    limit: int = MAX_HINTS,
    language: str = "en",
) -> list[NearbyRequest]:
    """Open requests of ``service_code`` within ``radius_m`` of the point, best match first (see
    the module's notes); an unknown or inactive service has none."""
    problems = []
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        problems.append(("lat", "expected a latitude between -90 and 90"))
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        problems.append(("long", "expected a longitude between -180 and 180"))
    if not (0 < radius_m <= MAX_RADIUS_METRES):
        problems.append(("radius", f"expected 0 < radius ≤ {MAX_RADIUS_METRES:g} m"))
    if problems:
        raise ValidationError.single(problems[0][1], column=problems[0][0])
    service = jurisdiction.services.get(service_code)
    if service is None or not service.active:
        return []
    dlat = radius_m / METRES_PER_DEGREE
    dlon = radius_m / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    rows = session.execute(
        select(*PUBLIC_COLUMNS).where(
            _R.service_id == service.id,
            _R.lat.between(lat - dlat, lat + dlat),
            _R.lon.between(lon - dlon, lon + dlon),
            _R.jurisdiction_id == jurisdiction.id,
            _R.status.in_(OPEN_STATUSES),
        )
    ).all()
    found = []
    services = jurisdiction.services_by_id
    for row in rows:
        distance = distance_metres(lat, lon, row.lat, row.lon)
        if distance > radius_m:
            continue
        similarity = text_similarity(description, row.description)
        score = (1 - distance / radius_m) + similarity
        found.append(
            NearbyRequest(
                public_view(row, jurisdiction, services, language), distance, similarity, score
            )
        )
    found.sort(key=lambda n: (-n.score, n.distance_m, int(n.request.service_request_id)))
    return found[: max(1, min(limit, 20))]


# -- support ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Supporter:
    """Who supports a request: a signed-in account, else an e-mail, else an anonymous browser's
    follow token (at least one)."""

    account: str | None = None
    email: str | None = None
    follow_token: str | None = None
    language: str | None = None

    def keys(self) -> list[str]:
        """Every key this supporter may already be recorded under, the strongest first."""
        keys = []
        if self.account:
            keys.append(f"account:{self.account[:70]}")
        if self.email:
            keys.append(f"email:{_hash(self.email.strip().casefold())}")
        if self.follow_token:
            keys.append(f"token:{_hash(self.follow_token)}")
        return keys


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Supported:
    request_id: int
    supporters: int
    added: bool
    """False when this supporter had already supported it (or reported it)."""


def support_request(
    session: Session,
    jurisdiction: JurisdictionInfo,
    request_id: int,
    supporter: Supporter,
    *,
    now: datetime,
    bus: EventBus | None = None,
) -> Supported:
    """Record ``supporter`` behind an open request, once: supporting again (by any of the
    supporter's keys), or supporting one's own report, changes nothing."""
    keys = supporter.keys()
    if not keys:
        raise ValidationError.single(
            "sign in, give an e-mail or allow the follow cookie", column="email", code="required"
        )
    email = supporter.email or ""
    if email and (len(email) > 254 or "@" not in email or " " in email.strip()):
        problem = Problem(
            "expected an e-mail address",
            column="email",
            code="invalid_email",
            message=msg("problem.invalid_email"),
        )
        raise ValidationError([problem])
    request = session.get(Request, request_id)
    if request is None or request.jurisdiction_id != jurisdiction.id:
        raise NotFoundError(f"no service request {request_id} in {jurisdiction.code}")
    if request.status not in OPEN_STATUSES:
        raise ConflictError(f"request {request_id} is closed; only open requests take support")
    own = (supporter.account and supporter.account == request.account_id) or (
        supporter.email
        and request.email
        and supporter.email.strip().casefold() == request.email.strip().casefold()
    )
    known = session.scalar(
        select(Support.id).where(
            Support.request_id == request_id,
            or_(Support.supporter_key.in_(keys), Support.token_key.in_(keys)),
        )
    )
    if own or known is not None:
        return Supported(request_id, request.supporters, False)
    token_key = keys[-1] if supporter.follow_token and len(keys) > 1 else None
    try:
        with session.begin_nested():
            session.add(
                Support(
                    request_id=request_id,
                    supporter_key=keys[0],
                    token_key=token_key,
                    created_at=now,
                    account_id=supporter.account,
                    email=supporter.email or None,
                )
            )
    except IntegrityError:  # the same supporter in a concurrent transaction
        return Supported(request_id, request.supporters, False)
    before = request.supporters
    count = recount_supporters(session, request_id)
    session.add(
        AuditEntry(
            request_id=request_id,
            at=now,
            actor="citizen",
            action="supported",
            changes={"supporters": [before, count]},
        )
    )
    service = jurisdiction.services_by_id.get(request.service_id)
    publish_in_transaction(
        session,
        Event(
            "requests311.supported",
            {
                "id": request_id,
                "jurisdiction": jurisdiction.code,
                "service_names": dict(service.names) if service else {},
                "email": supporter.email or None,
                "account": supporter.account or None,
                "language": supporter.language,
                "illustrative": bool(request.illustrative),
                "at": now.isoformat(),
            },
        ),
        bus,
    )
    return Supported(request_id, count, True)


def recount_supporters(session: Session, request_id: int) -> int:
    """Store and return how many supporters ``request_id`` has (counted, not incremented, so
    concurrent supports and merges cannot drift)."""
    session.flush()
    count = int(session.scalar(select(func.count()).where(Support.request_id == request_id)) or 0)
    session.execute(
        update(Request)
        .where(Request.id == request_id)
        .values(supporters=count)
        .execution_options(synchronize_session="fetch")
    )
    return count


def carry_supporters(session: Session, duplicate_id: int, original_id: int) -> int:
    """Move a merged duplicate's supporters to its original, and count the duplicate's reporter
    as one more (they reported the same problem). One row per supporter: whoever already
    supports or reported the original is not counted again. Returns the original's new count."""
    session.flush()
    duplicate, original = session.get(Request, duplicate_id), session.get(Request, original_id)
    assert duplicate is not None and original is not None
    present = {_reporter_key(original, original_id)}
    for key, token_key in session.execute(
        select(Support.supporter_key, Support.token_key).where(Support.request_id == original_id)
    ):
        present.update(k for k in (key, token_key) if k)
    for support in session.scalars(select(Support).where(Support.request_id == duplicate_id)):
        keys = {k for k in (support.supporter_key, support.token_key) if k}
        if keys & present:
            session.delete(support)
        else:
            support.request_id = original_id
            present.update(keys)
    reporter = _reporter_key(duplicate, duplicate_id)
    if reporter not in present:
        session.add(
            Support(
                request_id=original_id,
                supporter_key=reporter,
                created_at=duplicate.requested_at,
                account_id=duplicate.account_id,
                email=duplicate.email,
            )
        )
    recount_supporters(session, duplicate_id)
    return recount_supporters(session, original_id)


def _reporter_key(request: Request, request_id: int) -> str:
    """The key a request's reporter would support under (their account, else their e-mail, else
    the request itself for an anonymous report)."""
    keys = Supporter(account=request.account_id, email=request.email).keys()
    return keys[0] if keys else f"request:{request_id}"


def nearby_entry(item: NearbyRequest, *, city: str) -> dict[str, Any]:
    """One hint as the form's script reads it (public fields only)."""
    request = item.request
    return {
        "id": request.service_request_id,
        "service_name": request.service_name,
        "status": request.lifecycle_status,
        "description": (request.description or "")[:200],
        "address": request.address,
        "requested": (as_utc(request.requested_datetime) or request.requested_datetime).isoformat(),
        "distance_m": round(item.distance_m),
        "similarity": round(item.similarity, 2),
        "supporters": request.supporters,
        "url": f"/requests/{request.service_request_id}?city={city}",
    }
