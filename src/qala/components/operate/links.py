"""Linking incidents to citizen requests about the same place and time — through events and ids,
never by importing the requests component.

When a ``requests311.created`` event carries a position (``lat`` and ``lon``/``long``) Operate keeps the
request as a ``ServiceRequest`` context entity (PAS 182 concept *case*) and links it to open
incidents within ``RADIUS_M`` and ``WINDOW``; when an operator opens an incident at a position,
the requests already known near it are linked the same way. Operators can also link a request by
its id (``request_ids`` when opening, or ``POST /incidents/{id}/links``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, true
from sqlalchemy.orm import Session

from qala.components.operate import incidents as incident_services
from qala.components.operate.models import Entity, Incident
from qala.components.operate.ngsi import haversine_m
from qala.events import Event
from qala.runtime import Context
from qala.store.direct import DirectStatement
from qala.store.statements import dialect_insert

RADIUS_M = 300.0
WINDOW = timedelta(hours=48)
REQUEST_TYPE = "ServiceRequest"
CREATED_EVENT = "requests311.created"


def _number(payload: dict[str, Any], *names: str) -> float | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                continue
    return None


def _moment(payload: dict[str, Any], fallback: datetime) -> datetime:
    # Imported here: readings needs the detection engine (pandas), and this module is imported
    # by every process's start-up (subscribe_to_citizen_requests), the CLI's included.
    from qala.components.operate.readings import parse_time_us

    for name in ("requested_datetime", "created_at", "time", "at"):
        raw = payload.get(name)
        if isinstance(raw, datetime):
            return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
        if isinstance(raw, str):
            try:
                return datetime.fromtimestamp(parse_time_us(raw) / 1e6, UTC)
            except ValueError:
                continue
    return fallback


@lru_cache(maxsize=4)
def _insert_entity(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` into entities, built once per store kind
    (values go to ``execute`` so its compiled form is reused too)."""
    table = cast(Table, Entity.__table__)
    return (
        dialect_insert(dialect, table)
        .values(_entity_values(table))
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )


_ENTITY_COLUMNS = ("id", "type", "concept", "attrs", "lat", "lon", "created_at", "modified_at")


def _entity_values(table: Table) -> dict[str, Any]:
    """The columns a request's entity is inserted with, as named parameters: its box (ngsi.box_of)
    is its point. Named apart from the incident box's ``lat_min`` … (incidents.box_around),
    which the PostgreSQL statement takes beside them."""
    values = {name: bindparam(name, type_=table.c[name].type) for name in _ENTITY_COLUMNS}
    values.update(
        lat_min=values["lat"], lat_max=values["lat"], lon_min=values["lon"], lon_max=values["lon"]
    )
    return values


@lru_cache(maxsize=1)
def _insert_entity_and_look_near() -> DirectStatement:
    """PostgreSQL: the entity inserted unless it exists (``created``: 1 or 0) and the incidents
    in the box around it (``incidents.INCIDENTS_IN_BOX``, none: one row of nulls), one statement
    and round trip instead of two. Values named as ``_ENTITY_COLUMNS``, the box as
    ``incidents.box_around``."""
    table = cast(Table, Entity.__table__)
    created = (
        dialect_insert("postgresql", table)
        .values(_entity_values(table))
        .on_conflict_do_nothing()
        .returning(table.c.id)
        .cte("created")
    )
    inserted = select(func.count().label("created")).select_from(created).subquery("inserted")
    near = incident_services.INCIDENTS_IN_BOX.subquery("near")
    return DirectStatement(
        select(inserted.c.created, *near.c).select_from(inserted.outerjoin(near, true()))
    )


def record_citizen_request(
    session: Session, payload: dict[str, Any], *, now: datetime
) -> list[int]:
    """Keep a citizen request (id, position, time) and link it to nearby incidents; returns their ids."""
    request_id = payload.get("id", payload.get("service_request_id"))
    lat, lon = _number(payload, "lat"), _number(payload, "lon", "long", "lng")
    if request_id is None:
        return []
    at = _moment(payload, now)
    entity_id = f"urn:ngsi-ld:{REQUEST_TYPE}:{request_id}"
    attrs: dict[str, Any] = {
        "dateCreated": {"type": "Property", "value": at.isoformat()},
        "requestId": {"type": "Property", "value": str(request_id)},
    }
    if payload.get("service") is not None:
        attrs["category"] = {"type": "Property", "value": str(payload["service"])}
    if lat is not None and lon is not None:
        attrs["location"] = {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [lon, lat]},
        }
    values = {
        "id": entity_id,
        "type": REQUEST_TYPE,
        "concept": "case",
        "attrs": attrs,
        "lat": lat if lon is not None else None,
        "lon": lon if lat is not None else None,
        "created_at": now,
        "modified_at": now,
    }
    # Every new citizen request comes here: one INSERT in the usual case, the ORM merge only when
    # the entity exists already (a redelivered event, or one an NGSI-LD client wrote).
    # Core on the session's connection: the ORM's execute path costs more than the INSERT.
    connection = session.connection()
    candidates: list[Any] | None = None
    if lat is not None and lon is not None and connection.dialect.name == "postgresql":
        # The insert and the look for incidents nearby in one round trip: the box is around the
        # request's own position either way.
        box = incident_services.box_around(lat, lon, RADIUS_M)
        rows = _insert_entity_and_look_near().rows(session, {**values, **box})
        created = bool(rows[0][0])
        candidates = [row[1:] for row in rows if row[1] is not None]
    else:
        created = (
            connection.execute(_insert_entity(connection.dialect.name), values).first() is not None
        )
    if not created:
        entity = session.get(Entity, entity_id)
        assert entity is not None
        entity.attrs = {**entity.attrs, **attrs}
        entity.modified_at = now
        if lat is not None and lon is not None:
            entity.lat, entity.lon = lat, lon
            entity.lat_min = entity.lat_max = lat
            entity.lon_min = entity.lon_max = lon
        session.flush()
        lat, lon = entity.lat, entity.lon
    if lat is None or lon is None:
        return []
    if candidates is None:
        nearby = incident_services.nearby_open_incidents(
            session, lat=lat, lon=lon, at=at, radius_m=RADIUS_M, window=WINDOW
        )
    else:
        nearby = incident_services.open_incidents_among(
            candidates, lat=lat, lon=lon, at=at, radius_m=RADIUS_M, window=WINDOW
        )
    linked = []
    for incident_id, distance in nearby:
        if incident_services.link(
            session,
            incident_id,
            kind="citizen_request",
            ref=str(request_id),
            actor="system:linker",
            now=now,
            distance_m=round(distance, 1),
        ):
            linked.append(incident_id)
    return linked


def link_requests_near(session: Session, incident: Incident, *, now: datetime) -> list[str]:
    """Link the citizen requests already known within ``RADIUS_M``/``WINDOW`` of an incident."""
    from qala.components.operate.readings import parse_time_us

    if incident.lat is None or incident.lon is None:
        return []
    opened = (
        incident.opened_at if incident.opened_at.tzinfo else incident.opened_at.replace(tzinfo=UTC)
    )
    linked = []
    for entity in session.scalars(
        select(Entity).where(Entity.type == REQUEST_TYPE, Entity.lat.is_not(None))
    ):
        assert entity.lat is not None and entity.lon is not None
        distance = haversine_m(incident.lat, incident.lon, entity.lat, entity.lon)
        if distance > RADIUS_M:
            continue
        created = entity.attrs.get("dateCreated", {}).get("value")
        try:
            at = datetime.fromtimestamp(parse_time_us(created) / 1e6, UTC) if created else opened
        except ValueError:
            at = opened
        if abs(at - opened) > WINDOW:
            continue
        ref = str(entity.attrs.get("requestId", {}).get("value", entity.id))
        if incident_services.link(
            session,
            incident.id,
            kind="citizen_request",
            ref=ref,
            actor="system:linker",
            now=now,
            distance_m=round(distance, 1),
        ):
            linked.append(ref)
    return linked


def subscribe_to_citizen_requests(context: Context) -> None:
    """Listen to ``requests311.created`` on the bus (the requests component is never imported).

    The request is recorded and linked inside the transaction that stores it, with the
    publisher's session (``EventBus.subscribe_in_transaction``): no second transaction and
    pooled connection per citizen report, and the entity exists exactly when the request does.
    """
    if context.extras.get("operate.linker_subscribed"):
        return
    context.extras["operate.linker_subscribed"] = True

    def handle(session: Session, event: Event) -> None:
        payload = dict(event.payload)
        if not payload.get("id", payload.get("service_request_id")):
            return
        record_citizen_request(session, payload, now=context.clock())

    # Only creation: a request's place and time never change afterwards, and status events
    # (acknowledged, closed…) carry no time of their own, so recording them would move the
    # request's dateCreated to the moment of the status change — and cost a statement each.
    context.bus.subscribe_in_transaction(CREATED_EVENT, handle)
