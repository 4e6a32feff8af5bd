"""Rule definitions: small frozen records of parameters, evaluated by :mod:`.evaluator`.

A rule is data, not code with state: the same rule objects drive the streaming evaluator and the
batch replay, and every finding names the ``rule_id`` (and, for norms, the norm and its version)
that produced it. Factories build the usual sets from the norm tables: :func:`air_quality_rules`
and :func:`heating_rules`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from qala.core.errors import SpecificationError

from .model import Severity
from .norms_loader import HeatingSchedule, NormLimit, NormTable, load_heating_norms, load_norm_table

SeveritySteps = tuple[tuple[float, Severity], ...]
# Ratios to the limit: 1× warning, 2× major, 5× critical — the lower edges of KazHydroMet's
# "elevated" and "high" standard-index bands (СИ 2–4 and 5–10).
LEGAL_STEPS: SeveritySteps = (
    (1.0, Severity.WARNING),
    (2.0, Severity.MAJOR),
    (5.0, Severity.CRITICAL),
)
# Advisory guidelines (WHO) inform; five times the guideline (≈ WHO interim target 1) warns.
ADVISORY_STEPS: SeveritySteps = ((1.0, Severity.INFO), (5.0, Severity.WARNING))


def severity_for(ratio: float, steps: SeveritySteps) -> Severity:
    """Highest severity whose ratio step ``ratio`` reaches (the first step if none)."""
    chosen = steps[0][1]
    for step, severity in steps:
        if ratio >= step:
            chosen = severity
    return chosen


@dataclass(frozen=True)
class ThresholdRule:
    """A value, instant or averaged, outside ``[low, high]`` is an exceedance.

    ``averaging``: ``instant`` (each reading; the one-time ПДК is a 20–30 minute value and the
    readings are compared as they come), ``hour`` (clock-hour mean), ``8h`` (rolling mean of the
    last 8 hourly means, at least ``min_coverage`` of them present), ``day`` (local calendar day
    mean of hourly means, at least ``min_coverage`` of 24 hours).
    """

    rule_id: str
    quantity: str
    averaging: str
    unit: str
    high: float | None = None
    low: float | None = None
    citation: str = ""
    steps: SeveritySteps = LEGAL_STEPS
    min_coverage: float = 0.75

    def __post_init__(self) -> None:
        if self.averaging not in ("instant", "hour", "8h", "day"):
            raise SpecificationError(
                f"rule `{self.rule_id}`: averaging `{self.averaging}` must be instant, hour, 8h or day"
            )
        if self.high is None and self.low is None:
            raise SpecificationError(f"rule `{self.rule_id}`: give `high`, `low` or both")


@dataclass(frozen=True)
class SaturationRule:
    """A reading at or above ``cap`` (the instrument's or pipeline's ceiling, e.g. 1000 µg/m³) or
    below ``floor`` is a sensor fault, never evidence of pollution."""

    quantity: str | None = None
    cap: float | None = None
    floor: float | None = None
    unit: str = ""
    rule_id: str = "fault.saturated"


@dataclass(frozen=True)
class StuckRule:
    """``repeats`` consecutive readings with exactly the same value: a flat-lined sensor (fault).

    Natural measurements carry noise; exact repeats over hours mean a frozen value. Exactly zero
    is suspicious sooner (``zero_repeats``): a live particle counter does not read 0.00 three
    times running. Feeds quantised to whole µg/m³ repeat by chance at steady levels (KazHydroMet
    station kgmt_12 repeats 89 six hours running in December 2025), hence the default of 8.
    """

    quantity: str | None = None
    repeats: int = 8
    zero_repeats: int = 3
    rule_id: str = "fault.stuck"


@dataclass(frozen=True)
class QuarantineRule:
    """A sensor with ``faults`` faulty readings among its last ``window`` readings is quarantined:
    its plausible-looking readings are excluded from norm, anomaly and episode rules (a saturating
    sensor's hourly averages such as 333.33 = mean(1000, 0, 0) are contaminated) until it has
    given ``release_after`` clean readings in a row."""

    quantity: str | None = None
    faults: int = 2
    window: int = 24
    release_after: int = 24
    rule_id: str = "fault.quarantine"


@dataclass(frozen=True)
class RateOfChangeRule:
    """Change between consecutive valid readings faster than ``max_per_hour`` (unit per hour)."""

    quantity: str
    max_per_hour: float
    unit: str
    min_interval_s: float = 300.0
    rule_id: str = "anomaly.rate"
    severity: Severity = Severity.WARNING


@dataclass(frozen=True)
class RobustAnomalyRule:
    """Modified z-score against the rolling median and MAD of the last ``window`` valid readings:
    ``z = 0.6745 (x − median) / MAD`` (Iglewicz & Hoaglin 1993); ``|z| > threshold`` flags.

    ``min_mad`` keeps a nearly flat history from turning tiny wiggles into huge z values.
    """

    quantity: str | None = None
    window: int = 48
    min_points: int = 12
    threshold: float = 3.5
    min_mad: float = 1.0
    rule_id: str = "anomaly.mad"
    severity: Severity = Severity.WARNING


@dataclass(frozen=True)
class SeasonalAnomalyRule:
    """Hourly mean against the same slot (hour of day × weekday, local time) over the last
    ``history`` weeks: modified z-score with the slot's median and MAD."""

    quantity: str | None = None
    history: int = 6
    min_points: int = 3
    threshold: float = 3.5
    min_mad: float = 1.0
    by_weekday: bool = True
    rule_id: str = "anomaly.seasonal"
    severity: Severity = Severity.INFO


@dataclass(frozen=True)
class SilenceRule:
    """A gap longer than ``factor`` × the sensor's usual interval (median of its last ``history``
    gaps) and at least ``min_gap_s`` seconds."""

    quantity: str | None = None
    factor: float = 3.0
    history: int = 16
    min_history: int = 4
    min_gap_s: float = 600.0
    rule_id: str = "silence"
    severity: Severity = Severity.WARNING


@dataclass(frozen=True)
class EpisodeRule:
    """Sustained elevation at one sensor: the mean of the last ``window_hours`` hourly means is
    above ``limit`` with at least ``min_coverage`` of the hours present, and the hourly means vary
    naturally (coefficient of variation ≥ ``min_variation``) — a flat line is not an episode.

    One finding when the episode opens and one (``rule_id + ":end"``) when it closes.
    """

    quantity: str
    limit: float
    unit: str
    window_hours: int = 24
    min_coverage: float = 0.75
    min_variation: float = 0.05
    citation: str = ""
    rule_id: str = "episode"
    steps: SeveritySteps = LEGAL_STEPS


@dataclass(frozen=True)
class NetworkEpisodeRule:
    """Several stations agreeing: an hour is elevated when at least ``min_sensors`` sensors of the
    group, and at least ``min_fraction`` of those reporting, have hourly means above ``limit``;
    ``min_hours`` elevated hours in a row open a group episode (finding on the group id). Up to
    ``max_missing_hours`` hours in which no station of the group reported do not break the run
    (a data gap is not clean air); an hour with data that is not elevated does."""

    quantity: str
    limit: float
    unit: str
    min_sensors: int = 2
    min_fraction: float = 0.5
    min_hours: int = 3
    max_missing_hours: int = 2
    citation: str = ""
    rule_id: str = "episode.network"
    steps: SeveritySteps = LEGAL_STEPS


@dataclass(frozen=True)
class CrossSensorRule:
    """A sensor's hourly mean far from the median of its group's other sensors for that hour:
    ``|x − median| > max(abs_tolerance, rel_tolerance × median)``, with ≥ ``min_neighbours``."""

    quantity: str
    unit: str
    min_neighbours: int = 2
    rel_tolerance: float = 1.0
    abs_tolerance: float = 25.0
    rule_id: str = "anomaly.neighbours"
    severity: Severity = Severity.INFO


@dataclass(frozen=True)
class SummationRule:
    """Combined effect of substances measured together at one station: the hourly means in
    shares of their one-time ПДК, ``Σ Cᵢ / ПДКᵢ``, must not exceed 1. Not applied when one
    component's share of the sum is above ``dominance`` (0.8 for two components with NO2)."""

    quantities: tuple[str, ...]
    limits: tuple[float, ...]
    unit: str
    dominance: float | None = None
    citation: str = ""
    rule_id: str = "norm.summation"
    steps: SeveritySteps = LEGAL_STEPS

    def __post_init__(self) -> None:
        if len(self.quantities) < 2 or len(self.quantities) != len(self.limits):
            raise SpecificationError(
                f"rule `{self.rule_id}`: give at least two quantities and one limit for each"
            )


@dataclass(frozen=True)
class HeatingScheduleRule:
    """Supply water temperature against the schedule for the group's newest outdoor temperature:
    outside ``expected × (1 ± tolerance)`` is an exceedance (too cold: under-heating)."""

    schedule: HeatingSchedule
    supply_quantity: str = "supply_temperature"
    outdoor_quantity: str = "outdoor_temperature"
    unit: str = "degC"
    rule_id: str = "heating.schedule"
    max_outdoor_age_s: float = 3 * 3600.0
    severity: Severity = Severity.MAJOR


Rule = (
    ThresholdRule
    | SaturationRule
    | StuckRule
    | QuarantineRule
    | RateOfChangeRule
    | RobustAnomalyRule
    | SeasonalAnomalyRule
    | SilenceRule
    | EpisodeRule
    | NetworkEpisodeRule
    | CrossSensorRule
    | SummationRule
    | HeatingScheduleRule
)


@dataclass(frozen=True)
class RuleSet:
    """An ordered collection of rules plus the settings every rule shares.

    Parameters
    ----------
    rules
        The rules.
    utc_offset_minutes
        Offset of the local civil time used for calendar days and seasonal slots. Kazakhstan
        uses UTC+05:00 everywhere since 1 March 2024.
    lateness_s
        How far behind the newest observation of its group an observation may arrive and still
        count in the group (network) rules.
    units
        Canonical unit per quantity; readings in other units are converted on entry.
    """

    rules: tuple[Rule, ...]
    utc_offset_minutes: int = 300
    lateness_s: float = 2 * 3600.0
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        singletons = (
            StuckRule,
            QuarantineRule,
            RobustAnomalyRule,
            SeasonalAnomalyRule,
            SilenceRule,
        )
        seen: set[tuple[type, str | None]] = set()
        for rule in self.rules:
            if isinstance(rule, singletons):
                key = (type(rule), rule.quantity)
                if key in seen:
                    raise SpecificationError(
                        f"two {type(rule).__name__} rules for quantity `{rule.quantity}`; give one"
                    )
                seen.add(key)

    def unit_for(self, quantity: str) -> str | None:
        return self.units.get(quantity)


def threshold_rules_from_norms(
    limits: Iterable[NormLimit], *, steps: SeveritySteps | None = None
) -> list[ThresholdRule]:
    """One :class:`ThresholdRule` per limit (annual limits are left to reporting, not streams)."""
    rules = []
    for limit in limits:
        if limit.averaging == "year":
            continue
        chosen = steps or (LEGAL_STEPS if limit.legal_force == "binding" else ADVISORY_STEPS)
        rules.append(
            ThresholdRule(
                rule_id=f"norm.{limit.norm_id}.{limit.quantity}.{limit.averaging}",
                quantity=limit.quantity,
                averaging=limit.averaging,
                unit=limit.unit,
                high=limit.value,
                citation=f"{limit.norm_id} ({limit.version})",
                steps=chosen,
            )
        )
    return rules


def summation_rules_from_norms(table: NormTable, quantities: Sequence[str]) -> list[SummationRule]:
    """One :class:`SummationRule` per summation group of ``table`` whose substances are all in
    ``quantities``, with their one-time limits."""
    dominance = dict(table.summation_dominance)
    rules = []
    for group in table.summation_groups:
        if not set(group) <= set(quantities):
            continue
        limits = [table.limit(quantity, "instant") for quantity in group]
        units = {limit.unit for limit in limits}
        if len(units) != 1:
            raise SpecificationError(f"summation group {group} mixes units {sorted(units)}")
        rules.append(
            SummationRule(
                quantities=tuple(group),
                limits=tuple(limit.value for limit in limits),
                unit=units.pop(),
                dominance=dominance.get(len(group)),
                citation=f"{table.norm_id} ({table.version}) summation",
                rule_id=f"norm.{table.norm_id}.summation.{'+'.join(group)}",
            )
        )
    return rules


def air_quality_rules(
    quantities: Sequence[str] = ("pm25", "pm10", "no2", "so2", "co", "o3"),
    *,
    cap: float | None = 1000.0,
    norms: Sequence[str] = ("air_kz_dsm70", "air_who_2021"),
    episode_norm: str = "air_kz_dsm70",
    max_rise_per_hour: float | None = 300.0,
    utc_offset_minutes: int = 300,
) -> RuleSet:
    """The standard rule set for air-quality stations.

    Thresholds from the Kazakh ПДК (binding) and the WHO 2021 guidelines (advisory); faults
    (saturation at ``cap`` in µg/m³, negatives, flat lines) with quarantine; rate of change,
    MAD and seasonal anomalies; silence; per-station and network episodes above the daily ПДК
    of ``episode_norm``; consistency with neighbouring stations.
    """
    rules: list[Rule] = []
    units: dict[str, str] = {}
    for name in norms:
        table = load_norm_table(name)
        rules.extend(
            threshold_rules_from_norms(x for x in table.limits if x.quantity in quantities)
        )
    episode_table = load_norm_table(episode_norm)
    rules.extend(summation_rules_from_norms(episode_table, quantities))
    for quantity in quantities:
        units[quantity] = "ug/m3"
        rules.append(SaturationRule(quantity=quantity, cap=cap, floor=0.0, unit="ug/m3"))
        if max_rise_per_hour is not None:
            rules.append(
                RateOfChangeRule(quantity=quantity, max_per_hour=max_rise_per_hour, unit="ug/m3")
            )
        daily = episode_table.limit(quantity, "day")
        citation = f"{daily.norm_id} ({daily.version}) daily limit"
        rules.append(
            EpisodeRule(
                quantity=quantity,
                limit=daily.value,
                unit=daily.unit,
                citation=citation,
                rule_id=f"episode.{quantity}",
            )
        )
        rules.append(
            NetworkEpisodeRule(
                quantity=quantity,
                limit=daily.value,
                unit=daily.unit,
                citation=citation,
                rule_id=f"episode.network.{quantity}",
            )
        )
        rules.append(
            CrossSensorRule(
                quantity=quantity, unit="ug/m3", rule_id=f"anomaly.neighbours.{quantity}"
            )
        )
    rules.extend(
        [
            StuckRule(),
            QuarantineRule(),
            RobustAnomalyRule(),
            SeasonalAnomalyRule(),
            SilenceRule(min_gap_s=2 * 3600.0),
        ]
    )
    return RuleSet(tuple(rules), utc_offset_minutes=utc_offset_minutes, units=units)


def heating_rules(
    schedule: HeatingSchedule | None = None, *, utc_offset_minutes: int = 300
) -> RuleSet:
    """Rules for heating-network sensors: operating ranges, the supply schedule, faults, silence."""
    norms = load_heating_norms()
    rules: list[Rule] = []
    units: dict[str, str] = {"outdoor_temperature": "degC"}
    for operating in norms.ranges:
        units[operating.quantity] = operating.unit
        rules.append(
            ThresholdRule(
                rule_id=f"heating.range.{operating.quantity}",
                quantity=operating.quantity,
                averaging="instant",
                unit=operating.unit,
                high=operating.high,
                low=operating.low,
                citation=f"heating-networks ({norms.version}): {operating.label}",
                steps=((1.0, Severity.MAJOR), (1.2, Severity.CRITICAL)),
            )
        )
    rules.append(HeatingScheduleRule(schedule=schedule or norms.schedule))
    rules.append(
        RateOfChangeRule(
            quantity="supply_temperature", max_per_hour=20.0, unit="degC", rule_id="anomaly.rate"
        )
    )
    rules.extend(
        [
            StuckRule(repeats=12, zero_repeats=12),
            QuarantineRule(),
            RobustAnomalyRule(),
            SilenceRule(),
        ]
    )
    return RuleSet(tuple(rules), utc_offset_minutes=utc_offset_minutes, units=units)
