"""Streaming evaluation of a :class:`~qala.engines.detect.rules.RuleSet` with explicit state.

Each ``(sensor, quantity)`` stream is processed in time order. An observation whose time is not
after the stream's newest time is a duplicate (or late) and is ignored without touching the state,
so replaying a message never double-counts. The whole state is plain JSON-ready data
(:meth:`StreamingEvaluator.state`), so the ingestion component can persist it with each
acknowledged batch and resume after a restart (:meth:`StreamingEvaluator.from_state`).

Order of checks for one reading::

    silence on arrival → close finished hour/day windows → saturation / range fault → stuck fault
    → quarantine gate → instant thresholds, rate of change, MAD anomaly, heating schedule
    → hourly bucket (→ hour/8 h/day thresholds, seasonal anomaly, station episode)
    → group table (→ neighbours consistency, network episode, once the group's time has passed)

Faulty readings (saturated, stuck) and the readings of a quarantined sensor never reach the norm,
anomaly or episode rules: a sensor stuck at its 1000 µg/m³ cap is a fault, not a pollution episode.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qala.core.errors import SpecificationError, ValidationError

from .model import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_SECOND,
    Finding,
    FindingKind,
    Observation,
    ObservationColumns,
    Severity,
    format_epoch_us,
)
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
    severity_for,
)
from .units import conversion_factor, normalise_unit

STATE_VERSION = 1
DEFAULT_GROUP = "all"
_SUMMATION_PREFIX = "summation:"
_MAD_SCALE = 0.6745  # Φ⁻¹(0.75): makes MAD comparable with a standard deviation


# --------------------------------------------------------------------------------------------
# Rules compiled per quantity
# --------------------------------------------------------------------------------------------


@dataclass
class _Limit:
    """A threshold rule with its limits converted to the quantity's canonical unit."""

    rule: ThresholdRule
    high: float | None
    low: float | None
    unit: str


@dataclass
class _QuantityRules:
    unit: str | None
    saturation: SaturationRule | None = None
    cap: float | None = None
    floor: float | None = None
    stuck: StuckRule | None = None
    quarantine: QuarantineRule | None = None
    mad: RobustAnomalyRule | None = None
    seasonal: SeasonalAnomalyRule | None = None
    silence: SilenceRule | None = None
    instant: list[_Limit] = field(default_factory=list)
    hour: list[_Limit] = field(default_factory=list)
    eight_hour: list[_Limit] = field(default_factory=list)
    day: list[_Limit] = field(default_factory=list)
    rate: list[tuple[RateOfChangeRule, float]] = field(default_factory=list)
    episode: list[tuple[EpisodeRule, float]] = field(default_factory=list)
    network_episode: list[tuple[NetworkEpisodeRule, float]] = field(default_factory=list)
    cross: list[tuple[CrossSensorRule, float]] = field(default_factory=list)
    heating: list[HeatingScheduleRule] = field(default_factory=list)
    summation: list[SummationRule] = field(default_factory=list)
    is_outdoor_for_heating: bool = False

    @property
    def needs_hours(self) -> bool:
        return bool(self.hour or self.eight_hour or self.day or self.seasonal or self.episode)

    @property
    def hours_kept(self) -> int:
        """How many past hourly means a stream keeps (8-hour means, episode windows)."""
        return max([24] + [rule.window_hours for rule, _ in self.episode])

    @property
    def needs_group_table(self) -> bool:
        return bool(self.network_episode or self.cross)


def _pick(rules: Iterable[Any], kind: type, quantity: str) -> Any:
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


def _compile(rule_set: RuleSet, quantity: str) -> _QuantityRules:
    rules = rule_set.rules
    canonical = rule_set.unit_for(quantity)
    if canonical is None:
        for rule in rules:
            unit = getattr(rule, "unit", "")
            if getattr(rule, "quantity", None) == quantity and unit:
                canonical = normalise_unit(unit)
                break
    compiled = _QuantityRules(unit=normalise_unit(canonical) if canonical else None)

    def to_canonical(value: float | None, unit: str) -> float | None:
        if value is None or not unit or compiled.unit is None:
            return value
        return value * conversion_factor(unit, compiled.unit)

    saturation = _pick(rules, SaturationRule, quantity)
    if saturation is not None:
        compiled.saturation = saturation
        compiled.cap = to_canonical(saturation.cap, saturation.unit)
        compiled.floor = to_canonical(saturation.floor, saturation.unit)
    compiled.stuck = _pick(rules, StuckRule, quantity)
    compiled.quarantine = _pick(rules, QuarantineRule, quantity)
    compiled.mad = _pick(rules, RobustAnomalyRule, quantity)
    compiled.seasonal = _pick(rules, SeasonalAnomalyRule, quantity)
    compiled.silence = _pick(rules, SilenceRule, quantity)
    for rule in rules:
        if isinstance(rule, ThresholdRule) and rule.quantity == quantity:
            limit = _Limit(
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
    return compiled


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class _StreamState:
    """Everything remembered about one ``(sensor, quantity)`` stream. Plain data only."""

    __slots__ = (
        "clean_run",
        "day",
        "day_hours",
        "day_max",
        "day_sum",
        "episode_open",
        "episode_peak",
        "episode_start",
        "gaps",
        "hour",
        "hour_count",
        "hour_max",
        "hour_sum",
        "hourly",
        "last_closed_hour",
        "last_time",
        "last_value",
        "prev_valid_time",
        "prev_valid_value",
        "quarantined",
        "recent_faults",
        "repeats",
        "seasonal",
        "silence_alerted",
        "window",
        "window_sorted",
    )

    def __init__(self) -> None:
        self.last_time: int | None = None
        self.gaps: list[int] = []
        self.silence_alerted: int | None = None
        self.last_value: float | None = None
        self.repeats = 0
        self.recent_faults: list[int] = []
        self.quarantined = False
        self.clean_run = 0
        self.prev_valid_time: int | None = None
        self.prev_valid_value: float | None = None
        self.window: list[float] = []  # last readings, oldest first
        self.window_sorted: list[float] = []  # the same values sorted (derived, not saved)
        self.hour: int | None = None
        self.hour_sum = 0.0
        self.hour_count = 0
        self.hour_max = -math.inf
        self.last_closed_hour: int | None = None
        self.hourly: list[list[float]] = []  # [hour index, mean], newest last, ≤ 24 h back
        self.day: int | None = None
        self.day_sum = 0.0
        self.day_hours = 0
        self.day_max = -math.inf
        self.seasonal: dict[int, list[float]] = {}
        self.episode_open = False
        self.episode_start: int | None = None
        self.episode_peak = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__ if name != "window_sorted"}
        data["seasonal"] = {str(k): list(v) for k, v in self.seasonal.items()}
        data["gaps"] = list(self.gaps)
        data["recent_faults"] = list(self.recent_faults)
        data["window"] = list(self.window)
        data["hourly"] = [list(x) for x in self.hourly]
        for name in ("hour_max", "day_max"):
            if data[name] == -math.inf:
                data[name] = None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _StreamState:
        state = cls()
        for name in cls.__slots__:
            if name in data:
                setattr(state, name, data[name])
        state.seasonal = {int(k): list(v) for k, v in data.get("seasonal", {}).items()}
        state.gaps = list(state.gaps)
        state.recent_faults = list(state.recent_faults)
        state.window = list(state.window)
        state.window_sorted = sorted(state.window)
        state.hourly = [list(x) for x in state.hourly]
        state.hour_max = -math.inf if data.get("hour_max") is None else float(data["hour_max"])
        state.day_max = -math.inf if data.get("day_max") is None else float(data["day_max"])
        return state


class _GroupState:
    """What a group of sensors measuring one quantity shares: the per-hour table and episodes."""

    __slots__ = (
        "episode_open",
        "episode_peak",
        "episode_start",
        "evaluated_through",
        "hours",
        "last_hour",
        "max_time",
        "outdoor",
        "run",
    )

    def __init__(self) -> None:
        self.max_time: int | None = None
        self.hours: dict[int, dict[str, list[float]]] = {}  # hour → sensor → [sum, count]
        self.evaluated_through: int | None = None
        self.last_hour: int | None = None
        self.run = 0
        self.episode_open = False
        self.episode_start: int | None = None
        self.episode_peak = 0.0
        self.outdoor: list[float] | None = None  # [time_us, value] newest outdoor temperature

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["hours"] = {
            str(h): {s: list(v) for s, v in table.items()} for h, table in self.hours.items()
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _GroupState:
        state = cls()
        for name in cls.__slots__:
            if name in data:
                setattr(state, name, data[name])
        state.hours = {
            int(h): {s: list(v) for s, v in table.items()}
            for h, table in data.get("hours", {}).items()
        }
        return state


# --------------------------------------------------------------------------------------------
# Evaluator
# --------------------------------------------------------------------------------------------


class StreamingEvaluator:
    """Evaluate a rule set over observations as they arrive.

    Parameters
    ----------
    rules
        The rule set (:func:`~qala.engines.detect.rules.air_quality_rules`, ...).
    groups
        Sensor id → group id (district, city, cluster). Network rules compare sensors of one
        group; sensors not listed belong to ``"all"``.
    hourly_sink
        A list that receives every closed hourly mean of valid readings as
        ``(sensor, quantity, hour_start_us, mean, readings)`` (for indicators such as the share
        of hours within norms). Not part of the state.

    Examples
    --------
    >>> evaluator = StreamingEvaluator(air_quality_rules(["pm25"]))   # doctest: +SKIP
    >>> findings = evaluator.feed(Observation.at("s1", "pm25", "2025-12-01T08:00+05:00", 41, "ug/m3"))
    >>> saved = evaluator.state()                       # JSON-ready; persist with the batch
    >>> evaluator = StreamingEvaluator.from_state(rules, saved)
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        groups: Mapping[str, str] | None = None,
        hourly_sink: list[tuple[str, str, int, float, int]] | None = None,
    ) -> None:
        self.rules = rules
        self.groups = dict(groups or {})
        # Optional: every closed hourly mean of valid readings is appended here as
        # (sensor, quantity, hour start µs, mean, readings) — for indicators, not part of the state.
        self.hourly_sink = hourly_sink
        self._offset_us = rules.utc_offset_minutes * 60 * US_PER_SECOND
        self._lateness_us = int(rules.lateness_s * US_PER_SECOND)
        self._compiled: dict[str, _QuantityRules] = {}
        self._factors: dict[tuple[str, str], float] = {}
        self._streams: dict[tuple[str, str], _StreamState] = {}
        self._groups: dict[tuple[str, str], _GroupState] = {}
        # Not part of the state: which entries changed since the last changes() call, and a
        # counter of ignored (duplicate or late) readings for monitoring.
        self._changed_streams: set[tuple[str, str]] = set()
        self._changed_groups: set[tuple[str, str]] = set()
        self.ignored = 0

    # ---- state ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The full evaluation state as JSON-ready data (dicts, lists, numbers, strings)."""
        return {
            "version": STATE_VERSION,
            "streams": [
                {"sensor": sensor, "quantity": quantity, **stream.to_dict()}
                for (sensor, quantity), stream in sorted(self._streams.items())
            ],
            "groups": [
                {"group": group, "quantity": quantity, **state.to_dict()}
                for (group, quantity), state in sorted(self._groups.items())
            ],
        }

    def changes(self) -> dict[str, Any]:
        """The state entries changed since the previous call (or since creation), then forget them.

        Same shape as :meth:`state`, but only the streams and groups touched since. A store that
        upserts each record by its ``(sensor, quantity)`` / ``(group, quantity)`` key holds, at any
        time, exactly what :meth:`state` would return, without rewriting the quiet sensors'
        state on every batch.
        """
        changes = {
            "version": STATE_VERSION,
            "streams": [
                {"sensor": key[0], "quantity": key[1], **self._streams[key].to_dict()}
                for key in sorted(self._changed_streams)
            ],
            "groups": [
                {"group": key[0], "quantity": key[1], **self._groups[key].to_dict()}
                for key in sorted(self._changed_groups)
            ],
        }
        self._changed_streams.clear()
        self._changed_groups.clear()
        return changes

    @classmethod
    def from_state(
        cls, rules: RuleSet, state: Mapping[str, Any], *, groups: Mapping[str, str] | None = None
    ) -> StreamingEvaluator:
        """Resume from :meth:`state` output (e.g. after a restart of the ingestion service)."""
        if state.get("version") != STATE_VERSION:
            raise ValidationError.single(
                f"detector state version {state.get('version')!r} is not {STATE_VERSION}",
                column="version",
            )
        evaluator = cls(rules, groups=groups)
        for record in state.get("streams", []):
            evaluator._streams[(record["sensor"], record["quantity"])] = _StreamState.from_dict(
                record
            )
        for record in state.get("groups", []):
            evaluator._groups[(record["group"], record["quantity"])] = _GroupState.from_dict(record)
        return evaluator

    # ---- feeding ----------------------------------------------------------------------------

    def feed(self, observation: Observation) -> list[Finding]:
        """Evaluate one observation; returns the findings it completes (often none)."""
        return self.feed_value(
            observation.sensor,
            observation.quantity,
            observation.time_us,
            observation.value,
            observation.unit,
        )

    def feed_many(self, observations: Iterable[Observation]) -> list[Finding]:
        findings: list[Finding] = []
        for observation in observations:
            findings.extend(self.feed(observation))
        return findings

    def feed_columns(self, columns: ObservationColumns) -> list[Finding]:
        """Evaluate a batch given as numpy columns, in the order given."""
        findings: list[Finding] = []
        feed = self.feed_value
        for sensor, quantity, time_us, value, unit in zip(
            columns.sensor.tolist(),
            columns.quantity.tolist(),
            columns.time_us.tolist(),
            columns.value.tolist(),
            columns.unit.tolist(),
            strict=True,
        ):
            out = feed(sensor, quantity, time_us, value, unit)
            if out:
                findings.extend(out)
        return findings

    def _rules_for(self, quantity: str) -> _QuantityRules:
        compiled = self._compiled.get(quantity)
        if compiled is None:
            compiled = self._compiled[quantity] = _compile(self.rules, quantity)
        return compiled

    def _factor(self, unit: str, compiled: _QuantityRules, quantity: str) -> float:
        key = (unit, quantity)
        factor = self._factors.get(key)
        if factor is None:
            factor = 1.0 if compiled.unit is None else conversion_factor(unit, compiled.unit)
            self._factors[key] = factor
        return factor

    def feed_value(
        self, sensor: str, quantity: str, time_us: int, value: float, unit: str
    ) -> list[Finding]:
        """Evaluate one reading given as plain values (the fast path of :meth:`feed`)."""
        key = (sensor, quantity)
        stream = self._streams.get(key)
        if stream is not None and stream.last_time is not None and time_us <= stream.last_time:
            self.ignored += 1  # duplicate or late: the state stays exactly as it was
            return []
        if value != value or value in (math.inf, -math.inf):
            raise ValidationError.single(
                "value must be a finite number", column="value", value=value
            )
        compiled = self._rules_for(quantity)
        value = value * self._factor(unit, compiled, quantity)  # may raise: before any change
        if stream is None:
            stream = self._streams[key] = _StreamState()
        self._changed_streams.add(key)
        findings: list[Finding] = []
        group_id = self.groups.get(sensor, DEFAULT_GROUP)

        # -- silence ended by this reading
        if stream.last_time is not None:
            gap = time_us - stream.last_time
            if compiled.silence is not None:
                self._silence_on_arrival(
                    stream, compiled.silence, sensor, quantity, gap, time_us, findings
                )
            gaps = stream.gaps
            gaps.append(gap)
            history = compiled.silence.history if compiled.silence is not None else 16
            while len(gaps) > history:  # while: the rules may have shrunk since a restart
                del gaps[0]
        stream.last_time = time_us
        stream.silence_alerted = None

        # -- close finished windows
        hour_index = time_us // US_PER_HOUR
        if compiled.needs_hours and stream.hour is not None and hour_index > stream.hour:
            self._close_hour(stream, compiled, sensor, quantity, findings)
        if (
            compiled.day
            and stream.day is not None
            and (time_us + self._offset_us) // US_PER_DAY > stream.day
        ):
            self._close_day(stream, compiled, sensor, quantity, findings)

        # -- faults
        fault = self._fault_of(stream, compiled, sensor, quantity, time_us, value, findings)
        quarantine = compiled.quarantine
        if quarantine is not None:
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
        if fault or stream.quarantined:
            return findings

        # -- checks on the single reading
        for limit in compiled.instant:
            self._check_limit(limit, sensor, quantity, time_us, time_us, value, findings, "reading")
        if compiled.rate and stream.prev_valid_time is not None:
            self._check_rate(stream, compiled, sensor, quantity, time_us, value, findings)
        if compiled.mad is not None:
            self._check_mad(
                stream, compiled.mad, compiled, sensor, quantity, time_us, value, findings
            )
        if compiled.heating:
            self._check_heating(compiled, group_id, sensor, quantity, time_us, value, findings)
        if compiled.is_outdoor_for_heating:
            outdoor_group = self._group(group_id, "__outdoor__")
            outdoor_group.outdoor = [time_us, value]
        stream.prev_valid_time = time_us
        stream.prev_valid_value = value

        # -- windows
        if compiled.needs_hours:
            if stream.hour != hour_index and (
                stream.last_closed_hour is None or hour_index > stream.last_closed_hour
            ):
                stream.hour = hour_index
                stream.hour_sum = 0.0
                stream.hour_count = 0
                stream.hour_max = -math.inf
            if stream.hour == hour_index:
                stream.hour_sum += value
                stream.hour_count += 1
                if value > stream.hour_max:
                    stream.hour_max = value
        if compiled.needs_group_table:
            self._add_to_group(
                group_id, sensor, quantity, compiled, hour_index, time_us, value, findings
            )
        for summation in compiled.summation:
            self._add_to_summation(
                summation, sensor, quantity, hour_index, time_us, value, findings
            )
        return findings

    # ---- faults -----------------------------------------------------------------------------

    def _fault_of(
        self,
        stream: _StreamState,
        compiled: _QuantityRules,
        sensor: str,
        quantity: str,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> bool:
        unit = compiled.unit or ""
        fault = False
        if compiled.saturation is not None:
            if compiled.cap is not None and value >= compiled.cap:
                findings.append(
                    Finding(
                        compiled.saturation.rule_id,
                        FindingKind.FAULT,
                        sensor,
                        quantity,
                        time_us,
                        time_us,
                        Severity.MAJOR,
                        value,
                        unit,
                        f"{sensor} {quantity} reads {value:g} {unit} at {format_epoch_us(time_us)}, at or above "
                        f"the cap {compiled.cap:g} {unit}: the sensor is saturated (a fault, not pollution)",
                        threshold=compiled.cap,
                    )
                )
                fault = True
            elif compiled.floor is not None and value < compiled.floor:
                findings.append(
                    Finding(
                        "fault.out_of_range",
                        FindingKind.FAULT,
                        sensor,
                        quantity,
                        time_us,
                        time_us,
                        Severity.MAJOR,
                        value,
                        unit,
                        f"{sensor} {quantity} reads {value:g} {unit} at {format_epoch_us(time_us)}, below the "
                        f"physical floor {compiled.floor:g} {unit}",
                        threshold=compiled.floor,
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
                    Finding(
                        stuck.rule_id,
                        FindingKind.FAULT,
                        sensor,
                        quantity,
                        time_us,
                        time_us,
                        Severity.MAJOR,
                        value,
                        unit,
                        f"{sensor} {quantity} has repeated exactly {value:g} {unit} {stream.repeats} times in a "
                        f"row (limit {limit}): the sensor is stuck (flat line)",
                        threshold=float(limit),
                        details={"repeats": stream.repeats},
                    )
                )
                fault = True
        return fault

    # ---- single-reading checks --------------------------------------------------------------

    def _check_limit(
        self,
        limit: _Limit,
        sensor: str,
        quantity: str,
        start_us: int,
        end_us: int,
        value: float,
        findings: list[Finding],
        what: str,
        coverage: str = "",
    ) -> None:
        rule = limit.rule
        if limit.high is not None and value > limit.high:
            ratio = value / limit.high if limit.high > 0 else math.inf
            bound, side = limit.high, "above"
        elif limit.low is not None and value < limit.low:
            ratio = limit.low / value if value > 0 else math.inf
            bound, side = limit.low, "below"
        else:
            return
        when = (
            format_epoch_us(start_us)
            if start_us == end_us
            else f"{format_epoch_us(start_us)}–{format_epoch_us(end_us)}"
        )
        findings.append(
            Finding(
                rule.rule_id,
                FindingKind.EXCEEDANCE,
                sensor,
                quantity,
                start_us,
                end_us,
                severity_for(ratio, rule.steps),
                value,
                limit.unit,
                f"{sensor} {quantity} {what} {value:.4g} {limit.unit} ({when}) is {side} the "
                f"{rule.averaging} limit {bound:g} {limit.unit} of {rule.citation or rule.rule_id}"
                f" ({ratio:.2f}×){coverage}",
                threshold=bound,
                details={"ratio": ratio, "side": side, "averaging": rule.averaging},
            )
        )

    def _check_rate(
        self,
        stream: _StreamState,
        compiled: _QuantityRules,
        sensor: str,
        quantity: str,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> None:
        previous_time = stream.prev_valid_time
        previous_value = stream.prev_valid_value
        assert previous_time is not None and previous_value is not None
        for rule, max_per_hour in compiled.rate:
            elapsed_h = (
                max(time_us - previous_time, rule.min_interval_s * US_PER_SECOND) / US_PER_HOUR
            )
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

    def _check_mad(
        self,
        stream: _StreamState,
        rule: RobustAnomalyRule,
        compiled: _QuantityRules,
        sensor: str,
        quantity: str,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> None:
        window = stream.window
        ordered = stream.window_sorted
        if len(window) >= rule.min_points:
            median, mad = _median_mad_of_sorted(ordered)
            scale = max(mad, rule.min_mad)
            z = _MAD_SCALE * (value - median) / scale
            if abs(z) > rule.threshold:
                unit = compiled.unit or ""
                findings.append(
                    Finding(
                        rule.rule_id,
                        FindingKind.ANOMALY,
                        sensor,
                        quantity,
                        time_us,
                        time_us,
                        rule.severity,
                        value,
                        unit,
                        f"{sensor} {quantity} {value:.4g} {unit} at {format_epoch_us(time_us)} has modified "
                        f"z-score {z:+.1f} against the median {median:.4g} and MAD {mad:.3g} of its last "
                        f"{len(window)} readings (limit ±{rule.threshold:g})",
                        threshold=rule.threshold,
                        details={"z": z, "median": median, "mad": mad},
                    )
                )
        window.append(value)
        insort(ordered, value)
        while len(window) > rule.window:
            del ordered[bisect_left(ordered, window[0])]
            del window[0]

    def _check_heating(
        self,
        compiled: _QuantityRules,
        group_id: str,
        sensor: str,
        quantity: str,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> None:
        outdoor = self._groups.get((group_id, "__outdoor__"))
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

    def _silence_on_arrival(
        self,
        stream: _StreamState,
        rule: SilenceRule,
        sensor: str,
        quantity: str,
        gap: int,
        time_us: int,
        findings: list[Finding],
    ) -> None:
        if len(stream.gaps) < rule.min_history:
            return
        usual = _median(stream.gaps)
        limit = max(rule.factor * usual, rule.min_gap_s * US_PER_SECOND)
        if gap > limit:
            assert stream.last_time is not None
            findings.append(
                _silence_finding(
                    rule, sensor, quantity, stream.last_time, time_us, usual, limit, ended=True
                )
            )

    def check_silence(self, now: int) -> list[Finding]:
        """Findings for streams silent at ``now`` (epoch µs), once per silence.

        The finding has the same key as the one :meth:`feed_value` emits when the sensor speaks
        again, so a consumer can update the open incident instead of opening another.
        """
        findings: list[Finding] = []
        for (sensor, quantity), stream in self._streams.items():
            rule = self._rules_for(quantity).silence
            if rule is None or stream.last_time is None or len(stream.gaps) < rule.min_history:
                continue
            if stream.silence_alerted == stream.last_time:
                continue
            usual = _median(stream.gaps)
            limit = max(rule.factor * usual, rule.min_gap_s * US_PER_SECOND)
            if now - stream.last_time > limit:
                stream.silence_alerted = stream.last_time
                self._changed_streams.add((sensor, quantity))
                findings.append(
                    _silence_finding(
                        rule, sensor, quantity, stream.last_time, now, usual, limit, ended=False
                    )
                )
        return findings

    # ---- windows ----------------------------------------------------------------------------

    def _close_hour(
        self,
        stream: _StreamState,
        compiled: _QuantityRules,
        sensor: str,
        quantity: str,
        findings: list[Finding],
    ) -> None:
        hour = stream.hour
        count = stream.hour_count
        stream.last_closed_hour = hour
        stream.hour = None
        if hour is None or count == 0:
            return
        mean = stream.hour_sum / count
        start = hour * US_PER_HOUR
        end = start + US_PER_HOUR
        if self.hourly_sink is not None:
            self.hourly_sink.append((sensor, quantity, start, mean, count))
        for limit in compiled.hour:
            self._check_limit(
                limit,
                sensor,
                quantity,
                start,
                end,
                mean,
                findings,
                "hourly mean",
                f"; {count} readings",
            )
        hourly = stream.hourly
        hourly.append([hour, mean])
        oldest = hour - compiled.hours_kept + 1
        while hourly and hourly[0][0] < oldest:
            del hourly[0]
        if compiled.eight_hour:
            recent = [m for h, m in hourly if h > hour - 8]
            for limit in compiled.eight_hour:
                if len(recent) >= math.ceil(limit.rule.min_coverage * 8):
                    self._check_limit(
                        limit,
                        sensor,
                        quantity,
                        end - 8 * US_PER_HOUR,
                        end,
                        sum(recent) / len(recent),
                        findings,
                        "8-hour mean",
                        f"; {len(recent)} of 8 hours",
                    )
        if compiled.day:
            day = (start + self._offset_us) // US_PER_DAY
            if stream.day is not None and day != stream.day:
                self._close_day(stream, compiled, sensor, quantity, findings)
            if stream.day is None:
                stream.day = day
                stream.day_sum = 0.0
                stream.day_hours = 0
                stream.day_max = -math.inf
            stream.day_sum += mean
            stream.day_hours += 1
            stream.day_max = max(stream.day_max, mean)
        if compiled.seasonal is not None:
            self._check_seasonal(
                stream, compiled.seasonal, compiled, sensor, quantity, hour, mean, findings
            )
        for rule, limit_value in compiled.episode:
            self._check_episode(
                stream, rule, limit_value, compiled, sensor, quantity, hour, findings
            )

    def _close_day(
        self,
        stream: _StreamState,
        compiled: _QuantityRules,
        sensor: str,
        quantity: str,
        findings: list[Finding],
    ) -> None:
        day = stream.day
        hours = stream.day_hours
        total = stream.day_sum
        stream.day = None
        if day is None or hours == 0:
            return
        mean = total / hours
        start = day * US_PER_DAY - self._offset_us
        for limit in compiled.day:
            if hours >= math.ceil(limit.rule.min_coverage * 24):
                self._check_limit(
                    limit,
                    sensor,
                    quantity,
                    start,
                    start + US_PER_DAY,
                    mean,
                    findings,
                    "daily mean",
                    f"; {hours} of 24 hours, local day UTC{self.rules.utc_offset_minutes / 60:+g}",
                )

    def _check_seasonal(
        self,
        stream: _StreamState,
        rule: SeasonalAnomalyRule,
        compiled: _QuantityRules,
        sensor: str,
        quantity: str,
        hour: int,
        mean: float,
        findings: list[Finding],
    ) -> None:
        local_hour = hour + self._offset_us // US_PER_HOUR
        hour_of_day = local_hour % 24
        # 1970-01-01 was a Thursday: Monday = 0.
        weekday = (local_hour // 24 + 3) % 7
        slot = weekday * 24 + hour_of_day if rule.by_weekday else hour_of_day
        history = stream.seasonal.setdefault(slot, [])
        if len(history) >= rule.min_points:
            median, mad = _median_mad(history)
            scale = max(mad, rule.min_mad)
            z = _MAD_SCALE * (mean - median) / scale
            if abs(z) > rule.threshold:
                unit = compiled.unit or ""
                start = hour * US_PER_HOUR
                days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
                slot_text = (
                    f"{days[weekday]} {hour_of_day:02d}h"
                    if rule.by_weekday
                    else f"{hour_of_day:02d}h"
                )
                findings.append(
                    Finding(
                        rule.rule_id,
                        FindingKind.ANOMALY,
                        sensor,
                        quantity,
                        start,
                        start + US_PER_HOUR,
                        rule.severity,
                        mean,
                        unit,
                        f"{sensor} {quantity} hourly mean {mean:.4g} {unit} has modified z-score {z:+.1f} "
                        f"against the median {median:.4g} (MAD {mad:.3g}) of the same slot ({slot_text} local) "
                        f"over the last {len(history)} weeks",
                        threshold=rule.threshold,
                        details={"z": z, "median": median, "mad": mad, "slot": slot},
                    )
                )
        history.append(mean)
        while len(history) > rule.history:
            del history[0]

    def _check_episode(
        self,
        stream: _StreamState,
        rule: EpisodeRule,
        limit: float,
        compiled: _QuantityRules,
        sensor: str,
        quantity: str,
        hour: int,
        findings: list[Finding],
    ) -> None:
        means = [m for h, m in stream.hourly if h > hour - rule.window_hours]
        elevated = False
        mean = 0.0
        variation = 0.0
        if len(means) >= math.ceil(rule.min_coverage * rule.window_hours):
            mean = sum(means) / len(means)
            if mean > limit:
                spread = math.sqrt(sum((m - mean) ** 2 for m in means) / len(means))
                variation = spread / mean
                # Natural variance is required to open an episode, not to keep it open
                # (hysteresis: a steady plateau above the limit does not flap open/closed).
                elevated = stream.episode_open or variation >= rule.min_variation
        unit = compiled.unit or rule.unit
        end = (hour + 1) * US_PER_HOUR
        if elevated and not stream.episode_open:
            stream.episode_open = True
            stream.episode_start = end - rule.window_hours * US_PER_HOUR
            stream.episode_peak = mean
            findings.append(
                Finding(
                    rule.rule_id,
                    FindingKind.EPISODE,
                    sensor,
                    quantity,
                    stream.episode_start,
                    end,
                    severity_for(mean / limit, rule.steps),
                    mean,
                    unit,
                    f"{sensor} {quantity}: pollution episode — mean of the last {len(means)} hourly means "
                    f"{mean:.4g} {unit} is {mean / limit:.2f}× the limit {limit:g} {unit} "
                    f"({rule.citation or rule.rule_id}), with natural variation (CV {variation:.2f})",
                    threshold=limit,
                    details={"phase": "start", "hours": len(means), "cv": variation},
                )
            )
        elif stream.episode_open and elevated:
            stream.episode_peak = max(stream.episode_peak, mean)
        elif stream.episode_open and not elevated:
            stream.episode_open = False
            start = stream.episode_start if stream.episode_start is not None else end
            findings.append(
                Finding(
                    rule.rule_id + ":end",
                    FindingKind.EPISODE,
                    sensor,
                    quantity,
                    start,
                    end,
                    Severity.INFO,
                    stream.episode_peak,
                    unit,
                    f"{sensor} {quantity}: episode over after {(end - start) / US_PER_HOUR:.0f} h; peak "
                    f"{rule.window_hours}-hour mean {stream.episode_peak:.4g} {unit} "
                    f"({stream.episode_peak / limit:.2f}× the limit {limit:g})",
                    threshold=limit,
                    details={"phase": "end"},
                )
            )

    # ---- groups -----------------------------------------------------------------------------

    def _group(self, group_id: str, quantity: str) -> _GroupState:
        key = (group_id, quantity)
        state = self._groups.get(key)
        if state is None:
            state = self._groups[key] = _GroupState()
        self._changed_groups.add(key)
        return state

    def _add_to_group(
        self,
        group_id: str,
        sensor: str,
        quantity: str,
        compiled: _QuantityRules,
        hour: int,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> None:
        group = self._group(group_id, quantity)
        if group.evaluated_through is None or hour > group.evaluated_through:
            table = group.hours.get(hour)
            if table is None:
                table = group.hours[hour] = {}
            cell = table.get(sensor)
            if cell is None:
                table[sensor] = [value, 1]
            else:
                cell[0] += value
                cell[1] += 1
        if group.max_time is None or time_us > group.max_time:
            group.max_time = time_us
            ready_through = (time_us - self._lateness_us) // US_PER_HOUR - 1
            if group.evaluated_through is None or ready_through > group.evaluated_through:
                self._evaluate_group_hours(
                    group, group_id, quantity, compiled, ready_through, findings
                )

    def _evaluate_group_hours(
        self,
        group: _GroupState,
        group_id: str,
        quantity: str,
        compiled: _QuantityRules,
        through: int | None,
        findings: list[Finding],
    ) -> None:
        ready = sorted(h for h in group.hours if through is None or h <= through)
        for hour in ready:
            table = group.hours.pop(hour)
            means = {sensor: cell[0] / cell[1] for sensor, cell in table.items()}
            self._cross_sensor(compiled, group_id, quantity, hour, means, findings)
            self._network_episode(group, compiled, group_id, quantity, hour, means, findings)
        _mark_evaluated(group, through, ready)

    def _cross_sensor(
        self,
        compiled: _QuantityRules,
        group_id: str,
        quantity: str,
        hour: int,
        means: dict[str, float],
        findings: list[Finding],
    ) -> None:
        if not compiled.cross or len(means) < 2:
            return
        start = hour * US_PER_HOUR
        for rule, abs_tolerance in compiled.cross:
            if len(means) < rule.min_neighbours + 1:
                continue
            ordered = sorted(means.values())
            for sensor in sorted(means):
                value = means[sensor]
                median = _median_without(ordered, bisect_left(ordered, value))
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

    def _network_episode(
        self,
        group: _GroupState,
        compiled: _QuantityRules,
        group_id: str,
        quantity: str,
        hour: int,
        means: dict[str, float],
        findings: list[Finding],
    ) -> None:
        for rule, limit in compiled.network_episode:
            above = sorted(s for s, v in means.items() if v > limit)
            elevated = len(above) >= rule.min_sensors and len(above) >= rule.min_fraction * len(
                means
            )
            if group.last_hour is not None and hour > group.last_hour + 1 + rule.max_missing_hours:
                self._end_network_episode(
                    group, rule, limit, compiled, group_id, quantity, group.last_hour, findings
                )
                group.run = 0
            group.last_hour = hour
            unit = compiled.unit or rule.unit
            if not elevated:
                self._end_network_episode(
                    group, rule, limit, compiled, group_id, quantity, hour - 1, findings
                )
                group.run = 0
                continue
            group.run += 1
            level = _median([means[s] for s in above])
            if group.episode_open:
                group.episode_peak = max(group.episode_peak, level)
            elif group.run >= rule.min_hours:
                group.episode_open = True
                group.episode_start = (hour - rule.min_hours + 1) * US_PER_HOUR
                group.episode_peak = level
                findings.append(
                    Finding(
                        rule.rule_id,
                        FindingKind.EPISODE,
                        group_id,
                        quantity,
                        group.episode_start,
                        (hour + 1) * US_PER_HOUR,
                        severity_for(level / limit, rule.steps),
                        level,
                        unit,
                        f"group `{group_id}` {quantity}: {len(above)} of {len(means)} stations "
                        f"({', '.join(above)}) above {limit:g} {unit} for {group.run} hours in a row; "
                        f"median of those stations {level:.4g} {unit} ({level / limit:.2f}× "
                        f"{rule.citation or rule.rule_id})",
                        threshold=limit,
                        details={"phase": "start", "sensors": above, "reporting": len(means)},
                    )
                )

    def _end_network_episode(
        self,
        group: _GroupState,
        rule: NetworkEpisodeRule,
        limit: float,
        compiled: _QuantityRules,
        group_id: str,
        quantity: str,
        last_elevated_hour: int,
        findings: list[Finding],
    ) -> None:
        if not group.episode_open:
            return
        group.episode_open = False
        start = (
            group.episode_start
            if group.episode_start is not None
            else last_elevated_hour * US_PER_HOUR
        )
        end = (last_elevated_hour + 1) * US_PER_HOUR
        findings.append(
            Finding(
                rule.rule_id + ":end",
                FindingKind.EPISODE,
                group_id,
                quantity,
                start,
                end,
                Severity.INFO,
                group.episode_peak,
                compiled.unit or rule.unit,
                f"group `{group_id}` {quantity}: network episode over after {(end - start) / US_PER_HOUR:.0f} h; "
                f"peak hourly level {group.episode_peak:.4g} ({group.episode_peak / limit:.2f}× {limit:g})",
                threshold=limit,
                details={"phase": "end"},
            )
        )

    # ---- combined effect (summation) ---------------------------------------------------------

    def _add_to_summation(
        self,
        rule: SummationRule,
        sensor: str,
        quantity: str,
        hour: int,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> None:
        table_state = self._group(sensor, _SUMMATION_PREFIX + rule.rule_id)
        if table_state.evaluated_through is None or hour > table_state.evaluated_through:
            cells = table_state.hours.setdefault(hour, {})
            cell = cells.get(quantity)
            if cell is None:
                cells[quantity] = [value, 1]
            else:
                cell[0] += value
                cell[1] += 1
        if table_state.max_time is None or time_us > table_state.max_time:
            table_state.max_time = time_us
            ready_through = (time_us - self._lateness_us) // US_PER_HOUR - 1
            if (
                table_state.evaluated_through is None
                or ready_through > table_state.evaluated_through
            ):
                self._evaluate_summation(rule, sensor, table_state, ready_through, findings)

    def _summation_limits(self, rule: SummationRule) -> list[float]:
        limits = []
        for quantity, limit in zip(rule.quantities, rule.limits, strict=True):
            unit = self._rules_for(quantity).unit
            limits.append(limit * (conversion_factor(rule.unit, unit) if unit else 1.0))
        return limits

    def _evaluate_summation(
        self,
        rule: SummationRule,
        sensor: str,
        table_state: _GroupState,
        through: int | None,
        findings: list[Finding],
    ) -> None:
        ready = sorted(h for h in table_state.hours if through is None or h <= through)
        limits = self._summation_limits(rule)
        for hour in ready:
            cells = table_state.hours.pop(hour)
            if not all(q in cells for q in rule.quantities):
                continue
            ratios = [
                cells[q][0] / cells[q][1] / limit
                for q, limit in zip(rule.quantities, limits, strict=True)
            ]
            total = sum(ratios)
            if total <= 1.0:
                continue
            largest_share = max(ratios) / total
            if rule.dominance is not None and largest_share > rule.dominance:
                continue  # one substance dominates: its own limit applies, not the sum
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
        _mark_evaluated(table_state, through, ready)

    # ---- end of input -----------------------------------------------------------------------

    def flush(self) -> list[Finding]:
        """Close every open hour, day and group hour (end of a replay).

        Call it once when a replay ends; a live service does not need it, since a window closes
        when the sensor's next reading (or the group's time) moves past it. Open episodes stay
        open: the end of the data is not the end of the pollution.
        """
        findings: list[Finding] = []
        self._changed_streams.update(self._streams)
        self._changed_groups.update(self._groups)
        for (sensor, quantity), stream in sorted(self._streams.items()):
            compiled = self._rules_for(quantity)
            if compiled.needs_hours and stream.hour is not None:
                self._close_hour(stream, compiled, sensor, quantity, findings)
            if compiled.day and stream.day is not None:
                self._close_day(stream, compiled, sensor, quantity, findings)
        summations = {
            rule.rule_id: rule for rule in self.rules.rules if isinstance(rule, SummationRule)
        }
        for (group_id, quantity), group in sorted(self._groups.items()):
            if quantity == "__outdoor__":
                continue
            if quantity.startswith(_SUMMATION_PREFIX):
                rule = summations.get(quantity[len(_SUMMATION_PREFIX) :])
                if rule is not None:
                    self._evaluate_summation(rule, group_id, group, None, findings)
                continue
            compiled = self._rules_for(quantity)
            self._evaluate_group_hours(group, group_id, quantity, compiled, None, findings)
        return findings


def _silence_finding(
    rule: SilenceRule,
    sensor: str,
    quantity: str,
    last_us: int,
    until_us: int,
    usual_us: float,
    limit_us: float,
    *,
    ended: bool,
) -> Finding:
    gap_h = (until_us - last_us) / US_PER_HOUR
    state = (
        f"spoke again at {format_epoch_us(until_us)}"
        if ended
        else f"still silent at {format_epoch_us(until_us)}"
    )
    return Finding(
        rule.rule_id,
        FindingKind.SILENCE,
        sensor,
        quantity,
        last_us,
        until_us,
        rule.severity,
        gap_h,
        "h",
        f"{sensor} {quantity} silent for {gap_h:.2f} h since {format_epoch_us(last_us)} ({state}); its usual "
        f"interval is {usual_us / US_PER_HOUR * 60:.0f} min and the limit {limit_us / US_PER_HOUR:.2f} h "
        f"({rule.factor:g}× usual, at least {rule.min_gap_s / 60:g} min)",
        threshold=limit_us / US_PER_HOUR,
        details={"phase": "end" if ended else "open"},
    )


def _median(values: list[float] | list[int]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    return float(ordered[middle]) if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def _median_without(ordered: list[float], rank: int) -> float:
    """Median of sorted ``ordered`` with the element at ``rank`` left out, in O(1)."""
    count = len(ordered) - 1

    def other(index: int) -> float:
        return ordered[index] if index < rank else ordered[index + 1]

    middle = count // 2
    return other(middle) if count % 2 else (other(middle - 1) + other(middle)) / 2.0


def _median_mad_of_sorted(ordered: list[float]) -> tuple[float, float]:
    """Median and MAD of an already sorted list in O(n) without building the deviations.

    Deviations left of the median, read outwards, increase, and so do those on the right: the
    MAD is the middle of the merge of those two increasing runs.
    """
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
    split = bisect_left(ordered, median)
    left = split - 1  # next left value to take (moving down)
    right = split  # next right value to take (moving up)
    wanted = middle if n % 2 else middle - 1  # 0-based rank of the (lower) middle deviation
    previous = current = 0.0
    for _ in range(wanted + 1 + (0 if n % 2 else 1)):
        previous = current
        if right >= n or (left >= 0 and median - ordered[left] <= ordered[right] - median):
            current = median - ordered[left]
            left -= 1
        else:
            current = ordered[right] - median
            right += 1
    mad = current if n % 2 else (previous + current) / 2.0
    return float(median), float(mad)


def _median_mad(values: list[float]) -> tuple[float, float]:
    """Median and median absolute deviation (unscaled)."""
    if len(values) < 64:
        ordered = sorted(values)
        n = len(ordered)
        middle = n // 2
        median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
        deviations = sorted([abs(v - median) for v in ordered])
        mad = deviations[middle] if n % 2 else (deviations[middle - 1] + deviations[middle]) / 2.0
        return float(median), float(mad)
    array = np.asarray(values, dtype=float)
    median = float(np.median(array))
    return median, float(np.median(np.abs(array - median)))


class _Evaluated(Protocol):
    evaluated_through: int | None


def _mark_evaluated(state: _Evaluated, through: int | None, ready: list[int]) -> None:
    """Advance a window table's high-water mark to ``through``, or to the last hour evaluated."""
    reached = through if through is not None else (ready[-1] if ready else None)
    if reached is not None:
        state.evaluated_through = (
            reached if state.evaluated_through is None else max(state.evaluated_through, reached)
        )
