"""Neighbour consistency (:class:`~.rules.CrossSensorRule`): a station's hourly mean far from the
median of the other stations of its group in the same hour."""

from __future__ import annotations

from bisect import bisect_left

from .compiled import QuantityRules
from .model import US_PER_HOUR, Finding, FindingKind
from .stats import median_without


def cross_sensor(
    compiled: QuantityRules,
    group_id: str,
    quantity: str,
    hour: int,
    means: dict[str, float],
    findings: list[Finding],
) -> None:
    """Anomaly findings for stations whose hourly mean is far from the median of the others."""
    if not compiled.cross or len(means) < 2:
        return
    start = hour * US_PER_HOUR
    for rule, abs_tolerance in compiled.cross:
        if len(means) < rule.min_neighbours + 1:
            continue
        ordered = sorted(means.values())
        for sensor in sorted(means):
            value = means[sensor]
            median = median_without(ordered, bisect_left(ordered, value))
            tolerance = max(abs_tolerance, rule.rel_tolerance * abs(median))
            if abs(value - median) > tolerance:
                unit = compiled.unit or rule.unit
                findings.append(
                    Finding(
                        rule.rule_id,
                        FindingKind.ANOMALY,
                        sensor,
                        quantity,
                        start,
                        start + US_PER_HOUR,
                        rule.severity,
                        value,
                        unit,
                        f"{sensor} {quantity} hourly mean {value:.4g} {unit} is {value - median:+.4g} from "
                        f"the median {median:.4g} of its {len(means) - 1} neighbours in group `{group_id}` "
                        f"(tolerance {tolerance:.3g})",
                        threshold=tolerance,
                        details={
                            "neighbour_median": median,
                            "neighbours": len(means) - 1,
                            "group": group_id,
                        },
                    )
                )
