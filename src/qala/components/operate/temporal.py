"""Temporal representation of entities (ETSI GS CIM 009, clause 4.5.7): the history of observed
values, read from the observation store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.operate.entities import observed_sensor_ids
from qala.components.operate.models import Entity, Observation
from qala.components.operate.ngsi import NgsiError
from qala.components.operate.readings import UNIT_CODES, parse_time_us
from qala.engines.detect import from_epoch_us

_CODES = {unit: code for code, unit in UNIT_CODES.items()}


def _iso(time_us: int) -> str:
    return from_epoch_us(time_us).isoformat().replace("+00:00", "Z")


def _number(value: float) -> float | int:
    """A stored value as it was sent: history keeps floats, a whole number was most likely an
    integer (``80``, not ``80.0``)."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def time_window(
    timerel: str | None, time_at: str | None, end_time_at: str | None
) -> tuple[int | None, int | None]:
    """[start, end) in epoch µs from ``timerel`` (before, after, between) and its times."""
    if timerel is None:
        return None, None
    try:
        at = parse_time_us(time_at) if time_at else None
        end = parse_time_us(end_time_at) if end_time_at else None
    except (ValueError, TypeError) as exc:
        raise NgsiError(
            "BadRequestData", f"timeAt/endTimeAt must be ISO 8601 with an offset: {exc}"
        ) from None
    if at is None:
        raise NgsiError("BadRequestData", "timerel needs timeAt")
    if timerel == "before":
        return None, at
    if timerel == "after":
        return at, None
    if timerel == "between":
        if end is None:
            raise NgsiError("BadRequestData", "timerel=between needs endTimeAt")
        return at, end
    raise NgsiError("BadRequestData", f"timerel {timerel!r} is not before, after or between")


def temporal_entities(
    session: Session,
    entities: Sequence[Entity],
    *,
    attrs: Sequence[str] | None,
    start_us: int | None,
    end_us: int | None,
    last_n: int | None,
    temporal_values: bool,
) -> list[dict[str, Any]]:
    """Each entity with its observed attributes as arrays of instances (or ``values`` pairs)."""
    sensors = observed_sensor_ids(session, [e.id for e in entities])
    out = []
    for entity in entities:
        ids = sensors.get(entity.id, [])
        history: dict[str, list[tuple[int, float, str]]] = {}
        if ids:
            statement = select(
                Observation.quantity, Observation.time_us, Observation.value, Observation.unit
            ).where(Observation.sensor.in_(ids))
            if attrs:
                statement = statement.where(Observation.quantity.in_(list(attrs)))
            if start_us is not None:
                statement = statement.where(Observation.time_us >= start_us)
            if end_us is not None:
                statement = statement.where(Observation.time_us < end_us)
            for quantity, time_us, value, unit in session.execute(
                statement.order_by(Observation.time_us)
            ):
                history.setdefault(quantity, []).append((time_us, value, unit))
        record: dict[str, Any] = {"id": entity.id, "type": entity.type}
        for quantity, rows in history.items():
            if last_n:
                rows = rows[-last_n:]
            if temporal_values:
                record[quantity] = {
                    "type": "Property",
                    "values": [[_number(v), _iso(t)] for t, v, _u in rows],
                }
            else:
                instances = []
                for time_us, value, unit in rows:
                    instance: dict[str, Any] = {
                        "type": "Property",
                        "value": _number(value),
                        "observedAt": _iso(time_us),
                    }
                    if unit in _CODES:
                        instance["unitCode"] = _CODES[unit]
                    instances.append(instance)
                record[quantity] = instances
        out.append(record)
    return out
