"""Observations, findings and time helpers shared by every detection rule.

Times are held internally as integer microseconds since the Unix epoch (UTC), so that equality of
``(sensor, time)`` is exact and hour/day buckets are integer divisions. Offsets in the input (for
example ``2025-12-02 14:19:05-08:00``) are honoured when converting, never assumed to be UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from qala.core.errors import Problem, ValidationError, raise_if_problems

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3_600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Severity(enum.IntEnum):
    """How urgently a finding needs a person; ordered so that ``max()`` picks the worst."""

    INFO = 1
    WARNING = 2
    MAJOR = 3
    CRITICAL = 4


class FindingKind(enum.StrEnum):
    """What a finding says about the world.

    ``exceedance`` — a value (instant or averaged) is beyond a norm;
    ``episode`` — sustained elevated values with natural variance (a real pollution event);
    ``anomaly`` — a value is unusual for this sensor or its neighbours (may be real or a fault);
    ``fault`` — the sensor itself is broken: saturated at a cap, stuck, out of physical range;
    ``silence`` — the sensor stopped reporting.
    """

    EXCEEDANCE = "exceedance"
    EPISODE = "episode"
    ANOMALY = "anomaly"
    FAULT = "fault"
    SILENCE = "silence"


def to_epoch_us(moment: datetime | pd.Timestamp | str) -> int:
    """Microseconds since the epoch of a timezone-aware moment.

    Raises
    ------
    ValidationError
        When the moment has no timezone/offset: a naive time is ambiguous for a city sensor.
    """
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValidationError.single(
            "observation time must carry a timezone or UTC offset (naive times are ambiguous)",
            column="time",
            value=str(moment),
        )
    return int(stamp.value // 1_000)


def from_epoch_us(epoch_us: int) -> datetime:
    """Aware UTC datetime for microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=int(epoch_us))


def format_epoch_us(epoch_us: int) -> str:
    """ISO 8601 text (UTC, seconds precision) for explanations."""
    return from_epoch_us(epoch_us).strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of one quantity by one sensor.

    Parameters
    ----------
    sensor
        Stable sensor (station) id, e.g. ``"kgmt_9"``.
    quantity
        What is measured, e.g. ``"pm25"``, ``"supply_temperature"``.
    time_us
        Microseconds since the epoch (UTC); build with :meth:`at` from an aware datetime.
    value
        The reading in ``unit``.
    unit
        Unit text, e.g. ``"ug/m3"``, ``"mg/m3"``, ``"degC"``, ``"MPa"``.
    """

    sensor: str
    quantity: str
    time_us: int
    value: float
    unit: str

    @classmethod
    def at(
        cls,
        sensor: str,
        quantity: str,
        time: datetime | pd.Timestamp | str,
        value: float,
        unit: str,
    ) -> Observation:
        """Build an observation from an aware datetime (or ISO text with an offset)."""
        return cls(sensor, quantity, to_epoch_us(time), float(value), unit)

    @property
    def time(self) -> datetime:
        return from_epoch_us(self.time_us)


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule concluded about a sensor (or a group of sensors) over a time window.

    ``start_us``/``end_us`` bound the evidence (for an instant reading both equal its time;
    for an hourly mean they are the hour's bounds, end exclusive). ``key`` identifies the
    finding so that a consumer can deduplicate repeated evaluations.
    """

    rule_id: str
    kind: FindingKind
    sensor: str
    quantity: str
    start_us: int
    end_us: int
    severity: Severity
    value: float
    unit: str
    explanation: str
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.rule_id, self.sensor, self.start_us)

    @property
    def start(self) -> datetime:
        return from_epoch_us(self.start_us)

    @property
    def end(self) -> datetime:
        return from_epoch_us(self.end_us)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (times as ISO 8601 UTC)."""
        return {
            "rule_id": self.rule_id,
            "kind": str(self.kind),
            "sensor": self.sensor,
            "quantity": self.quantity,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "severity": self.severity.name.lower(),
            "value": self.value,
            "threshold": self.threshold,
            "unit": self.unit,
            "explanation": self.explanation,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class ObservationColumns:
    """A batch of observations as parallel numpy arrays (what the fast paths iterate over)."""

    sensor: np.ndarray
    quantity: np.ndarray
    time_us: np.ndarray
    value: np.ndarray
    unit: np.ndarray

    def __len__(self) -> int:
        return len(self.time_us)

    def sorted_by_time(self) -> ObservationColumns:
        """Stable sort by time (ties keep input order), the order a replay feeds them in."""
        order = np.argsort(self.time_us, kind="stable")
        return ObservationColumns(
            self.sensor[order],
            self.quantity[order],
            self.time_us[order],
            self.value[order],
            self.unit[order],
        )


def columns_from_frame(
    frame: pd.DataFrame,
    *,
    sensor: str = "sensor",
    quantity: str | None = "quantity",
    time: str = "time",
    value: str = "value",
    unit: str | None = "unit",
    default_quantity: str | None = None,
    default_unit: str | None = None,
) -> ObservationColumns:
    """Validate a DataFrame of observations and return it as numpy columns.

    Text times are parsed with their own offsets (``2025-12-01 00:00:00-08:00`` stays 08:00 UTC);
    rows whose time has no offset are rejected rather than guessed. Every problem found is
    reported together, naming the spreadsheet row (header = row 1) and the column.

    Parameters
    ----------
    frame
        One row per observation.
    sensor, quantity, time, value, unit
        Column names. ``quantity``/``unit`` may be ``None`` when ``default_quantity`` /
        ``default_unit`` give one value for every row.
    """
    problems: list[Problem] = []
    needed = [sensor, time, value]
    if quantity is not None and default_quantity is None:
        needed.append(quantity)
    if unit is not None and default_unit is None:
        needed.append(unit)
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise ValidationError(
            [
                Problem(
                    f"required column is missing; columns present: {list(frame.columns)}", column=m
                )
                for m in missing
            ],
            "observation table is incomplete",
        )
    if default_quantity is None and quantity is None:
        raise ValidationError.single("give a `quantity` column or `default_quantity`")
    if default_unit is None and unit is None:
        raise ValidationError.single("give a `unit` column or `default_unit`")

    n_rows = len(frame)
    times = _parse_times(frame[time], column=time, problems=problems)
    values = pd.to_numeric(frame[value], errors="coerce").to_numpy(dtype=float)
    bad_values = np.flatnonzero(~np.isfinite(values))
    for index in bad_values[:50]:
        problems.append(
            Problem(
                "value must be a finite number",
                row=int(index) + 2,
                column=value,
                value=frame[value].iloc[index],
            )
        )
    sensors = frame[sensor].astype("string")
    for index in np.flatnonzero(
        sensors.isna().to_numpy() | (sensors.str.len() == 0).fillna(True).to_numpy()
    )[:50]:
        problems.append(Problem("sensor id must not be empty", row=int(index) + 2, column=sensor))
    raise_if_problems(problems, "invalid observations")

    quantities = (
        np.full(n_rows, default_quantity, dtype=object)
        if default_quantity is not None
        else frame[quantity].astype(str).to_numpy(dtype=object)
    )
    units = (
        np.full(n_rows, default_unit, dtype=object)
        if default_unit is not None
        else frame[unit].astype(str).to_numpy(dtype=object)
    )
    return ObservationColumns(
        sensor=sensors.astype(str).to_numpy(dtype=object),
        quantity=quantities,
        time_us=times,
        value=values,
        unit=units,
    )


_OFFSET_AT_END = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def _parse_times(raw: pd.Series, *, column: str, problems: list[Problem]) -> np.ndarray:
    """Epoch microseconds for a column of aware datetimes or ISO texts that carry an offset."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        utc = raw.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        return np.asarray(utc.astype("int64").to_numpy(), dtype=np.int64)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        problems.append(
            Problem(
                "times have no timezone; localise them (e.g. tz_localize) before detection",
                column=column,
            )
        )
        return np.zeros(len(raw), dtype=np.int64)
    text = raw.astype("string").str.strip()
    has_offset = text.str.contains(_OFFSET_AT_END, regex=True).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    unparsed = parsed.isna().to_numpy()
    for index in np.flatnonzero(unparsed | ~has_offset)[:50]:
        reason = (
            "time is not an ISO 8601 date-time"
            if unparsed[index]
            else "time has no UTC offset (e.g. +05:00); naive times are ambiguous"
        )
        problems.append(Problem(reason, row=int(index) + 2, column=column, value=raw.iloc[index]))
    return np.asarray(
        parsed.astype("datetime64[us, UTC]").astype("int64").to_numpy(copy=True), dtype=np.int64
    )
