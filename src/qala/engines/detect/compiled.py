"""Rules compiled per quantity: each family's rules picked out, limits in the canonical unit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qala.core.errors import SpecificationError

from .rules import (
    CrossSensorRule,
    EpisodeRule,
    HeatingScheduleRule,
    NetworkEpisodeRule,
    QuarantineRule,
    RateOfChangeRule,
    RobustAnomalyRule,
    RuleSet,
    SaturationRule,
    SeasonalAnomalyRule,
    SilenceRule,
    StuckRule,
    SummationRule,
    ThresholdRule,
)
from .units import conversion_factor, normalise_unit


@dataclass
class Limit:
    """A threshold rule with its limits converted to the quantity's canonical unit."""

    rule: ThresholdRule
    high: float | None
    low: float | None
    unit: str


@dataclass
class QuantityRules:
    """Every rule for one quantity, by family; the evaluator dispatches a reading through it."""

    unit: str | None
    saturation: SaturationRule | None = None
    cap: float | None = None
    floor: float | None = None
    stuck: StuckRule | None = None
    quarantine: QuarantineRule | None = None
    mad: RobustAnomalyRule | None = None
    seasonal: SeasonalAnomalyRule | None = None
    silence: SilenceRule | None = None
    instant: list[Limit] = field(default_factory=list)
    hour: list[Limit] = field(default_factory=list)
    eight_hour: list[Limit] = field(default_factory=list)
    day: list[Limit] = field(default_factory=list)
    rate: list[tuple[RateOfChangeRule, float]] = field(default_factory=list)
    episode: list[tuple[EpisodeRule, float]] = field(default_factory=list)
    network_episode: list[tuple[NetworkEpisodeRule, float]] = field(default_factory=list)
    cross: list[tuple[CrossSensorRule, float]] = field(default_factory=list)
    heating: list[HeatingScheduleRule] = field(default_factory=list)
    summation: list[SummationRule] = field(default_factory=list)
    is_outdoor_for_heating: bool = False
    # Derived once by compile_rules (read for every reading, so not recomputed as properties).
    needs_hours: bool = False
    """Some rule works on hourly means (hour, 8 h, day thresholds, seasonal, episode)."""
    hours_kept: int = 24
    """How many past hourly means a stream keeps (8-hour means, episode windows)."""
    needs_group_table: bool = False
    """Some rule compares the sensors of a group hour by hour (neighbours, network episode)."""


def pick(rules: Iterable[Any], kind: type, quantity: str) -> Any:
    """The rule of ``kind`` for ``quantity``: a quantity-specific one beats a catch-all one."""
    general = None
    for rule in rules:
        if isinstance(rule, kind):
            applies_to = getattr(rule, "quantity", None)
            if applies_to == quantity:
                return rule
            if applies_to is None:
                general = rule
    return general


def compile_rules(rule_set: RuleSet, quantity: str) -> QuantityRules:
    """The rules that apply to ``quantity``, sorted by family, limits in its canonical unit."""
    rules = rule_set.rules
    canonical = rule_set.unit_for(quantity)
    if canonical is None:
        for rule in rules:
            unit = getattr(rule, "unit", "")
            if getattr(rule, "quantity", None) == quantity and unit:
                canonical = normalise_unit(unit)
                break
    compiled = QuantityRules(unit=normalise_unit(canonical) if canonical else None)

    def to_canonical(value: float | None, unit: str) -> float | None:
        if value is None or not unit or compiled.unit is None:
            return value
        return value * conversion_factor(unit, compiled.unit)

    saturation = pick(rules, SaturationRule, quantity)
    if saturation is not None:
        compiled.saturation = saturation
        compiled.cap = to_canonical(saturation.cap, saturation.unit)
        compiled.floor = to_canonical(saturation.floor, saturation.unit)
    compiled.stuck = pick(rules, StuckRule, quantity)
    compiled.quarantine = pick(rules, QuarantineRule, quantity)
    compiled.mad = pick(rules, RobustAnomalyRule, quantity)
    compiled.seasonal = pick(rules, SeasonalAnomalyRule, quantity)
    compiled.silence = pick(rules, SilenceRule, quantity)
    for rule in rules:
        if isinstance(rule, ThresholdRule) and rule.quantity == quantity:
            limit = Limit(
                rule,
                to_canonical(rule.high, rule.unit),
                to_canonical(rule.low, rule.unit),
                compiled.unit or rule.unit,
            )
            {
                "instant": compiled.instant,
                "hour": compiled.hour,
                "8h": compiled.eight_hour,
                "day": compiled.day,
            }[rule.averaging].append(limit)
        elif isinstance(rule, RateOfChangeRule) and rule.quantity == quantity:
            compiled.rate.append((rule, float(to_canonical(rule.max_per_hour, rule.unit) or 0.0)))
        elif isinstance(rule, EpisodeRule) and rule.quantity == quantity:
            compiled.episode.append((rule, float(to_canonical(rule.limit, rule.unit) or 0.0)))
        elif isinstance(rule, NetworkEpisodeRule) and rule.quantity == quantity:
            compiled.network_episode.append(
                (rule, float(to_canonical(rule.limit, rule.unit) or 0.0))
            )
        elif isinstance(rule, CrossSensorRule) and rule.quantity == quantity:
            compiled.cross.append((rule, float(to_canonical(rule.abs_tolerance, rule.unit) or 0.0)))
        elif isinstance(rule, SummationRule) and quantity in rule.quantities:
            compiled.summation.append(rule)
        elif isinstance(rule, HeatingScheduleRule):
            if rule.supply_quantity == quantity:
                compiled.heating.append(rule)
            if rule.outdoor_quantity == quantity:
                compiled.is_outdoor_for_heating = True
    if len(compiled.episode) > 1:
        raise SpecificationError(f"more than one EpisodeRule for `{quantity}`; give one")
    if len(compiled.network_episode) > 1:
        raise SpecificationError(f"more than one NetworkEpisodeRule for `{quantity}`; give one")
    compiled.needs_hours = bool(
        compiled.hour
        or compiled.eight_hour
        or compiled.day
        or compiled.seasonal
        or compiled.episode
    )
    compiled.hours_kept = max([24] + [rule.window_hours for rule, _ in compiled.episode])
    compiled.needs_group_table = bool(compiled.network_episode or compiled.cross)
    return compiled
