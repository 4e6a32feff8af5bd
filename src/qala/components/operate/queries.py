"""Read-side services for the dashboard and the API: sensors, findings, a summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.operate.dead_letters import count_dead_letters
from qala.components.operate.finding_text import message_of_row, plain
from qala.components.operate.models import Finding, Incident, Observation, Sensor
from qala.core.i18n import Translator
from qala.core.messages import Message
from qala.engines.detect import from_epoch_us


@dataclass
class SensorView:
    id: str
    entity_id: str
    name: str | None
    place_code: str | None
    group_id: str | None
    lat: float | None
    lon: float | None
    status: str
    last_seen: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FindingView:
    id: int
    rule_id: str
    kind: str
    sensor: str
    quantity: str
    start: str
    end: str
    severity: str
    value: float
    threshold: float | None
    unit: str
    explanation: str
    incident_id: int | None
    message: Message | None = None

    def as_dict(self, translator: Translator | None = None) -> dict[str, Any]:
        """JSON form; ``explanation`` is the engine's English unless a ``translator`` renders
        the message in its language (``message`` stays machine-readable either way)."""
        data = {k: v for k, v in self.__dict__.items() if k != "message"}
        data["message"] = None if self.message is None else plain(self.message.as_dict())
        if translator is not None and self.message is not None:
            data["explanation"] = translator.message(self.message)
            data["language"] = translator.language
        return data


@dataclass
class Summary:
    sensors: int
    observations: int
    findings_by_kind: dict[str, int]
    open_incidents_by_service: dict[str, int]
    incidents_total: int
    dead_letters: int
    """Messages refused at ingestion (``qala operate dead-letters`` lists them)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_sensors(session: Session) -> list[SensorView]:
    """Every sensor with its district, group, status and last reading time."""
    return [
        SensorView(
            s.id,
            s.entity_id,
            s.name,
            s.place_code,
            s.group_id,
            s.lat,
            s.lon,
            s.status,
            from_epoch_us(s.last_seen_us).isoformat() if s.last_seen_us is not None else None,
        )
        for s in session.scalars(select(Sensor).order_by(Sensor.id))
    ]


def list_findings(
    session: Session,
    *,
    sensor: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[FindingView]:
    """Findings, newest first, optionally of one sensor or kind (fault, episode, exceedance…)."""
    query = select(Finding).order_by(Finding.start_us.desc(), Finding.id.desc())
    if sensor:
        query = query.where(Finding.sensor == sensor)
    if kind:
        query = query.where(Finding.kind == kind)
    return [
        FindingView(
            f.id,
            f.rule_id,
            f.kind,
            f.sensor,
            f.quantity,
            from_epoch_us(f.start_us).isoformat(),
            from_epoch_us(f.end_us).isoformat(),
            f.severity,
            f.value,
            f.threshold,
            f.unit,
            f.explanation,
            f.incident_id,
            message_of_row(f),
        )
        for f in session.scalars(query.limit(limit).offset(offset))
    ]


def summary(session: Session, *, now: datetime) -> Summary:
    """Counts for the operations dashboard's header."""
    kinds = dict(session.execute(select(Finding.kind, func.count()).group_by(Finding.kind)).all())
    services = dict(
        session.execute(
            select(Incident.service, func.count())
            .where(Incident.status != "closed")
            .group_by(Incident.service)
        ).all()
    )
    return Summary(
        sensors=session.scalar(select(func.count()).select_from(Sensor)) or 0,
        observations=session.scalar(select(func.count()).select_from(Observation)) or 0,
        findings_by_kind={str(k): int(v) for k, v in kinds.items()},
        open_incidents_by_service={str(k): int(v) for k, v in services.items()},
        incidents_total=session.scalar(select(func.count()).select_from(Incident)) or 0,
        dead_letters=count_dead_letters(session),
    )
