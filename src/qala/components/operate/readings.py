"""Incoming readings: the one shape every channel (HTTP batch, MQTT, NGSI-LD entities, CSV replay)
is turned into before ingestion, and the parsers that build it with clear errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qala.core.errors import Problem, raise_if_problems
from qala.engines.detect import normalise_unit

AIR_QUANTITIES = frozenset({"pm25", "pm10", "no2", "so2", "co", "o3", "pm1", "nh3", "h2s"})
HEATING_QUANTITIES = frozenset(
    {
        "supply_temperature",
        "return_temperature",
        "supply_pressure",
        "return_pressure",
        "outdoor_temperature",
    }
)
DEFAULT_UNITS = {
    **dict.fromkeys(AIR_QUANTITIES, "ug/m3"),
    "supply_temperature": "degC",
    "return_temperature": "degC",
    "outdoor_temperature": "degC",
    "temperature": "degC",
    "supply_pressure": "MPa",
    "return_pressure": "MPa",
}
# UN/CEFACT common codes used by Smart Data Models' ``unitCode``.
UNIT_CODES = {
    "GQ": "ug/m3",
    "GP": "mg/m3",
    "CEL": "degC",
    "KPA": "kPa",
    "MPA": "MPa",
    "BAR": "bar",
    "P1": "%",
    "59": "ppm",
    "61": "ppb",
    "MTR": "m",
    "MTS": "m/s",
    "KMH": "km/h",
    "E32": "1/h",
    "LUX": "lx",
    "KWH": "kWh",
    "WTT": "W",
    "M3": "m3",
}


def domain_of(quantity: str) -> str:
    """Which family of rules and which service a quantity belongs to: air, heating or other."""
    if quantity in AIR_QUANTITIES:
        return "air"
    if quantity in HEATING_QUANTITIES:
        return "heating"
    return "other"


@dataclass(frozen=True, slots=True)
class Reading:
    """One observation on its way in; ``message_id`` deduplicates redelivered messages."""

    sensor: str
    quantity: str
    time_us: int
    value: float
    unit: str
    message_id: str | None = None


def parse_time_us(raw: Any) -> int:
    """Epoch microseconds from ISO 8601 text with an offset, or an integer of microseconds.

    Raises ValueError with the reason (the caller names the row and field).
    """
    if isinstance(raw, bool):
        raise ValueError("time must be ISO 8601 text with an offset")
    if isinstance(raw, int):
        return raw
    if not isinstance(raw, str):
        raise ValueError(
            "time must be ISO 8601 text with an offset, e.g. 2025-12-01T08:00:00+05:00"
        )
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("time has no UTC offset (e.g. +05:00); naive times are ambiguous")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def readings_from_payload(payload: Any, *, source: str = "payload") -> list[Reading]:
    """Readings from a decoded JSON payload (an object, a list, or ``{"observations": [...]}``).

    An observation object has ``sensor``, ``quantity``, ``time`` (ISO 8601 with offset) or
    ``time_us``, ``value``, optional ``unit`` (default per quantity, e.g. ``ug/m3`` for PM2.5) and
    optional ``id`` (message id for deduplication). An NGSI-LD / Smart Data Models entity
    (AirQualityObserved…) is accepted too: each numeric property becomes a reading.

    Raises
    ------
    ValidationError
        Every problem found, each naming the item index and field.
    """
    if isinstance(payload, Mapping) and "observations" in payload:
        payload = payload["observations"]
    items = payload if isinstance(payload, list) else [payload]
    readings: list[Reading] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            problems.append(
                Problem("each observation must be a JSON object", file=source, row=index)
            )
            continue
        if "sensor" not in item and "id" in item and "type" in item:
            from qala.components.operate.ngsi import NgsiError, parse_entity

            try:
                entity = parse_entity(item)
            except NgsiError as exc:
                problems.append(Problem(exc.detail, file=source, row=index))
                continue
            readings.extend(readings_from_entity(entity.id, entity.attrs))
            continue
        reading = _reading(item, index, source, problems)
        if reading is not None:
            readings.append(reading)
    raise_if_problems(problems, f"invalid observations in {source}")
    return readings


def _reading(
    item: Mapping[str, Any], index: int, source: str, problems: list[Problem]
) -> Reading | None:
    before = len(problems)
    sensor = item.get("sensor")
    quantity = item.get("quantity")
    if not isinstance(sensor, str) or not sensor.strip():
        problems.append(
            Problem("`sensor` must be a non-empty text", file=source, row=index, column="sensor")
        )
    if not isinstance(quantity, str) or not quantity.strip():
        problems.append(
            Problem(
                "`quantity` must be a non-empty text (e.g. pm25)",
                file=source,
                row=index,
                column="quantity",
            )
        )
    raw_time = item.get("time_us", item.get("time"))
    time_us = 0
    try:
        time_us = parse_time_us(raw_time)
    except (ValueError, TypeError) as exc:
        problems.append(Problem(str(exc), file=source, row=index, column="time", value=raw_time))
    value = item.get("value")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value
        or value
        in (
            float("inf"),
            float("-inf"),
        )
    ):
        problems.append(
            Problem(
                "`value` must be a finite number",
                file=source,
                row=index,
                column="value",
                value=value,
            )
        )
    unit = item.get("unit")
    if unit is None and isinstance(quantity, str):
        unit = DEFAULT_UNITS.get(quantity)
    if not isinstance(unit, str) or not unit:
        problems.append(
            Problem(
                f"`unit` is required for quantity {quantity!r} (no default unit)",
                file=source,
                row=index,
                column="unit",
            )
        )
    message_id = item.get("id")
    if len(problems) > before:
        return None
    return Reading(
        str(sensor),
        str(quantity),
        time_us,
        float(value),  # type: ignore[arg-type]
        normalise_unit(str(unit)),
        str(message_id) if message_id is not None else None,
    )


def readings_from_entity(
    entity_id: str, attrs: Mapping[str, Mapping[str, Any]], *, now_us: int | None = None
) -> list[Reading]:
    """Observed numeric properties of an entity as readings of sensor ``entity_id``.

    The time is the attribute's ``observedAt``, else the entity's ``dateObserved`` (Smart Data
    Models), else ``now_us``; attributes without any time are not observations and are skipped.
    The unit comes from ``unitCode`` (UN/CEFACT code, e.g. ``GQ`` = µg/m³) or the quantity's default.
    """
    entity_time: int | None = None
    observed = attrs.get("dateObserved") or attrs.get("dateObservedTo")
    if observed is not None:
        raw = observed.get("value")
        if isinstance(raw, Mapping):
            raw = raw.get("@value")
        try:
            entity_time = parse_time_us(raw)
        except (ValueError, TypeError):
            entity_time = None
    readings = []
    for name, attribute in attrs.items():
        if attribute.get("type") != "Property":
            continue
        value = attribute.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        time_us = entity_time
        if "observedAt" in attribute:
            try:
                time_us = parse_time_us(attribute["observedAt"])
            except (ValueError, TypeError):
                time_us = entity_time
        if time_us is None:
            time_us = now_us
        if time_us is None:
            continue
        code = attribute.get("unitCode")
        unit = UNIT_CODES.get(str(code).upper(), str(code)) if code else DEFAULT_UNITS.get(name, "")
        readings.append(
            Reading(entity_id, name, time_us, float(value), normalise_unit(unit) if unit else "")
        )
    return readings


def readings_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Reading]:
    """Readings from already-validated mappings (CSV replay, simulator)."""
    return [
        Reading(
            str(row["sensor"]),
            str(row["quantity"]),
            int(row["time_us"]),
            float(row["value"]),
            str(row["unit"]),
            row.get("message_id"),
        )
        for row in rows
    ]
