"""Incoming readings: the one shape every channel (HTTP batch, MQTT, NGSI-LD entities, CSV replay)
is turned into before ingestion, and the parsers that build it with clear errors.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from qala.core.errors import Problem, ValidationError, raise_if_problems
from qala.engines.detect import conversion_factor, normalise_unit

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


# The history's column widths: a longer text would fail the whole batch's transaction.
MAX_TEXT = {"sensor": 256, "quantity": 64, "unit": 32, "id": 128}
# 2000-01-01T00:00Z. A device whose clock was reset reports 1970; no Qala data is that old.
EARLIEST_TIME_US = 946_684_800_000_000
# Clock skew a device may have; a reading further in the future would end every window early.
FUTURE_TOLERANCE_US = 86_400_000_000
# What a working device can report, in the quantity's default unit. Outside these bounds the
# reading is a device or encoding error, not a measurement; inside, implausible values (stuck,
# saturated, slightly negative after calibration drift) reach the rules, which report the fault.
PLAUSIBLE_RANGES = {
    "ug/m3": (-100.0, 1_000_000.0),
    "degC": (-90.0, 400.0),
    "MPa": (-0.2, 100.0),
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


@lru_cache(maxsize=1024)
def _factor_to_default(unit: str, quantity: str) -> float | None:
    """Multiplier from ``unit`` to ``quantity``'s default unit; None when the quantity has none.

    Raises ValueError when ``unit`` does not measure ``quantity`` (PM2.5 in degC).
    """
    expected = DEFAULT_UNITS.get(quantity)
    if expected is None:
        return None
    try:
        return conversion_factor(unit, expected)
    except ValidationError:
        raise ValueError(
            f"unit `{unit}` does not measure {quantity} (expected {expected} or a unit convertible to it)"
        ) from None


@lru_cache(maxsize=1024)
def _bounds(unit: str, quantity: str) -> tuple[float, float] | None:
    """The plausible range of ``quantity`` expressed in ``unit`` (finite floats: NaN and ±inf fall
    outside); None when the unit does not measure the quantity."""
    try:
        factor = _factor_to_default(unit, quantity)
    except ValueError:
        return None
    widest = (-sys.float_info.max, sys.float_info.max)
    if factor is None:
        return widest
    low, high = PLAUSIBLE_RANGES.get(DEFAULT_UNITS[quantity], widest)
    return low / factor, high / factor


def reading_problems(reading: Reading, *, now_us: int | None = None) -> list[tuple[str, str]]:
    """What makes a reading unusable, as ``(field, reason)`` pairs; empty when it may be ingested.

    Checks the unit against the quantity, the time (not before 2000, not more than a day ahead of
    ``now_us``), the value against the quantity's physical range and the texts' lengths.
    """
    now = time.time_ns() // 1_000 if now_us is None else now_us
    bounds = _bounds(reading.unit, reading.quantity)
    if (  # the usual case, decided in a few comparisons; the reasons are worked out below
        bounds is not None
        and bounds[0] <= reading.value <= bounds[1]
        and EARLIEST_TIME_US <= reading.time_us <= now + FUTURE_TOLERANCE_US
        and len(reading.sensor) <= MAX_TEXT["sensor"]
        and len(reading.quantity) <= MAX_TEXT["quantity"]
        and len(reading.unit) <= MAX_TEXT["unit"]
        and (reading.message_id is None or len(reading.message_id) <= MAX_TEXT["id"])
    ):
        return []
    return _problems_of(reading, now)


def _problems_of(reading: Reading, now: int) -> list[tuple[str, str]]:
    problems = [
        (name, f"`{name}` is longer than {limit} characters")
        for name, limit, text in (
            ("sensor", MAX_TEXT["sensor"], reading.sensor),
            ("quantity", MAX_TEXT["quantity"], reading.quantity),
            ("unit", MAX_TEXT["unit"], reading.unit),
            ("id", MAX_TEXT["id"], reading.message_id or ""),
        )
        if len(text) > limit
    ]
    if reading.time_us < EARLIEST_TIME_US:
        problems.append(("time", "time is before 2000-01-01 (is the device's clock set?)"))
    elif reading.time_us > now + FUTURE_TOLERANCE_US:
        problems.append(("time", "time is more than a day in the future"))
    if reading.value != reading.value or reading.value in (float("inf"), float("-inf")):
        problems.append(("value", "`value` must be a finite number"))
        return problems
    try:
        factor = _factor_to_default(reading.unit, reading.quantity)
    except ValueError as exc:
        problems.append(("unit", str(exc)))
        return problems
    if factor is not None:
        unit = DEFAULT_UNITS[reading.quantity]
        low, high = PLAUSIBLE_RANGES.get(unit, (float("-inf"), float("inf")))
        if not low <= reading.value * factor <= high:
            problems.append(
                (
                    "value",
                    f"{reading.value:g} {reading.unit} is outside what a {reading.quantity} "
                    f"sensor can report ({low:g}…{high:g} {unit})",
                )
            )
    return problems


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


@dataclass
class ParsedPayload:
    """A payload's items: the readings to ingest and, by item index, the problems of the others."""

    readings: list[Reading] = field(default_factory=list)
    problems: dict[int, list[Problem]] = field(default_factory=dict)
    items: list[Any] = field(default_factory=list)

    def all_problems(self) -> list[Problem]:
        return [p for index in sorted(self.problems) for p in self.problems[index]]


def parse_payload(
    payload: Any,
    *,
    source: str = "payload",
    now_us: int | None = None,
    unknown_sensors: Callable[[set[str]], set[str]] | None = None,
) -> ParsedPayload:
    """Parse and validate every item of a decoded JSON payload; bad items are set aside, not raised.

    The payload is an observation object, a list of them, ``{"observations": [...]}`` or NGSI-LD /
    Smart Data Models entities (see :func:`readings_from_payload`). Every reading is checked with
    :func:`reading_problems`; an item with any problem contributes no reading.
    ``unknown_sensors`` (given a set of sensor ids, the unregistered ones) refuses the items of
    unregistered sensors with the reason ``unknown sensor``.
    """
    if isinstance(payload, Mapping) and "observations" in payload:
        payload = payload["observations"]
    items = payload if isinstance(payload, list) else [payload]
    parsed = ParsedPayload(items=items)
    now = time.time_ns() // 1_000 if now_us is None else now_us
    accepted: list[tuple[int, Reading]] = []  # (item index, reading)
    for index, item in enumerate(items):
        problems: list[Problem] = []
        if not isinstance(item, Mapping):
            problems.append(
                Problem("each observation must be a JSON object", file=source, row=index)
            )
            readings: list[Reading] = []
        elif "sensor" not in item and "id" in item and "type" in item:
            from qala.components.operate.ngsi import NgsiError, parse_entity

            try:
                entity = parse_entity(item)
                readings = readings_from_entity(entity.id, entity.attrs)
            except NgsiError as exc:
                problems.append(Problem(exc.detail, file=source, row=index))
                readings = []
        else:
            reading = _reading(item, index, source, problems)
            if reading is not None and not reading_problems(reading, now_us=now):
                accepted.append((index, reading))  # the usual case: one good observation
                continue
            readings = [] if reading is None else [reading]
        for reading in readings:
            problems.extend(
                Problem(reason, file=source, row=index, column=column)
                for column, reason in reading_problems(reading, now_us=now)
            )
        if problems:
            parsed.problems[index] = problems
        else:
            accepted.extend((index, reading) for reading in readings)
    unknown = (
        unknown_sensors({r.sensor for _i, r in accepted})
        if unknown_sensors is not None and accepted
        else set()
    )
    if not unknown:
        parsed.readings = [r for _i, r in accepted]
        return parsed
    refused = {i for i, r in accepted if r.sensor in unknown}
    named: set[tuple[int, str]] = set()  # an entity's several readings name its sensor once
    for index, reading in accepted:
        if index not in refused:
            parsed.readings.append(reading)
        elif reading.sensor in unknown and (index, reading.sensor) not in named:
            named.add((index, reading.sensor))
            parsed.problems.setdefault(index, []).append(
                Problem(
                    "unknown sensor", file=source, row=index, column="sensor", value=reading.sensor
                )
            )
    parsed.problems = dict(sorted(parsed.problems.items()))
    return parsed


def readings_from_payload(
    payload: Any,
    *,
    source: str = "payload",
    unknown_sensors: Callable[[set[str]], set[str]] | None = None,
) -> list[Reading]:
    """Readings from a decoded JSON payload (an object, a list, or ``{"observations": [...]}``).

    An observation object has ``sensor``, ``quantity``, ``time`` (ISO 8601 with offset) or
    ``time_us``, ``value``, optional ``unit`` (default per quantity, e.g. ``ug/m3`` for PM2.5) and
    optional ``id`` (message id for deduplication). An NGSI-LD / Smart Data Models entity
    (AirQualityObserved…) is accepted too: each numeric property becomes a reading. Each reading
    is validated (:func:`reading_problems`); see :func:`parse_payload` for ``unknown_sensors``.

    Raises
    ------
    ValidationError
        Every problem found, each naming the item index and field.
    """
    parsed = parse_payload(payload, source=source, unknown_sensors=unknown_sensors)
    raise_if_problems(parsed.all_problems(), f"invalid observations in {source}")
    return parsed.readings


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
        if not isinstance(attribute, Mapping) or attribute.get("type") != "Property":
            continue  # multi-attributes (datasetId) are context, not a sensor's readings
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
