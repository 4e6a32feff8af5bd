"""Incidents: opened by rules or operators, deduplicated, routed to the responsible service by
category and district, escalated by time, closed with a reason; every change is in the audit trail.

Services are plain functions over a Session; they return ``IncidentView`` dataclasses so the
dashboard and the API render the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, cast

import yaml
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session, object_session

from qala.components.accounts.scope import StaffScope
from qala.components.operate.finding_text import message_of_row, plain
from qala.components.operate.models import Incident, IncidentAudit, IncidentLink
from qala.core.errors import ConflictError, NotFoundError, Problem, ValidationError
from qala.core.i18n import Translator
from qala.core.messages import Message, msg

_INCIDENT = cast(Table, Incident.__table__).c

SEVERITIES = ("info", "warning", "major", "critical")
STATUSES = ("open", "acknowledged", "closed")
SERVICES = ("emergency", "utilities", "police", "ecology")


# ---------------------------------------------------------------------------------------------
# Routing policy


@dataclass(frozen=True)
class RoutingPolicy:
    """Categories → service, escalation deadlines and district overrides (``data/routing.yaml``)."""

    categories: dict[str, dict[str, Any]]
    escalation: dict[str, dict[str, float]]
    escalation_targets: dict[int, str]
    districts: dict[str, dict[str, str]]
    close_reasons: tuple[str, ...]

    def service_for(self, category: str, domain: str = "default") -> str:
        entry = self.categories.get(category)
        if entry is None:
            raise ValidationError(
                [
                    Problem(
                        f"unknown incident category; known: {', '.join(sorted(self.categories))}",
                        column="category",
                        value=category,
                    )
                ],
                "cannot route the incident",
            )
        service = entry["service"]
        if isinstance(service, dict):
            return str(service.get(domain, service["default"]))
        return str(service)

    def unit_for(self, service: str, district: str | None) -> str:
        override = self.districts.get(district or "", {}).get(service)
        return override or f"{service}:{district or 'city'}"

    def title_for(self, category: str) -> str:
        return str(self.categories.get(category, {}).get("title", category.replace("_", " ")))

    def deadlines(self, severity: str) -> tuple[timedelta, timedelta]:
        rule = self.escalation.get(severity, self.escalation["info"])
        return (
            timedelta(minutes=float(rule["acknowledge_minutes"])),
            timedelta(hours=float(rule["resolve_hours"])),
        )


@lru_cache(maxsize=1)
def load_routing() -> RoutingPolicy:
    """The bundled routing policy."""
    text = (
        resources.files("qala.components.operate").joinpath("data/routing.yaml").read_text("utf-8")
    )
    raw = yaml.safe_load(text)
    return RoutingPolicy(
        categories=dict(raw["categories"]),
        escalation={k: dict(v) for k, v in raw["escalation"].items()},
        escalation_targets={int(k): str(v) for k, v in raw["escalation_targets"].items()},
        districts={k: dict(v) for k, v in (raw.get("districts") or {}).items()},
        close_reasons=tuple(raw["close_reasons"]),
    )


# ---------------------------------------------------------------------------------------------
# Views


@dataclass
class AuditEntry:
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]


@dataclass
class IncidentView:
    """An incident as the dashboard and the API show it."""

    id: int
    title: str
    description: str
    category: str
    severity: str
    status: str
    service: str
    unit: str
    place_code: str | None
    lat: float | None
    lon: float | None
    sensor: str | None
    source: str
    opened_by: str
    assignee: str | None
    escalation_level: int
    opened_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    close_note: str | None
    links: list[dict[str, Any]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    description_message: Message | None = None
    """A rule incident's description as a message id and values (from the finding that opened
    it), for any reader's language; None for an incident an operator or a resident wrote."""

    def as_dict(self, translator: Translator | None = None) -> dict[str, Any]:
        """JSON form; with ``translator``, ``title`` and ``description`` in its language (the
        message stays machine-readable in ``description_message``, times in ISO 8601)."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("audit", "description_message")}
        for key in ("opened_at", "acknowledged_at", "closed_at"):
            value = data[key]
            data[key] = value.isoformat() if value else None
        message = self.description_message
        data["description_message"] = None if message is None else plain(message.as_dict())
        if translator is not None:
            data["title"] = shown_title(self, translator)
            if message is not None:
                data["description"] = translator.message(message)
            data["language"] = translator.language
        data["audit"] = [
            {"at": a.at.isoformat(), "actor": a.actor, "action": a.action, "details": a.details}
            for a in self.audit
        ]
        return data


def shown_title(incident: Any, translator: Translator) -> str:
    """The title in the reader's language: the routing policy's title for the category (as a
    catalogue id); a title an operator typed stays as typed."""
    key = f"incident.title.{incident.category}"
    english = Translator("en")(key)
    title = str(incident.title or "")
    return translator(key) if english != key and title == english else title


def opening_messages(session: Session, incident_ids: list[int]) -> dict[int, Message]:
    """For each rule incident among ``incident_ids``, the message of the finding that opened
    it (its first)."""
    from qala.components.operate.models import Finding

    if not incident_ids:
        return {}
    first = (
        select(func.min(Finding.id))
        .where(Finding.incident_id.in_(incident_ids))
        .group_by(Finding.incident_id)
    )
    return {
        int(row.incident_id): message_of_row(row)
        for row in session.scalars(select(Finding).where(Finding.id.in_(first)))
        if row.incident_id is not None
    }


def view(
    incident: Incident, *, with_audit: bool = True, message: Message | bool | None = True
) -> IncidentView:
    """The incident as shown; ``message`` True looks up its opening finding's message."""
    shown: Message | None = message if isinstance(message, Message) else None
    if message is True:
        session = object_session(incident)
        found = opening_messages(session, [incident.id]) if session is not None else {}
        shown = found.get(incident.id)
    return IncidentView(
        id=incident.id,
        title=incident.title,
        description=incident.description,
        category=incident.category,
        severity=incident.severity,
        status=incident.status,
        service=incident.service,
        unit=incident.unit,
        place_code=incident.place_code,
        lat=incident.lat,
        lon=incident.lon,
        sensor=incident.sensor,
        source=incident.source,
        opened_by=incident.opened_by,
        assignee=incident.assignee,
        escalation_level=incident.escalation_level,
        opened_at=incident.opened_at,
        acknowledged_at=incident.acknowledged_at,
        closed_at=incident.closed_at,
        close_reason=incident.close_reason,
        close_note=incident.close_note,
        links=[
            {"kind": link.kind, "ref": link.ref, "distance_m": link.distance_m, "note": link.note}
            for link in incident.links
        ],
        audit=[AuditEntry(a.at, a.actor, a.action, dict(a.details)) for a in incident.audit]
        if with_audit
        else [],
        description_message=shown,
    )


# ---------------------------------------------------------------------------------------------
# Opening and deduplicating


def dedup_key_for(
    category: str,
    *,
    sensor: str | None,
    place_code: str | None,
    lat: float | None,
    lon: float | None,
) -> str:
    """Two reports with the same key while one is open are the same incident.

    Rule incidents key on (category, sensor); operator reports on (category, place) with the
    position rounded to about 100 m, so two calls about the same burst pipe meet.
    """
    if sensor:
        return f"{category}|sensor:{sensor}"
    if lat is not None and lon is not None:
        return f"{category}|at:{round(lat, 3):.3f},{round(lon, 3):.3f}"
    return f"{category}|place:{place_code or 'city'}"


def add_audit_entry(
    session: Session, incident: Incident, at_: datetime, actor_: str, action_: str, **details: Any
) -> None:
    """Record one change of ``incident`` in its audit trail (``details`` as JSON)."""
    entry = IncidentAudit(
        incident_id=incident.id, at=at_, actor=actor_, action=action_, details=details
    )
    session.add(entry)
    incident.audit.append(entry)


def find_open(session: Session, dedup_key: str) -> Incident | None:
    return session.scalar(
        select(Incident)
        .where(Incident.dedup_key == dedup_key, Incident.status != "closed")
        .order_by(Incident.id)
        .limit(1)
    )


@dataclass
class OpenResult:
    incident: Incident
    created: bool


def open_incident(
    session: Session,
    *,
    category: str,
    severity: str,
    now: datetime,
    actor: str,
    source: str = "operator",
    title: str | None = None,
    description: str = "",
    place_code: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    sensor: str | None = None,
    domain: str = "default",
    illustrative: bool = False,
    evidence: dict[str, Any] | None = None,
) -> OpenResult:
    """Open an incident, or attach the report to the open incident with the same dedup key.

    An attached report raises the open incident's severity when it is worse, and is recorded in
    the audit trail as ``duplicate_report`` (operator) or ``evidence_added`` (rule).
    """
    problems = []
    if severity not in SEVERITIES:
        problems.append(
            Problem(
                f"severity must be one of {', '.join(SEVERITIES)}",
                column="severity",
                value=severity,
            )
        )
    if (lat is None) != (lon is None):
        problems.append(Problem("give both `lat` and `lon`, or neither", column="lat"))
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        problems.append(
            Problem("coordinates outside [-90..90, -180..180]", column="lat", value=(lat, lon))
        )
    if problems:
        raise ValidationError(problems, "cannot open the incident")
    policy = load_routing()
    service = policy.service_for(category, domain)
    key = dedup_key_for(category, sensor=sensor, place_code=place_code, lat=lat, lon=lon)
    existing = find_open(session, key)
    if existing is not None:
        if SEVERITIES.index(severity) > SEVERITIES.index(existing.severity):
            add_audit_entry(
                session,
                existing,
                now,
                actor,
                "severity_raised",
                **{"from": existing.severity, "to": severity},
            )
            existing.severity = severity
        add_audit_entry(
            session,
            existing,
            now,
            actor,
            "duplicate_report" if source == "operator" else "evidence_added",
            **(evidence or {"description": description}),
        )
        return OpenResult(existing, created=False)
    incident = Incident(
        dedup_key=key,
        title=title or policy.title_for(category),
        description=description,
        category=category,
        severity=severity,
        status="open",
        service=service,
        unit=policy.unit_for(service, place_code),
        place_code=place_code,
        lat=lat,
        lon=lon,
        sensor=sensor,
        source=source,
        opened_by=actor,
        opened_at=now,
        escalation_level=0,
        illustrative=illustrative,
    )
    session.add(incident)
    session.flush()
    add_audit_entry(
        session,
        incident,
        now,
        actor,
        "opened",
        category=category,
        severity=severity,
        service=service,
        unit=incident.unit,
        **(evidence or {}),
    )
    return OpenResult(incident, created=True)


# ---------------------------------------------------------------------------------------------
# Life cycle


def get_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFoundError(f"no incident {incident_id}").with_message(
            msg("incident.refused_missing", id=incident_id)
        )
    return incident


def incident_in_scope(session: Session, incident_id: int, scope: StaffScope) -> Incident:
    """The incident, when the account's place covers it; else as if it did not exist (an
    operator of one city learns nothing of another's incidents)."""
    incident = get_incident(session, incident_id)
    if not scope.covers(incident.place_code):
        raise NotFoundError(f"no incident {incident_id}").with_message(
            msg("incident.refused_missing", id=incident_id)
        )
    return incident


def acknowledge(
    session: Session, incident_id: int, *, actor: str, now: datetime, note: str | None = None
) -> Incident:
    incident = get_incident(session, incident_id)
    if incident.status != "open":
        raise ConflictError(
            f"incident {incident_id} is {incident.status}; only an open incident is acknowledged"
        ).with_message(
            msg(
                "incident.refused_acknowledge",
                id=incident_id,
                status=msg(f"status.{incident.status}"),
            )
        )
    incident.status = "acknowledged"
    incident.acknowledged_at = now
    incident.assignee = incident.assignee or actor
    add_audit_entry(session, incident, now, actor, "acknowledged", note=note)
    return incident


def assign(
    session: Session, incident_id: int, *, assignee: str, actor: str, now: datetime
) -> Incident:
    incident = get_incident(session, incident_id)
    if incident.status == "closed":
        raise ConflictError(f"incident {incident_id} is closed").with_message(
            msg("incident.refused_closed", id=incident_id)
        )
    add_audit_entry(
        session, incident, now, actor, "assigned", **{"from": incident.assignee, "to": assignee}
    )
    incident.assignee = assignee
    return incident


def reroute(
    session: Session, incident_id: int, *, service: str, actor: str, now: datetime, reason: str
) -> Incident:
    """Hand the incident to another service (e.g. ecology → emergency when people are at risk)."""
    if service not in SERVICES:
        raise ValidationError.single(
            f"service must be one of {', '.join(SERVICES)}", column="service", value=service
        )
    incident = get_incident(session, incident_id)
    if incident.status == "closed":
        raise ConflictError(f"incident {incident_id} is closed").with_message(
            msg("incident.refused_closed", id=incident_id)
        )
    unit = load_routing().unit_for(service, incident.place_code)
    add_audit_entry(
        session,
        incident,
        now,
        actor,
        "rerouted",
        **{"from": incident.unit, "to": unit, "reason": reason},
    )
    incident.service, incident.unit = service, unit
    return incident


def close(
    session: Session,
    incident_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
    note: str | None = None,
) -> Incident:
    """Close with one of the policy's reasons (resolved, false_alarm, duplicate, sensor_fault…)."""
    reasons = load_routing().close_reasons
    if reason not in reasons:
        raise ValidationError.single(
            f"close reason must be one of {', '.join(reasons)}",
            column="reason",
            value=reason,
            message=msg("request.refused_close_reason"),
        )
    incident = get_incident(session, incident_id)
    if incident.status == "closed":
        raise ConflictError(
            f"incident {incident_id} is already closed ({incident.close_reason})"
        ).with_message(msg("incident.refused_closed", id=incident_id))
    incident.status = "closed"
    incident.closed_at = now
    incident.close_reason = reason
    incident.close_note = note
    if incident.acknowledged_at is None:
        incident.acknowledged_at = now
    add_audit_entry(session, incident, now, actor, "closed", reason=reason, note=note)
    return incident


def add_note(
    session: Session, incident_id: int, *, text: str, actor: str, now: datetime
) -> Incident:
    incident = get_incident(session, incident_id)
    add_audit_entry(session, incident, now, actor, "note", text=text)
    return incident


def escalate_due(
    session: Session, *, now: datetime, actor: str = "system:escalation"
) -> list[Incident]:
    """Escalate incidents past their deadlines: level 1 when not acknowledged in time, level 2
    when not closed in time. Returns the incidents escalated now (each at most once per level)."""
    policy = load_routing()
    escalated = []
    for incident in session.scalars(
        select(Incident).where(Incident.status != "closed").order_by(Incident.id)
    ):
        ack_deadline, resolve_deadline = policy.deadlines(incident.severity)
        opened = _aware(incident.opened_at)
        level = incident.escalation_level
        if incident.acknowledged_at is None and now - opened >= ack_deadline:
            level = max(level, 1)
        if now - opened >= resolve_deadline:
            level = max(level, 2)
        if level > incident.escalation_level:
            target = policy.escalation_targets[level].format(service=incident.service)
            add_audit_entry(
                session,
                incident,
                now,
                actor,
                "escalated",
                level=level,
                to=target,
                minutes_open=round((now - opened).total_seconds() / 60, 1),
            )
            incident.escalation_level = level
            incident.escalated_at = now
            escalated.append(incident)
    return escalated


def _aware(moment: datetime) -> datetime:
    # SQLite gives naive datetimes back even for timezone-aware columns; they were stored in UTC.
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def link(
    session: Session,
    incident_id: int,
    *,
    kind: str,
    ref: str,
    actor: str,
    now: datetime,
    distance_m: float | None = None,
    note: str | None = None,
) -> bool:
    """Link the incident to an outside record (``citizen_request`` id, entity id); False if already linked."""
    incident = get_incident(session, incident_id)
    if any(x.kind == kind and x.ref == ref for x in incident.links):
        return False
    record = IncidentLink(
        incident_id=incident.id, kind=kind, ref=ref, distance_m=distance_m, note=note
    )
    session.add(record)
    incident.links.append(record)
    add_audit_entry(
        session, incident, now, actor, "linked", kind=kind, ref=ref, distance_m=distance_m
    )
    return True


def list_incidents(
    session: Session,
    *,
    status: str | None = None,
    service: str | None = None,
    category: str | None = None,
    place_code: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[IncidentView]:
    """Incidents, newest first, filtered by status (``active`` = not closed), service, category, place."""
    query = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc())
    if status == "active":
        query = query.where(Incident.status != "closed")
    elif status:
        query = query.where(Incident.status == status)
    if service:
        query = query.where(Incident.service == service)
    if category:
        query = query.where(Incident.category == category)
    if place_code:
        query = query.where(Incident.place_code == place_code)
    rows = list(session.scalars(query.limit(limit).offset(offset)))
    messages = opening_messages(session, [row.id for row in rows])
    return [view(row, with_audit=False, message=messages.get(row.id)) for row in rows]


def count_incidents(
    session: Session, *, status: str | None = None, service: str | None = None
) -> int:
    """How many incidents (``status="active"``: not closed), without loading them."""
    from sqlalchemy import func

    query = select(func.count()).select_from(Incident)
    if status == "active":
        query = query.where(Incident.status != "closed")
    elif status:
        query = query.where(Incident.status == status)
    if service:
        query = query.where(Incident.service == service)
    return int(session.scalar(query) or 0)


INCIDENTS_IN_BOX = select(
    _INCIDENT.id, _INCIDENT.lat, _INCIDENT.lon, _INCIDENT.opened_at, _INCIDENT.closed_at
).where(
    _INCIDENT.lat.between(bindparam("lat_min"), bindparam("lat_max")),
    _INCIDENT.lon.between(bindparam("lon_min"), bindparam("lon_max")),
)
"""Candidates for :func:`nearby_open_incidents`: incidents in the box :func:`box_around` bounds
(id, position, opened and closed times), for :func:`open_incidents_among`."""


def latest_change(session: Session) -> int:
    """A number that grows with every change to any incident (its audit trail's newest id)."""
    return int(session.scalar(select(func.max(IncidentAudit.id))) or 0)


def box_around(lat: float, lon: float, radius_m: float) -> dict[str, float]:
    """The parameters of :data:`INCIDENTS_IN_BOX` for a box holding the circle of ``radius_m``
    around a point."""
    dlat = math.degrees(radius_m / 6_371_008.8) * 1.01
    dlon = dlat / max(math.cos(math.radians(min(89.0, abs(lat) + dlat))), 1e-6)
    return {
        "lat_min": lat - dlat,
        "lat_max": lat + dlat,
        "lon_min": lon - dlon,
        "lon_max": lon + dlon,
    }


def nearby_open_incidents(
    session: Session, *, lat: float, lon: float, at: datetime, radius_m: float, window: timedelta
) -> list[tuple[int, float]]:
    """Ids of incidents open (or closed within ``window``) within ``radius_m`` of a point and
    ``window`` of a time, with their distances in metres, nearest first."""
    # Plain columns and a statement built once, not Incident objects: every citizen request asks
    # this and usually nothing is near; the ORM cost more than the indexed query.
    candidates = session.connection().execute(INCIDENTS_IN_BOX, box_around(lat, lon, radius_m))
    return open_incidents_among(
        candidates, lat=lat, lon=lon, at=at, radius_m=radius_m, window=window
    )


def open_incidents_among(
    candidates: Iterable[Sequence[Any]],
    *,
    lat: float,
    lon: float,
    at: datetime,
    radius_m: float,
    window: timedelta,
) -> list[tuple[int, float]]:
    """Which of ``candidates`` (rows of :data:`INCIDENTS_IN_BOX`) :func:`nearby_open_incidents`
    answers, with their distances in metres, nearest first."""
    from qala.components.operate.ngsi import haversine_m

    found = []
    for incident_id, incident_lat, incident_lon, opened_at, closed_at in candidates:
        opened = _aware(opened_at)
        closed = _aware(closed_at) if closed_at else None
        if opened - window > at or (closed is not None and closed + window < at):
            continue
        distance = haversine_m(lat, lon, incident_lat, incident_lon)
        if distance <= radius_m:
            found.append((int(incident_id), distance))
    return sorted(found, key=lambda pair: pair[1])
