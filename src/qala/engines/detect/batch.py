"""Batch evaluation for replays: a DataFrame of observations in, a DataFrame of findings out.

The batch path sorts the rows by time (stable, so equal times keep file order) and runs the same
:class:`~qala.engines.detect.evaluator.StreamingEvaluator` over them, then closes the open
windows. Streaming the same rows in any order that keeps each sensor's readings in time order
(and keeps every reading within ``RuleSet.lateness_s`` of its group's newest one) gives the same
findings, which the test-suite checks as a property.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from .evaluator import StreamingEvaluator
from .model import Finding, ObservationColumns, columns_from_frame
from .rules import RuleSet

FINDING_COLUMNS = [
    "rule_id",
    "kind",
    "sensor",
    "quantity",
    "start",
    "end",
    "severity",
    "value",
    "threshold",
    "unit",
    "explanation",
]


def evaluate_columns(
    columns: ObservationColumns, rules: RuleSet, *, groups: Mapping[str, str] | None = None
) -> list[Finding]:
    """Findings for a whole batch of observations (sorted by time, then windows closed)."""
    evaluator = StreamingEvaluator(rules, groups=groups)
    findings = evaluator.feed_columns(columns.sorted_by_time())
    findings.extend(evaluator.flush())
    return findings


def evaluate_frame(
    frame: pd.DataFrame,
    rules: RuleSet,
    *,
    groups: Mapping[str, str] | None = None,
    sensor: str = "sensor",
    quantity: str | None = "quantity",
    time: str = "time",
    value: str = "value",
    unit: str | None = "unit",
    default_quantity: str | None = None,
    default_unit: str | None = None,
) -> pd.DataFrame:
    """Evaluate ``rules`` over a table of observations and return the findings as a table.

    Parameters
    ----------
    frame
        One row per observation; times must carry their offset (``2025-12-01 00:00:00-08:00``)
        or be timezone-aware.
    rules
        The rule set.
    groups
        Sensor id → group id for the network rules.
    sensor, quantity, time, value, unit, default_quantity, default_unit
        Column names, see :func:`~qala.engines.detect.model.columns_from_frame`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FINDING_COLUMNS` (``start``/``end`` timezone-aware UTC), one row per finding.
    """
    columns = columns_from_frame(
        frame,
        sensor=sensor,
        quantity=quantity,
        time=time,
        value=value,
        unit=unit,
        default_quantity=default_quantity,
        default_unit=default_unit,
    )
    return findings_to_frame(evaluate_columns(columns, rules, groups=groups))


def hourly_means(
    columns: ObservationColumns, rules: RuleSet, *, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Clock-hour means of the *valid* readings (faults and quarantined readings left out), the
    same means the hourly, 8-hour, daily and episode rules use.

    Only quantities with an hour-based rule (hour/8 h/day threshold, seasonal or episode rule)
    are averaged. Returns columns ``sensor, quantity, hour`` (aware UTC start), ``mean``,
    ``readings``. Use it for indicators such as the share of hours within a norm.
    """
    sink: list[tuple[str, str, int, float, int]] = []
    evaluator = StreamingEvaluator(rules, groups=groups, hourly_sink=sink)
    evaluator.feed_columns(columns.sorted_by_time())
    evaluator.flush()
    table = pd.DataFrame(sink, columns=["sensor", "quantity", "hour", "mean", "readings"])
    table["hour"] = pd.to_datetime(table["hour"].astype("int64"), unit="us", utc=True)
    return table.sort_values(["sensor", "quantity", "hour"], kind="stable").reset_index(drop=True)


def findings_to_frame(findings: Iterable[Finding]) -> pd.DataFrame:
    """Findings as a DataFrame with :data:`FINDING_COLUMNS`."""
    rows = [
        {
            "rule_id": f.rule_id,
            "kind": str(f.kind),
            "sensor": f.sensor,
            "quantity": f.quantity,
            "start": f.start_us,
            "end": f.end_us,
            "severity": f.severity.name.lower(),
            "value": f.value,
            "threshold": f.threshold,
            "unit": f.unit,
            "explanation": f.explanation,
        }
        for f in findings
    ]
    table = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    for name in ("start", "end"):
        table[name] = pd.to_datetime(table[name].astype("int64"), unit="us", utc=True)
    return table
