"""Sensor faults: saturation and out-of-range (:class:`~.rules.SaturationRule`), flat lines
(:class:`~.rules.StuckRule`) and quarantine of a sensor with many faults
(:class:`~.rules.QuarantineRule`). A faulty reading never reaches the norm, anomaly or episode
rules."""

from __future__ import annotations

from .compiled import QuantityRules
from .model import Finding, FindingKind, Severity, format_epoch_us
from .rules import QuarantineRule
from .state import StreamState


def _faulty_reading(
    rule_id: str,
    sensor: str,
    quantity: str,
    time_us: int,
    value: float,
    unit: str,
    explanation: str,
    threshold: float,
    details: dict[str, int] | None = None,
) -> Finding:
    return Finding(
        rule_id,
        FindingKind.FAULT,
        sensor,
        quantity,
        time_us,
        time_us,
        Severity.MAJOR,
        value,
        unit,
        explanation,
        threshold=threshold,
        details=details or {},
    )


def fault_of(
    stream: StreamState,
    compiled: QuantityRules,
    sensor: str,
    quantity: str,
    time_us: int,
    value: float,
    findings: list[Finding],
) -> bool:
    """Saturation, out-of-range and stuck checks; True when the reading is faulty."""
    unit = compiled.unit or ""
    fault = False
    if compiled.saturation is not None:
        if compiled.cap is not None and value >= compiled.cap:
            findings.append(
                _faulty_reading(
                    compiled.saturation.rule_id,
                    sensor,
                    quantity,
                    time_us,
                    value,
                    unit,
                    f"{sensor} {quantity} reads {value:g} {unit} at {format_epoch_us(time_us)}, at or above "
                    f"the cap {compiled.cap:g} {unit}: the sensor is saturated (a fault, not pollution)",
                    compiled.cap,
                )
            )
            fault = True
        elif compiled.floor is not None and value < compiled.floor:
            findings.append(
                _faulty_reading(
                    "fault.out_of_range",
                    sensor,
                    quantity,
                    time_us,
                    value,
                    unit,
                    f"{sensor} {quantity} reads {value:g} {unit} at {format_epoch_us(time_us)}, below the "
                    f"physical floor {compiled.floor:g} {unit}",
                    compiled.floor,
                )
            )
            fault = True
    stuck = compiled.stuck
    if stuck is not None:
        if value == stream.last_value:
            stream.repeats += 1
        else:
            stream.repeats = 1
        stream.last_value = value
        limit = stuck.zero_repeats if value == 0 else stuck.repeats
        if stream.repeats >= limit and not fault:
            findings.append(
                _faulty_reading(
                    stuck.rule_id,
                    sensor,
                    quantity,
                    time_us,
                    value,
                    unit,
                    f"{sensor} {quantity} has repeated exactly {value:g} {unit} {stream.repeats} times in a "
                    f"row (limit {limit}): the sensor is stuck (flat line)",
                    float(limit),
                    {"repeats": stream.repeats},
                )
            )
            fault = True
    return fault


def update_quarantine(
    stream: StreamState,
    quarantine: QuarantineRule,
    sensor: str,
    quantity: str,
    time_us: int,
    fault: bool,
    findings: list[Finding],
) -> None:
    """Count the reading among the recent faults; put the sensor in or out of quarantine."""
    recent = stream.recent_faults
    recent.append(1 if fault else 0)
    while len(recent) > quarantine.window:
        del recent[0]
    if fault:
        stream.clean_run = 0
        if not stream.quarantined and sum(recent) >= quarantine.faults:
            stream.quarantined = True
            findings.append(
                Finding(
                    quarantine.rule_id,
                    FindingKind.FAULT,
                    sensor,
                    quantity,
                    time_us,
                    time_us,
                    Severity.MAJOR,
                    float(sum(recent)),
                    "readings",
                    f"{sensor} {quantity}: {sum(recent)} faulty readings among the last "
                    f"{len(recent)}; readings are excluded from norm, anomaly and episode rules "
                    f"until {quarantine.release_after} clean readings in a row",
                    threshold=float(quarantine.faults),
                    details={"phase": "start"},
                )
            )
    elif stream.quarantined:
        stream.clean_run += 1
        if stream.clean_run >= quarantine.release_after:
            stream.quarantined = False
            findings.append(
                Finding(
                    quarantine.rule_id + ":end",
                    FindingKind.FAULT,
                    sensor,
                    quantity,
                    time_us,
                    time_us,
                    Severity.INFO,
                    float(stream.clean_run),
                    "readings",
                    f"{sensor} {quantity}: released from quarantine after {stream.clean_run} "
                    "clean readings in a row",
                    details={"phase": "end"},
                )
            )
