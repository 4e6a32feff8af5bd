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

This module is the dispatcher; each family of rules lives in its own module (:mod:`.thresholds`,
:mod:`.rate`, :mod:`.anomalies`, :mod:`.faults`, :mod:`.silence`, :mod:`.episodes`,
:mod:`.neighbours`, :mod:`.heating`, :mod:`.summation`, sharing the medians of :mod:`.stats`),
the compiled rules in :mod:`.compiled` and the state with its hour tables in :mod:`.state`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from qala.core.errors import ValidationError

from . import anomalies, episodes, faults, heating, neighbours, rate, silence, summation, thresholds
from .compiled import QuantityRules, compile_rules
from .model import US_PER_DAY, US_PER_HOUR, US_PER_SECOND, Finding, Observation, ObservationColumns
from .rules import RuleSet, SummationRule
from .state import GroupState, StreamState, add_to_table, take_hours
from .units import conversion_factor

STATE_VERSION = 1
DEFAULT_GROUP = "all"


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
        self._compiled: dict[str, QuantityRules] = {}
        self._factors: dict[tuple[str, str], float] = {}
        self._streams: dict[tuple[str, str], StreamState] = {}
        self._groups: dict[tuple[str, str], GroupState] = {}
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

    def changed_records(self) -> list[tuple[str, str, str, str]]:
        """:meth:`changes` as records ``(kind, subject, quantity, JSON text of the data without
        the key fields)``, streams then groups, each in key order; then forget them."""
        records = [
            ("stream", key[0], key[1], self._streams[key].to_json())
            for key in sorted(self._changed_streams)
        ]
        records.extend(
            ("group", key[0], key[1], json.dumps(self._groups[key].to_dict()))
            for key in sorted(self._changed_groups)
        )
        self._changed_streams.clear()
        self._changed_groups.clear()
        return records

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
            evaluator._streams[(record["sensor"], record["quantity"])] = StreamState.from_dict(
                record
            )
        for record in state.get("groups", []):
            evaluator._groups[(record["group"], record["quantity"])] = GroupState.from_dict(record)
        return evaluator

    def state_keys(self, sensor: str, quantity: str) -> list[tuple[str, str, str]]:
        """The state records a reading of ``(sensor, quantity)`` may read or change, as
        ``(kind, subject, quantity)`` with kind ``"stream"`` (subject: the sensor) or ``"group"``
        (subject: the sensor's group, or the sensor itself for its summation tables).

        A store that keeps one row per record locks exactly these before feeding the reading,
        so that readings of other streams (and other groups) are evaluated concurrently.
        """
        compiled = self._rules_for(quantity)
        group_id = self.groups.get(sensor, DEFAULT_GROUP)
        keys = [("stream", sensor, quantity)]
        if compiled.needs_group_table:
            keys.append(("group", group_id, quantity))
        if compiled.heating or compiled.is_outdoor_for_heating:
            keys.append(("group", group_id, heating.OUTDOOR))
        keys.extend(
            ("group", sensor, summation.TABLE_PREFIX + rule.rule_id) for rule in compiled.summation
        )
        return keys

    def record(self, kind: str, subject: str, quantity: str) -> dict[str, Any] | None:
        """One record of :meth:`state` by its key (without the key fields); None if absent."""
        if kind == "stream":
            stream = self._streams.get((subject, quantity))
            return None if stream is None else stream.to_dict()
        group = self._groups.get((subject, quantity))
        return None if group is None else group.to_dict()

    def load_records(
        self, records: Iterable[tuple[str, str, str, Mapping[str, Any] | None]]
    ) -> None:
        """Replace single records ``(kind, subject, quantity, data)`` of the state, as
        :meth:`changes` gave them (key fields may be left out); data None forgets the record.
        Loaded records are not reported by :meth:`changes`."""
        for kind, subject, quantity, data in records:
            key = (subject, quantity)
            if kind == "stream":
                if data is None:
                    self._streams.pop(key, None)
                else:
                    self._streams[key] = StreamState.from_dict(data)
                self._changed_streams.discard(key)
            else:
                if data is None:
                    self._groups.pop(key, None)
                else:
                    self._groups[key] = GroupState.from_dict(data)
                self._changed_groups.discard(key)

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

    def _rules_for(self, quantity: str) -> QuantityRules:
        compiled = self._compiled.get(quantity)
        if compiled is None:
            compiled = self._compiled[quantity] = compile_rules(self.rules, quantity)
        return compiled

    def _factor(self, unit: str, compiled: QuantityRules, quantity: str) -> float:
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
            stream = self._streams[key] = StreamState()
        self._changed_streams.add(key)
        findings: list[Finding] = []
        self._arrive(stream, compiled, sensor, quantity, time_us, findings)
        fault = faults.fault_of(stream, compiled, sensor, quantity, time_us, value, findings)
        if compiled.quarantine is not None:
            faults.update_quarantine(
                stream, compiled.quarantine, sensor, quantity, time_us, fault, findings
            )
        if fault or stream.quarantined:
            return findings
        group_id = self.groups.get(sensor, DEFAULT_GROUP)
        self._check_reading(stream, compiled, group_id, sensor, quantity, time_us, value, findings)
        self._add_to_windows(stream, compiled, group_id, sensor, quantity, time_us, value, findings)
        return findings

    def _arrive(
        self,
        stream: StreamState,
        compiled: QuantityRules,
        sensor: str,
        quantity: str,
        time_us: int,
        findings: list[Finding],
    ) -> None:
        """Note the reading's time: end a silence, keep the gap, close finished hour and day."""
        if stream.last_time is not None:
            gap = time_us - stream.last_time
            if compiled.silence is not None:
                silence.silence_on_arrival(
                    stream, compiled.silence, sensor, quantity, gap, time_us, findings
                )
            gaps = stream.gaps
            gaps.append(gap)
            history = compiled.silence.history if compiled.silence is not None else 16
            while len(gaps) > history:  # while: the rules may have shrunk since a restart
                del gaps[0]
        stream.last_time = time_us
        stream.silence_alerted = None
        if (
            compiled.needs_hours
            and stream.hour is not None
            and time_us // US_PER_HOUR > stream.hour
        ):
            self._close_hour(stream, compiled, sensor, quantity, findings)
        if (
            compiled.day
            and stream.day is not None
            and (time_us + self._offset_us) // US_PER_DAY > stream.day
        ):
            self._close_day(stream, compiled, sensor, quantity, findings)

    def _check_reading(
        self,
        stream: StreamState,
        compiled: QuantityRules,
        group_id: str,
        sensor: str,
        quantity: str,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> None:
        """The rules on a single valid reading: instant thresholds, rate, MAD, heating schedule."""
        for limit in compiled.instant:
            thresholds.check_limit(
                limit, sensor, quantity, time_us, time_us, value, findings, "reading"
            )
        if compiled.rate and stream.prev_valid_time is not None:
            rate.check_rate(stream, compiled, sensor, quantity, time_us, value, findings)
        if compiled.mad is not None:
            anomalies.check_mad(
                stream, compiled.mad, compiled, sensor, quantity, time_us, value, findings
            )
        if compiled.heating:
            outdoor = self._groups.get((group_id, heating.OUTDOOR))
            heating.check_heating(compiled, outdoor, sensor, quantity, time_us, value, findings)
        if compiled.is_outdoor_for_heating:
            self._group(group_id, heating.OUTDOOR).outdoor = [time_us, value]
        stream.prev_valid_time = time_us
        stream.prev_valid_value = value

    def _add_to_windows(
        self,
        stream: StreamState,
        compiled: QuantityRules,
        group_id: str,
        sensor: str,
        quantity: str,
        time_us: int,
        value: float,
        findings: list[Finding],
    ) -> None:
        """Add a valid reading to its stream's hour, its group's hour table and the summations'."""
        hour = time_us // US_PER_HOUR
        if compiled.needs_hours:
            if stream.hour != hour and (
                stream.last_closed_hour is None or hour > stream.last_closed_hour
            ):
                stream.hour = hour
                stream.hour_sum = 0.0
                stream.hour_count = 0
                stream.hour_max = -math.inf
            if stream.hour == hour:
                stream.hour_sum += value
                stream.hour_count += 1
                if value > stream.hour_max:
                    stream.hour_max = value
        if compiled.needs_group_table:
            group = self._group(group_id, quantity)
            through = add_to_table(group, hour, sensor, value, time_us, self._lateness_us)
            if through is not None:
                self._evaluate_group_hours(group, group_id, quantity, compiled, through, findings)
        for rule in compiled.summation:
            table = self._group(sensor, summation.TABLE_PREFIX + rule.rule_id)
            through = add_to_table(table, hour, quantity, value, time_us, self._lateness_us)
            if through is not None:
                self._evaluate_summation(rule, sensor, table, through, findings)

    def check_silence(
        self, now: int, sensors: Callable[[str], bool] | None = None
    ) -> list[Finding]:
        """Findings for streams silent at ``now`` (epoch µs), once per silence.

        The finding has the same key as the one :meth:`feed_value` emits when the sensor speaks
        again, so a consumer can update the open incident instead of opening another.
        ``sensors``, if given, limits the check to the streams of the sensors it accepts (a
        worker owning part of them).
        """
        findings: list[Finding] = []
        for key, stream in self._streams.items():
            if sensors is not None and not sensors(key[0]):
                continue
            rule = self._rules_for(key[1]).silence
            if rule is None:
                continue
            finding = silence.silent_at(stream, rule, key[0], key[1], now)
            if finding is not None:
                self._changed_streams.add(key)
                findings.append(finding)
        return findings

    # ---- windows ----------------------------------------------------------------------------

    def _close_hour(
        self,
        stream: StreamState,
        compiled: QuantityRules,
        sensor: str,
        quantity: str,
        findings: list[Finding],
    ) -> None:
        """Close the stream's hour: its mean goes to the hourly rules and into the day."""
        stream.hour_closed()
        hour = stream.hour
        count = stream.hour_count
        stream.last_closed_hour = hour
        stream.hour = None
        if hour is None or count == 0:
            return
        mean = stream.hour_sum / count
        start = hour * US_PER_HOUR
        if self.hourly_sink is not None:
            self.hourly_sink.append((sensor, quantity, start, mean, count))
        for limit in compiled.hour:
            thresholds.check_limit(
                limit,
                sensor,
                quantity,
                start,
                start + US_PER_HOUR,
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
            thresholds.check_eight_hour_mean(
                compiled.eight_hour, sensor, quantity, hourly, hour, findings
            )
        if compiled.day:
            self._add_to_day(stream, compiled, sensor, quantity, start, mean, findings)
        if compiled.seasonal is not None:
            anomalies.check_seasonal(
                stream,
                compiled.seasonal,
                compiled,
                sensor,
                quantity,
                hour,
                mean,
                self._offset_us,
                findings,
            )
        for rule, limit_value in compiled.episode:
            episodes.check_episode(
                stream, rule, limit_value, compiled, sensor, quantity, hour, findings
            )

    def _add_to_day(
        self,
        stream: StreamState,
        compiled: QuantityRules,
        sensor: str,
        quantity: str,
        hour_start: int,
        mean: float,
        findings: list[Finding],
    ) -> None:
        """Add an hourly mean to its local day, closing the previous day first."""
        day = (hour_start + self._offset_us) // US_PER_DAY
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

    def _close_day(
        self,
        stream: StreamState,
        compiled: QuantityRules,
        sensor: str,
        quantity: str,
        findings: list[Finding],
    ) -> None:
        day = stream.day
        hours = stream.day_hours
        stream.day = None
        if day is None or hours == 0:
            return
        thresholds.check_daily_mean(
            compiled.day,
            sensor,
            quantity,
            day * US_PER_DAY - self._offset_us,
            stream.day_sum / hours,
            hours,
            self.rules.utc_offset_minutes,
            findings,
        )

    # ---- hour tables: groups and summations -------------------------------------------------

    def _group(self, group_id: str, quantity: str) -> GroupState:
        key = (group_id, quantity)
        state = self._groups.get(key)
        if state is None:
            state = self._groups[key] = GroupState()
        self._changed_groups.add(key)
        return state

    def _evaluate_group_hours(
        self,
        group: GroupState,
        group_id: str,
        quantity: str,
        compiled: QuantityRules,
        through: int | None,
        findings: list[Finding],
    ) -> None:
        for hour, table in take_hours(group, through):
            means = {sensor: cell[0] / cell[1] for sensor, cell in table.items()}
            neighbours.cross_sensor(compiled, group_id, quantity, hour, means, findings)
            episodes.network_episode(group, compiled, group_id, quantity, hour, means, findings)

    def _evaluate_summation(
        self,
        rule: SummationRule,
        sensor: str,
        table: GroupState,
        through: int | None,
        findings: list[Finding],
    ) -> None:
        units = [self._rules_for(quantity).unit for quantity in rule.quantities]
        limits = summation.limits_in_units(rule, units)
        for hour, cells in take_hours(table, through):
            summation.check_hour(rule, limits, sensor, hour, cells, findings)

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
            if quantity == heating.OUTDOOR:
                continue
            if quantity.startswith(summation.TABLE_PREFIX):
                rule = summations.get(quantity[len(summation.TABLE_PREFIX) :])
                if rule is not None:
                    self._evaluate_summation(rule, group_id, group, None, findings)
                continue
            compiled = self._rules_for(quantity)
            self._evaluate_group_hours(group, group_id, quantity, compiled, None, findings)
        return findings
