"""The evaluator's state: one record per ``(sensor, quantity)`` stream, one per group's hour table.

Plain data only, so :meth:`StreamingEvaluator.state` can hand it to a store as JSON. Hour tables
(groups of sensors, and each sensor's substances for the summation rules) collect hourly sums per
key and are evaluated once the table's time has passed an hour by the allowed lateness.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .model import US_PER_HOUR


class StreamState:
    """Everything remembered about one ``(sensor, quantity)`` stream. Plain data only."""

    __slots__ = (
        "clean_run",
        "cold_json",
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
        # Derived, not saved: the JSON text of the fields that change only when an hour closes
        # (hourly means, seasonal profile) — most of a record's numbers — kept for to_json()
        # until then. Whoever changes those fields sets it to None (``hour_closed``).
        self.cold_json: str | None = None

    def hour_closed(self) -> None:
        """The hourly means or the seasonal profile are about to change."""
        self.cold_json = None

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _SAVED}
        data["seasonal"] = {str(k): list(v) for k, v in self.seasonal.items()}
        data["gaps"] = list(self.gaps)
        data["recent_faults"] = list(self.recent_faults)
        data["window"] = list(self.window)
        data["hourly"] = [list(x) for x in self.hourly]
        for name in ("hour_max", "day_max"):
            if data[name] == -math.inf:
                data[name] = None
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (the same object; fields in another order). A record is
        rewritten with every reading of its stream: the cold part is encoded once per hour."""
        cold = self.cold_json
        if cold is None:
            cold = json.dumps(
                {
                    "hourly": self.hourly,
                    "seasonal": {str(k): v for k, v in self.seasonal.items()},
                }
            )[1:-1]
            self.cold_json = cold
        hot = {name: getattr(self, name) for name in _HOT}
        for name in ("hour_max", "day_max"):
            if hot[name] == -math.inf:
                hot[name] = None
        return f"{json.dumps(hot)[:-1]}, {cold}}}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamState:
        state = cls()
        for name in _SAVED:
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


_SAVED = tuple(name for name in StreamState.__slots__ if name not in ("window_sorted", "cold_json"))
_HOT = tuple(name for name in _SAVED if name not in ("hourly", "seasonal"))


class GroupState:
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
    def from_dict(cls, data: Mapping[str, Any]) -> GroupState:
        state = cls()
        for name in cls.__slots__:
            if name in data:
                setattr(state, name, data[name])
        state.hours = {
            int(h): {s: list(v) for s, v in table.items()}
            for h, table in data.get("hours", {}).items()
        }
        return state


def add_to_table(
    table: GroupState, hour: int, key: str, value: float, time_us: int, lateness_us: int
) -> int | None:
    """Add ``value`` to the ``(hour, key)`` cell of an hour table (unless that hour was evaluated)
    and say through which hour the table is now due for evaluation.

    None while nothing new is due: the table's time did not advance, or the hours it lets
    through (those ended more than ``lateness_us`` before ``time_us``) are evaluated already.
    """
    evaluated = table.evaluated_through
    if evaluated is None or hour > evaluated:
        cells = table.hours.get(hour)
        if cells is None:
            cells = table.hours[hour] = {}
        cell = cells.get(key)
        if cell is None:
            cells[key] = [value, 1]
        else:
            cell[0] += value
            cell[1] += 1
    if table.max_time is not None and time_us <= table.max_time:
        return None
    table.max_time = time_us
    ready_through = (time_us - lateness_us) // US_PER_HOUR - 1
    if evaluated is None or ready_through > evaluated:
        return ready_through
    return None


def take_hours(table: GroupState, through: int | None) -> list[tuple[int, dict[str, list[float]]]]:
    """Remove and return, oldest first, the table's hours up to ``through`` (None: all), and
    advance its evaluated-through mark; readings for those hours arriving later are ignored."""
    ready = sorted(h for h in table.hours if through is None or h <= through)
    taken = [(hour, table.hours.pop(hour)) for hour in ready]
    reached = through if through is not None else (ready[-1] if ready else None)
    if reached is not None:
        table.evaluated_through = (
            reached if table.evaluated_through is None else max(table.evaluated_through, reached)
        )
    return taken
