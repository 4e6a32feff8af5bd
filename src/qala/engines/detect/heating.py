"""Heating schedule (:class:`~.rules.HeatingScheduleRule`): the supply water temperature a
heating network should deliver at the current outdoor temperature."""

from __future__ import annotations

from .compiled import QuantityRules
from .model import US_PER_SECOND, Finding, FindingKind
from .state import GroupState

OUTDOOR = "__outdoor__"
"""The pseudo-quantity under which a group keeps its newest outdoor temperature."""


def check_heating(
    compiled: QuantityRules,
    outdoor: GroupState | None,
    sensor: str,
    quantity: str,
    time_us: int,
    value: float,
    findings: list[Finding],
) -> None:
    """Supply temperature against the heating schedule at the group's latest outdoor temperature
    (``outdoor``: the group's :data:`OUTDOOR` record; too old a temperature is not used)."""
    for rule in compiled.heating:
        if outdoor is None or outdoor.outdoor is None:
            continue
        outdoor_time, outdoor_value = outdoor.outdoor
        if time_us - outdoor_time > rule.max_outdoor_age_s * US_PER_SECOND:
            continue
        expected = rule.schedule.supply_at(outdoor_value)
        tolerance = rule.schedule.supply_tolerance_fraction * expected
        if abs(value - expected) > tolerance:
            side = "below" if value < expected else "above"
            findings.append(
                Finding(
                    rule.rule_id,
                    FindingKind.EXCEEDANCE,
                    sensor,
                    quantity,
                    time_us,
                    time_us,
                    rule.severity,
                    value,
                    rule.unit,
                    f"{sensor} supply water {value:.1f} °C at outdoor {outdoor_value:.1f} °C is {side} the "
                    f"'{rule.schedule.name}' schedule {expected:.1f} °C ± {tolerance:.1f} °C"
                    + (" (under-heating)" if side == "below" else " (overheating)"),
                    threshold=expected,
                    details={
                        "expected": expected,
                        "outdoor": outdoor_value,
                        "tolerance": tolerance,
                    },
                )
            )
