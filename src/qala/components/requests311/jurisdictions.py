"""A city's service catalogue in the store and in memory: writing a parsed catalogue
(:func:`load_catalogue`), reading every city's (:func:`load_jurisdictions`) and keeping it in a
short-lived cache shared by one platform's handlers (:func:`catalogue_cache`)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.requests311.catalogue import AttributeDefinition, CityArea, CityCatalogue
from qala.components.requests311.models import (
    Department,
    Jurisdiction,
    RoutingRule,
    Service,
)
from qala.core.errors import NotFoundError, Problem, ValidationError
from qala.engines.geo.area import haversine_km, in_geometry
from qala.runtime import Context

DEFAULT_SLA_HOURS = 72.0
"""The answer time assumed for a request whose service is no longer in the catalogue."""
CATALOGUE_CACHE_KEY = "requests311.catalogue_cache"
"""Where :func:`catalogue_cache` keeps a platform's cache in ``Context.extras``."""


def _name(row: Any, prefix: str, language: str) -> str:
    return str(getattr(row, f"{prefix}_{language}", None) or getattr(row, f"{prefix}_en", "") or "")


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
    area: CityArea | None = None
    """Where the city takes reports (None: anywhere)."""

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point is the city's: inside its boundary when known, else within its
        radius of the centre (a city with no area takes every point)."""
        if self.area is None:
            return True
        if self.area.boundary is not None:
            return in_geometry(lon, lat, self.area.boundary)
        return haversine_km(lat, lon, self.area.lat, self.area.lon) <= self.area.radius_km

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

    @cached_property
    def services_by_id(self) -> dict[int, ServiceInfo]:
        """The services keyed by their store id (made once per loaded catalogue)."""
        return {s.id: s for s in self.services.values()}

    def sla_hours(self, service_id: int) -> float:
        """The answer time of the service with ``service_id``, hours."""
        service = self.services_by_id.get(service_id)
        return service.sla_hours if service else DEFAULT_SLA_HOURS


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
            area=_area_of(j.area),
        )
    return result


def _area_of(stored: dict[str, Any] | None) -> CityArea | None:
    if not stored:
        return None
    return CityArea(
        float(stored["lat"]),
        float(stored["lon"]),
        float(stored["radius_km"]),
        stored.get("boundary"),
    )


class CatalogueCache:
    """Jurisdictions and services kept in memory for ``ttl`` seconds (catalogues change rarely;
    every request handler would otherwise re-read them)."""

    def __init__(self, sessions: Callable[[], Any], *, ttl: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._loaded_at = -math.inf
        self._value: dict[str, JurisdictionInfo] = {}
        self._lock = threading.Lock()
        self._refreshing = False

    @property
    def fresh(self) -> bool:
        """Whether ``get`` will answer from memory, without reading the store."""
        return time.monotonic() - self._loaded_at <= self._ttl

    def get(self) -> dict[str, JurisdictionInfo]:
        if time.monotonic() - self._loaded_at <= self._ttl:
            return self._value
        # No lock is held while the store is read: a report may read it on the event loop's
        # thread (qala.store.on_loop), where another report holding the lock would wait for
        # ever. One caller refreshes; the others answer from the catalogue it replaces,
        # seconds old, or read it themselves while there is none yet.
        with self._lock:
            refreshing = self._refreshing and self._loaded_at > -math.inf
            self._refreshing = True
        if refreshing:
            return self._value
        try:
            with self._sessions() as session:
                loaded = load_jurisdictions(session)
            with self._lock:
                # The same object while nothing changed: what was built from it (the public
                # answers' cache) stays valid.
                if loaded != self._value:
                    self._value = loaded
                self._loaded_at = time.monotonic()
        finally:
            self._refreshing = False
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


def catalogue_cache(context: Context) -> CatalogueCache:
    """The platform's shared catalogue cache, made on first use and kept in ``context.extras``
    (one per context: tests build many apps with different stores in one process)."""
    cache = context.extras.get(CATALOGUE_CACHE_KEY)
    if not isinstance(cache, CatalogueCache):
        cache = CatalogueCache(context.database.session, ttl=5.0)
        context.extras[CATALOGUE_CACHE_KEY] = cache
    return cache


def load_catalogue(session: Session, catalogue: CityCatalogue) -> JurisdictionInfo:
    """Create or update a city's jurisdiction, departments, services and routing (idempotent).

    Services missing from ``catalogue`` are deactivated, never deleted (requests point at them).
    """
    store_catalogue(session, catalogue)
    return load_jurisdictions(session)[catalogue.code]


def store_catalogue(session: Session, catalogue: CityCatalogue) -> None:
    """:func:`load_catalogue` without reading every city back (for loading many at once)."""
    jurisdiction = session.scalar(select(Jurisdiction).where(Jurisdiction.code == catalogue.code))
    if jurisdiction is None:
        jurisdiction = Jurisdiction(code=catalogue.code)
        session.add(jurisdiction)
    jurisdiction.name_kk, jurisdiction.name_ru, jurisdiction.name_en = (
        catalogue.name[k] for k in ("kk", "ru", "en")
    )
    jurisdiction.anonymous_allowed = catalogue.anonymous_allowed
    jurisdiction.contact, jurisdiction.key_service = catalogue.contact, catalogue.key_service
    jurisdiction.area = catalogue.area.as_json() if catalogue.area else None
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
