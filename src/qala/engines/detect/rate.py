"""Rate of change (:class:`~.rules.RateOfChangeRule`): a reading too far from the previous valid
one for the time between them (a spike, or a jump after a replaced sensor)."""

from __future__ import annotations

from .compiled import QuantityRules
from .model import US_PER_HOUR, US_PER_SECOND, Finding, FindingKind
from .state import StreamState


def check_rate(
    stream: StreamState,
    compiled: QuantityRules,
    sensor: str,
    quantity: str,
    time_us: int,
    value: float,
    findings: list[Finding],
) -> None:
    """Anomaly findings for a change since the previous valid reading faster than the rules allow."""
    previous_time = stream.prev_valid_time
    previous_value = stream.prev_valid_value
    assert previous_time is not None and previous_value is not None
    for rule, max_per_hour in compiled.rate:
        elapsed_h = max(time_us - previous_time, rule.min_interval_s * US_PER_SECOND) / US_PER_HOUR
        rate = (value - previous_value) / elapsed_h
        if abs(rate) > max_per_hour:
            unit = compiled.unit or rule.unit
            findings.append(
                Finding(
                    rule.rule_id,
                    FindingKind.ANOMALY,
                    sensor,
                    quantity,
                    previous_time,
                    time_us,
                    rule.severity,
                    rate,
                    f"{unit}/h",
                    f"{sensor} {quantity} went from {previous_value:.4g} to {value:.4g} {unit} in "
                    f"{(time_us - previous_time) / US_PER_HOUR * 60:.0f} min: {rate:+.4g} {unit}/h, "
                    f"faster than ±{max_per_hour:g} {unit}/h",
                    threshold=max_per_hour,
                )
            )
