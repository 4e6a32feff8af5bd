"""Operate's tables: context entities (NGSI-LD / PAS 182), sensors, observation history, detector
state records, findings, incidents with their audit trail and links, and NGSI-LD subscriptions.

Times of observations are integer microseconds since the epoch (UTC), the detect engine's unit, so
``(sensor, quantity, time_us)`` deduplicates exactly and history scans are integer range scans.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qala.store.base import Base, utcnow

# BIGINT on PostgreSQL, INTEGER on SQLite (so that it is the rowid alias and autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Entity(Base):
    """One context entity as NGSI-LD holds it: id, type and its attributes (normalised form).

    ``concept`` is the PAS 182 concept the type maps to (organisation, place, community, item,
    service, resource, event, observation…); ``lat``/``lon`` repeat the ``location`` point (a
    shape's vertex mean) for the sensor it feeds and the maps, and ``lat_min`` … ``lon_max`` the
    box around all of its vertices, so that geo-queries pre-filter by box with an index before
    shapely decides: a 20 km road 100 m from a ``near`` point meets the point's box though its
    vertex mean is kilometres away.
    """

    __tablename__ = "operate_entity"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    type: Mapped[str] = mapped_column(String(256), index=True)
    concept: Mapped[str] = mapped_column(String(32), index=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    context: Mapped[Any] = mapped_column(JSON, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    lat_min: Mapped[float | None] = mapped_column(Float)
    lat_max: Mapped[float | None] = mapped_column(Float)
    lon_min: Mapped[float | None] = mapped_column(Float)
    lon_max: Mapped[float | None] = mapped_column(Float)
    place_code: Mapped[str | None] = mapped_column(String(80), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # The box index holds all four bounds, so the pre-filter tests them all in the index before
    # reading a row (whose attributes are large).
    # The point (lat, lon) has no index of its own: nothing looks entities up by it.
    __table_args__ = (Index("ix_operate_entity_box", "lat_min", "lat_max", "lon_min", "lon_max"),)


class Sensor(Base):
    """A source of observations: its context entity, district (for routing) and network group."""

    __tablename__ = "operate_sensor"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(256), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    place_code: Mapped[str | None] = mapped_column(String(80), index=True)
    group_id: Mapped[str | None] = mapped_column(String(80))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    first_seen_us: Mapped[int | None] = mapped_column(BigInteger)
    last_seen_us: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Observation(Base):
    """One stored reading (the history behind temporal queries and indicators)."""

    __tablename__ = "operate_observation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sensor: Mapped[str] = mapped_column(String(256))
    quantity: Mapped[str] = mapped_column(String(64))
    time_us: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(128))
    received_us: Mapped[int] = mapped_column(BigInteger)

    # On PostgreSQL the table is partitioned by month of ``time_us`` (operate/partitions.py), and
    # a partitioned table's unique keys must hold the partition key: a message id is unique with
    # its time, which still makes a redelivered message (same id, same time) a duplicate.
    __table_args__ = (
        UniqueConstraint("sensor", "quantity", "time_us"),
        UniqueConstraint("message_id", "time_us"),
    )


class _Rollup:
    """Count, sum, minimum and maximum of a stream's readings over one bucket, kept up to date by
    ingestion in the transaction that stores the readings (only readings actually stored count,
    so a redelivery never counts twice). Indicators and charts read these instead of scanning
    years of raw history."""

    sensor: Mapped[str] = mapped_column(String(256), primary_key=True)
    quantity: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_us: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[float] = mapped_column(Float)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)


class HourlyRollup(_Rollup, Base):
    """Per stream and UTC hour."""

    __tablename__ = "operate_observation_hourly"
    __table_args__ = (Index("ix_operate_observation_hourly_start_us", "start_us"),)


class DailyRollup(_Rollup, Base):
    """Per stream and UTC day."""

    __tablename__ = "operate_observation_daily"
    __table_args__ = (Index("ix_operate_observation_daily_start_us", "start_us"),)


class DetectorRecord(Base):
    """One record of the detect engine's streaming state: a ``(sensor, quantity)`` stream or a
    group's hour table, per rule set (one row each, so that ingest workers handling other
    sensors lock other rows).

    Written in the transaction that stores the readings it has seen, only when it changed
    (the engine's ``changes()``). ``version`` grows with every write, so a process keeping the
    record in memory knows from the locked row alone whether another process changed it.
    ``state`` is None for a record locked before it ever held anything.
    """

    __tablename__ = "operate_detector_record"

    rule_set: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(String(256), primary_key=True)
    quantity: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Finding(Base):
    """A rule's conclusion (exceedance, episode, anomaly, fault, silence), deduplicated by key."""

    __tablename__ = "operate_finding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    sensor: Mapped[str] = mapped_column(String(256), index=True)
    quantity: Mapped[str] = mapped_column(String(64))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    explanation: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("operate_incident.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("rule_id", "sensor", "start_us"),)


class Incident(Base):
    """Something a city service must act on, opened by a rule or an operator."""

    __tablename__ = "operate_incident"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(300), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True, default="open")
    service: Mapped[str] = mapped_column(String(40), index=True)
    unit: Mapped[str] = mapped_column(String(120))
    """The dispatch desk within the service (e.g. ``utilities:astana-esil``)."""
    place_code: Mapped[str | None] = mapped_column(String(80), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    sensor: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(16))
    opened_by: Mapped[str] = mapped_column(String(120))
    assignee: Mapped[str | None] = mapped_column(String(120))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(String(40))
    close_note: Mapped[str | None] = mapped_column(Text)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)

    audit: Mapped[list[IncidentAudit]] = relationship(
        back_populates="incident", order_by="IncidentAudit.id", cascade="all, delete-orphan"
    )
    links: Mapped[list[IncidentLink]] = relationship(
        back_populates="incident", order_by="IncidentLink.id", cascade="all, delete-orphan"
    )

    # Every citizen request looks for incidents near it (operate.links) by a bounding box.
    __table_args__ = (Index("ix_operate_incident_lat_lon", "lat", "lon"),)


class IncidentAudit(Base):
    """One entry of an incident's audit trail: who did what, when, with what details."""

    __tablename__ = "operate_incident_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("operate_incident.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    incident: Mapped[Incident] = relationship(back_populates="audit")


class IncidentLink(Base):
    """A link from an incident to something outside Operate (a citizen request, an entity)."""

    __tablename__ = "operate_incident_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("operate_incident.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(256))
    distance_m: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="links")

    __table_args__ = (UniqueConstraint("incident_id", "kind", "ref"),)


class Subscription(Base):
    """An NGSI-LD subscription: which entities to watch and the HTTP endpoint to notify."""

    __tablename__ = "operate_subscription"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    endpoint: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    times_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_notification: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    periodic_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When a ``timeInterval`` subscription is to be notified next (None: not periodic)."""
    tenant: Mapped[str | None] = mapped_column(String(80), index=True)
    """The ``NGSILD-Tenant`` (a city's place code) it was made under: it is told only of that
    city's entities, and seen only under it (None: made without one, every city)."""

    __table_args__ = (Index("ix_operate_subscription_periodic_due", "periodic_due_at"),)


class NotificationOutbox(Base):
    """What subscriptions still have to be told, kept in the store so that a crash loses none.

    A row is either an entity's change (``entity_id``, ``change``: staged in the transaction of
    the write that made it, deleted once its notifications have been tried) or a notification
    whose delivery failed (``subscription_id``, ``notification``: tried again at ``due_at``,
    ``attempts`` so far). ``due_at`` None with ``failed_at``: given up, kept for operators.
    """

    __tablename__ = "operate_notification_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity_id: Mapped[str | None] = mapped_column(String(256))
    change: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    subscription_id: Mapped[str | None] = mapped_column(String(256))
    notification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_operate_notification_outbox_due", "due_at"),
        Index("ix_operate_notification_outbox_failed", "failed_at"),
    )


class DeadLetter(Base):
    """A message (or one item of it) refused at ingestion, kept with the reason for operators.

    Refused messages are acknowledged, so one bad device never blocks the stream behind it;
    ``fingerprint`` (a hash of channel, source, item and payload) keeps a message the broker
    redelivers after a crash from being recorded twice.
    """

    __tablename__ = "operate_dead_letter"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(300))
    sensor: Mapped[str | None] = mapped_column(String(256), index=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class DeviceCredential(Base):
    """A provisioned device's broker login: the MQTT username is the sensor id, and only the
    Mosquitto hash of its password is kept (the password is shown once, when provisioned)."""

    __tablename__ = "operate_device_credential"

    sensor: Mapped[str] = mapped_column(ForeignKey("operate_sensor.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CSourceRegistration(Base):
    """An NGSI-LD context source registration (clause 5.2.9): which entities and attributes
    another system (``endpoint``) provides; queries are forwarded to it (see ``csources``).

    ``body`` is the registration as given, without ``@context``, which ``context`` keeps;
    ``tenant`` is the ``NGSILD-Tenant`` it was made under (None: the default tenant).
    """

    __tablename__ = "operate_csource_registration"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    context: Mapped[Any] = mapped_column(JSON, nullable=True)
    endpoint: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16), default="inclusive")
    tenant: Mapped[str | None] = mapped_column(String(80), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CSourceSubscription(Base):
    """A subscription to context source registrations (clause 5.2.12 applied to registrations):
    the same members and delivery record as ``Subscription``."""

    __tablename__ = "operate_csource_subscription"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    endpoint: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    tenant: Mapped[str | None] = mapped_column(String(80), index=True)
    times_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_notification: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AttributeInstance(Base):
    """One instance of an attribute's temporal evolution (NGSI-LD clause 4.5.7), of any kind
    (Property, Relationship, LanguageProperty, GeoProperty…), written by the temporal API.

    ``body`` is the instance as normalised NGSI-LD (without its ``instanceId``); the times are
    epoch µs. Deleting an attribute through the entity API leaves an instance with ``deletedAt``
    and the value ``urn:ngsi-ld:null``. Numeric readings of sensors stay in
    ``operate_observation`` only: a temporal answer joins both, an instance here hiding the
    reading at the same attribute and time.
    """

    __tablename__ = "operate_attribute_instance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(128), unique=True)
    entity_id: Mapped[str] = mapped_column(String(256))
    attr: Mapped[str] = mapped_column(String(512))
    dataset_id: Mapped[str | None] = mapped_column(String(512))
    observed_us: Mapped[int | None] = mapped_column(BigInteger)
    created_us: Mapped[int] = mapped_column(BigInteger)
    modified_us: Mapped[int] = mapped_column(BigInteger)
    deleted_us: Mapped[int | None] = mapped_column(BigInteger)
    """Set on the instance that records the attribute's deletion (``deletedAt``)."""
    body: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_operate_attribute_instance_entity", "entity_id", "attr", "observed_us"),
    )
