"""What a rule found, as a message id of the catalogues and its values, for any reader's language.

The detect engine writes its explanations in English (kept in ``operate_finding.explanation`` for
the audit and the logs). Readers get :func:`finding_message` instead: an id per kind of finding
(``finding.exceedance``, ``finding.fault.saturated``, …) and the finding's machine fields as
parameters — numbers as numbers, times as datetimes, quantities, units, averaging and side as
nested message ids — rendered by :class:`qala.core.i18n.Translator` with the locale's separators
and times in the place's zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qala.core.messages import Message, msg

FORMULAS = {
    "pm25": "PM2.5",
    "pm10": "PM10",
    "pm1": "PM1",
    "no2": "NO₂",
    "so2": "SO₂",
    "nh3": "NH₃",
    "h2s": "H₂S",
}
"""Quantities named by their formula, the same in every language."""
QUANTITIES = frozenset(
    {
        "co",
        "o3",
        "supply_temperature",
        "return_temperature",
        "supply_pressure",
        "return_pressure",
        "outdoor_temperature",
        "temperature",
    }
)
SYMBOLS = {"degC": "°C", "%": "%"}
"""Units written the same in every language."""
UNITS = {
    "ug/m3": "ugm3",
    "mg/m3": "mgm3",
    "kPa": "kpa",
    "MPa": "mpa",
    "bar": "bar",
    "ppm": "ppm",
    "ppb": "ppb",
    "h": "hours",
    "readings": "readings",
}
AVERAGING = frozenset({"instant", "hour", "8h", "day"})
FAULTS = frozenset({"fault.saturated", "fault.stuck", "fault.out_of_range", "fault.quarantine"})


def quantity_message(quantity: str) -> Message | str:
    if quantity in FORMULAS:
        return FORMULAS[quantity]
    return msg(f"operate.quantity.{quantity}") if quantity in QUANTITIES else quantity


def unit_message(unit: str) -> Message | str:
    """A unit by its catalogue name (``µg/m³``, ``мкг/м³``); a rate ``<unit>/h`` per hour."""
    if unit.endswith("/h") and unit != "/h":
        return msg("operate.unit.per_hour", unit=unit_message(unit[:-2]))
    if unit in SYMBOLS:
        return SYMBOLS[unit]
    return msg(f"operate.unit.{UNITS[unit]}") if unit in UNITS else unit


def _time(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / 1_000_000, tz=UTC)


def finding_message(
    *,
    rule_id: str,
    kind: str,
    sensor: str,
    quantity: str,
    start_us: int,
    end_us: int,
    value: float,
    threshold: float | None,
    unit: str,
    details: Mapping[str, Any] | None = None,
) -> Message:
    """The reader's text of a finding, from its stored fields (see the module's doc)."""
    details = details or {}
    base: dict[str, Any] = {
        "sensor": sensor,
        "quantity": quantity_message(quantity),
        "value": float(value),
        "unit": unit_message(unit),
        "threshold": None if threshold is None else float(threshold),
        "since": _time(start_us),
        "until": _time(end_us),
    }
    ended = rule_id.endswith(":end") or details.get("phase") == "end"
    rule = rule_id.removesuffix(":end")
    if kind == "exceedance":
        side = msg(f"finding.side.{'below' if details.get('side') == 'below' else 'above'}")
        if "expected" in details:  # the heating schedule: expected supply at the outdoor value
            side = msg(f"finding.side.{'below' if value < float(details['expected']) else 'above'}")
            return msg(
                "finding.heating_schedule",
                **base,
                side=side,
                outdoor=float(details.get("outdoor", 0.0)),
                tolerance=float(details.get("tolerance", 0.0)),
            )
        averaging = str(details.get("averaging", "instant"))
        return msg(
            "finding.exceedance",
            **base,
            side=side,
            averaging=msg(
                f"finding.averaging.{averaging if averaging in AVERAGING else 'instant'}"
            ),
            ratio=float(details.get("ratio", 0.0)),
        )
    if kind == "fault" and rule in FAULTS:
        key = f"finding.{rule}" + (".end" if ended else "")
        return msg(key, **base, count=int(details.get("repeats", value)))
    if kind == "silence":
        return msg("finding.silence.end" if ended else "finding.silence", **base)
    if kind == "episode":
        if ended:
            return msg("finding.episode.end", **base)
        if "sensors" in details:
            return msg(
                "finding.episode.network",
                **base,
                count=len(details.get("sensors") or []),
                reporting=int(details.get("reporting", 0)),
            )
        return msg("finding.episode.station", **base, hours=int(details.get("hours", 0)))
    if kind == "anomaly":
        return msg("finding.anomaly", **base)
    return msg("finding.other", **base, rule=rule_id)


def message_of_row(row: Any) -> Message:
    """:func:`finding_message` of a stored finding (``operate_finding`` row)."""
    return finding_message(
        rule_id=row.rule_id,
        kind=row.kind,
        sensor=row.sensor,
        quantity=row.quantity,
        start_us=row.start_us,
        end_us=row.end_us,
        value=row.value,
        threshold=row.threshold,
        unit=row.unit,
        details=row.details,
    )


def plain(value: Any) -> Any:
    """``value`` with its datetimes as ISO 8601 text (a message's parameters, for JSON)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
