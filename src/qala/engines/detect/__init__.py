"""Rules and anomaly detection for observation streams (air quality, heating networks, ...).

Pure computation: observations in, findings out. No files, network or database — the norm tables
are package data read by :mod:`.norms_loader`, and the evaluator's state is plain data that the
ingestion component persists.

Public API
----------
Observations and findings (:mod:`.model`)
    ``Observation.at(sensor, quantity, time, value, unit)`` — one reading; ``time`` must carry
    its UTC offset. ``columns_from_frame(frame, ...)`` validates a DataFrame into numpy columns.
    ``Finding`` — ``rule_id``, ``kind`` (:class:`FindingKind`: exceedance, episode, anomaly,
    fault, silence), ``sensor``, ``quantity``, ``start``/``end``, ``severity``
    (:class:`Severity`), ``value``, ``threshold``, ``unit``, ``explanation`` (with the numbers);
    ``key`` deduplicates, ``as_dict()`` serialises.

Rules (:mod:`.rules`) — frozen parameter records
    ``ThresholdRule`` (instant, hour, 8 h rolling, day), ``SaturationRule``, ``StuckRule``,
    ``QuarantineRule``, ``RateOfChangeRule``, ``RobustAnomalyRule`` (rolling median/MAD),
    ``SeasonalAnomalyRule`` (hour of day × weekday), ``SilenceRule``, ``EpisodeRule``,
    ``NetworkEpisodeRule``, ``CrossSensorRule``, ``SummationRule`` (combined effect,
    Σ Cᵢ/ПДКᵢ ≤ 1), ``HeatingScheduleRule``; grouped in a ``RuleSet``. Factories:
    ``air_quality_rules(["pm25", ...])``, ``heating_rules()``, ``threshold_rules_from_norms(limits)``,
    ``summation_rules_from_norms(table, quantities)``.

Norms (:mod:`.norms_loader`)
    ``load_norm_table("air_kz_dsm70" | "air_who_2021")``, ``band_of(value, quantity=...,
    averaging=..., scale_id=...)``, ``load_heating_norms()``.

Evaluation
    ``StreamingEvaluator(rules, groups=...)`` — ``feed(observation)``, ``feed_value(...)``,
    ``feed_columns(columns)``, ``check_silence(now_us)``, ``flush()``, ``state()``,
    ``changes()`` (records touched since the last call, for incremental persistence),
    ``state_keys(sensor, quantity)`` (the records a reading may touch: what a store keeping one
    row per record locks), ``load_records(records)`` (replace single records) and
    ``StreamingEvaluator.from_state(rules, state)``; idempotent per ``(sensor, quantity, time)``.
    ``evaluate_frame(frame, rules, ...)`` — batch replay of a DataFrame, findings as a DataFrame;
    ``hourly_means(columns, rules)`` — the valid hourly means the rules use (for indicators).

The method note is ``docs/detect-rules.md``.
"""

from .batch import (
    FINDING_COLUMNS,
    evaluate_columns,
    evaluate_frame,
    findings_to_frame,
    hourly_means,
)
from .evaluator import StreamingEvaluator
from .model import (
    Finding,
    FindingKind,
    Observation,
    ObservationColumns,
    Severity,
    columns_from_frame,
    from_epoch_us,
    to_epoch_us,
)
from .norms_loader import (
    BandScale,
    HeatingNorms,
    HeatingSchedule,
    NormLimit,
    NormTable,
    band_of,
    load_band_scales,
    load_heating_norms,
    load_norm_table,
)
from .rules import (
    CrossSensorRule,
    EpisodeRule,
    HeatingScheduleRule,
    NetworkEpisodeRule,
    QuarantineRule,
    RateOfChangeRule,
    RobustAnomalyRule,
    Rule,
    RuleSet,
    SaturationRule,
    SeasonalAnomalyRule,
    SilenceRule,
    StuckRule,
    SummationRule,
    ThresholdRule,
    air_quality_rules,
    heating_rules,
    severity_for,
    summation_rules_from_norms,
    threshold_rules_from_norms,
)
from .units import conversion_factor, normalise_unit

__all__ = [
    "FINDING_COLUMNS",
    "BandScale",
    "CrossSensorRule",
    "EpisodeRule",
    "Finding",
    "FindingKind",
    "HeatingNorms",
    "HeatingSchedule",
    "HeatingScheduleRule",
    "NetworkEpisodeRule",
    "NormLimit",
    "NormTable",
    "Observation",
    "ObservationColumns",
    "QuarantineRule",
    "RateOfChangeRule",
    "RobustAnomalyRule",
    "Rule",
    "RuleSet",
    "SaturationRule",
    "SeasonalAnomalyRule",
    "Severity",
    "SilenceRule",
    "StreamingEvaluator",
    "StuckRule",
    "SummationRule",
    "ThresholdRule",
    "air_quality_rules",
    "band_of",
    "columns_from_frame",
    "conversion_factor",
    "evaluate_columns",
    "evaluate_frame",
    "findings_to_frame",
    "from_epoch_us",
    "heating_rules",
    "hourly_means",
    "load_band_scales",
    "load_heating_norms",
    "load_norm_table",
    "normalise_unit",
    "severity_for",
    "summation_rules_from_norms",
    "threshold_rules_from_norms",
    "to_epoch_us",
]
