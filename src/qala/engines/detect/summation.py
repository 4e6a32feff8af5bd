"""Combined effect (:class:`~.rules.SummationRule`): substances acting together are judged by the
sum of their concentrations in shares of their limits, Σ Cᵢ/ПДКᵢ ≤ 1, hour by hour per sensor."""

from __future__ import annotations

from .model import US_PER_HOUR, Finding, FindingKind
from .rules import SummationRule, severity_for
from .units import conversion_factor

TABLE_PREFIX = "summation:"
"""A sensor's hour table for a summation rule is kept under ``TABLE_PREFIX + rule_id``."""


def limits_in_units(rule: SummationRule, units: list[str | None]) -> list[float]:
    """The rule's limits converted to each quantity's canonical unit (None: left as given)."""
    return [
        limit * (conversion_factor(rule.unit, unit) if unit else 1.0)
        for limit, unit in zip(rule.limits, units, strict=True)
    ]


def check_hour(
    rule: SummationRule,
    limits: list[float],
    sensor: str,
    hour: int,
    cells: dict[str, list[float]],
    findings: list[Finding],
) -> None:
    """An exceedance finding when the sensor's hourly means of ``hour``, in shares of their
    limits, add up to more than 1 (hours missing one of the substances are skipped)."""
    if not all(q in cells for q in rule.quantities):
        return
    ratios = [
        cells[q][0] / cells[q][1] / limit for q, limit in zip(rule.quantities, limits, strict=True)
    ]
    total = sum(ratios)
    if total <= 1.0:
        return
    largest_share = max(ratios) / total
    if rule.dominance is not None and largest_share > rule.dominance:
        return  # one substance dominates: its own limit applies, not the sum
    start = hour * US_PER_HOUR
    parts = " + ".join(f"{q} {r:.2f}" for q, r in zip(rule.quantities, ratios, strict=True))
    findings.append(
        Finding(
            rule.rule_id,
            FindingKind.EXCEEDANCE,
            sensor,
            "+".join(rule.quantities),
            start,
            start + US_PER_HOUR,
            severity_for(total, rule.steps),
            total,
            "ПДК shares",
            f"{sensor}: combined effect of {', '.join(rule.quantities)} — hourly means in shares "
            f"of the one-time ПДК {parts} = {total:.2f} > 1 ({rule.citation or rule.rule_id}); "
            f"largest share {largest_share:.0%}",
            threshold=1.0,
            details={"ratios": ratios, "largest_share": largest_share},
        )
    )
