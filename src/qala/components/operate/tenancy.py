"""NGSI-LD tenants are cities: the ``NGSILD-Tenant`` header names a place code, and a staff
account scoped to a city writes only as that tenant and only entities of that city (or of its
districts). National staff may name any tenant, or none. A read under a tenant sees only that
city's entities (and its districts'); a read without one sees every city's (the national view)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.accounts.scope import StaffScope
from qala.components.catalog.services import place_and_descendants
from qala.components.operate.models import Entity
from qala.components.operate.ngsi import NgsiError
from qala.core.errors import PermissionDeniedError

TENANT_HEADER = "NGSILD-Tenant"


@dataclass(frozen=True)
class TenantWriter:
    """Who writes, and the place codes their writes may touch (None: any)."""

    username: str
    tenant: str | None
    places: frozenset[str] | None

    def require_place(self, place_code: str | None, entity_id: str) -> None:
        """PermissionDeniedError unless an entity of ``place_code`` is this writer's to change."""
        if self.places is None:
            return
        if place_code is None or place_code not in self.places:
            raise PermissionDeniedError(
                f"entity {entity_id} is not in {self.tenant}, the tenant this account writes for"
            )

    def require_attrs(self, entity_id: str, attrs: dict[str, Any]) -> None:
        """Check the place an incoming entity declares (``placeCode`` or ``district``)."""
        if self.places is None:
            return
        place = attrs.get("placeCode") or attrs.get("district")
        value = place.get("value") if isinstance(place, dict) else place
        self.require_place(value if isinstance(value, str) else None, entity_id)

    def require_fragment(self, entity_id: str, attrs: dict[str, Any]) -> None:
        """An update may not move an entity to another city."""
        if self.places is not None and ("placeCode" in attrs or "district" in attrs):
            self.require_attrs(entity_id, attrs)

    def require_batch(self, session: Session, items: list[Any], *, new: bool) -> None:
        """Every entity of a batch must be this writer's (stored ones, and, for creations and
        upserts, the place each declares); one outside refuses the whole batch."""
        if self.places is None:
            return
        for item in items:
            entity_id = item.get("id") if isinstance(item, dict) else item
            if not isinstance(entity_id, str):
                continue  # the broker reports the malformed item
            self.require_stored(session, entity_id)
            if new and isinstance(item, dict) and session.get(Entity, entity_id) is None:
                self.require_attrs(entity_id, item)
            elif isinstance(item, dict):
                self.require_fragment(entity_id, item)

    def require_stored(self, session: Session, entity_id: str) -> None:
        """Check a stored entity's place (an absent entity is left to the broker's 404)."""
        entity = session.get(Entity, entity_id)
        if entity is not None:
            self.require_place(entity.place_code, entity_id)


def tenant_writer(session: Session, user: Any, header: str | None) -> TenantWriter:
    """The writer ``user`` is under the tenant the header names (their own city by default)."""
    scope = StaffScope.of(user)
    tenant = scope.place_or((header or "").strip().lower() or None)
    if scope.national:
        return TenantWriter(user.username, tenant, None)
    assert tenant is not None
    return TenantWriter(user.username, tenant, tenant_city(session, tenant))


def tenant_city(session: Session, tenant: str) -> frozenset[str]:
    """The place codes of ``tenant``'s city and its districts (the tenant alone when it is no
    catalogued place: entities written under it still carry it)."""
    return frozenset(place_and_descendants(session, tenant).values()) or frozenset({tenant})


def tenant_places(session: Session, header: str | None) -> frozenset[str] | None:
    """The place codes a read under the tenant the header names sees (None: no tenant, every
    city); a tenant that is neither a place nor the place of a stored entity is
    ``NonexistentTenant`` (clause 5.5.10 of the specification: 404)."""
    tenant = (header or "").strip().lower()
    if not tenant:
        return None
    places = frozenset(place_and_descendants(session, tenant).values())
    if places:
        return places
    # Like the writer's fallback above: a tenant written without a catalogued place still is one.
    if session.scalar(select(Entity.id).where(Entity.place_code == tenant).limit(1)) is not None:
        return frozenset({tenant})
    raise NgsiError(
        "NonexistentTenant",
        f"there is no tenant {tenant}: {TENANT_HEADER} names a city by its place code",
    )
