"""Statistical anomaly detectors: a reading far from its stream's rolling median
(:class:`~.rules.RobustAnomalyRule`) and an hourly mean far from the same hour of past days or
weeks (:class:`~.rules.SeasonalAnomalyRule`), both scored as modified z-scores over the MAD."""

from __future__ import annotations

from bisect import bisect_left, insort

from .compiled import QuantityRules
from .model import US_PER_HOUR, Finding, FindingKind, format_epoch_us
from .rules import RobustAnomalyRule, SeasonalAnomalyRule
from .state import StreamState
from .stats import MAD_SCALE, median_mad, median_mad_of_sorted


def check_mad(
    stream: StreamState,
    rule: RobustAnomalyRule,
    compiled: QuantityRules,
    sensor: str,
    quantity: str,
    time_us: int,
    value: float,
    findings: list[Finding],
) -> None:
    """Test the reading against the rolling median/MAD of the stream's last readings, then
    add it to that window."""
    window = stream.window
    ordered = stream.window_sorted
    if len(window) >= rule.min_points:
        median, mad = median_mad_of_sorted(ordered)
        scale = max(mad, rule.min_mad)
        z = MAD_SCALE * (value - median) / scale
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


def check_seasonal(
    stream: StreamState,
    rule: SeasonalAnomalyRule,
    compiled: QuantityRules,
    sensor: str,
    quantity: str,
    hour: int,
    mean: float,
    offset_us: int,
    findings: list[Finding],
) -> None:
    """Test an hourly mean against the median/MAD of past means in the same local hour-of-day
    (and weekday) slot, then add it to that slot's history."""
    local_hour = hour + offset_us // US_PER_HOUR
    hour_of_day = local_hour % 24
    # 1970-01-01 was a Thursday: Monday = 0.
    weekday = (local_hour // 24 + 3) % 7
    slot = weekday * 24 + hour_of_day if rule.by_weekday else hour_of_day
    history = stream.seasonal.setdefault(slot, [])
    if len(history) >= rule.min_points:
        median, mad = median_mad(history)
        scale = max(mad, rule.min_mad)
        z = MAD_SCALE * (mean - median) / scale
        if abs(z) > rule.threshold:
            unit = compiled.unit or ""
            start = hour * US_PER_HOUR
            days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
            slot_text = (
                f"{days[weekday]} {hour_of_day:02d}h" if rule.by_weekday else f"{hour_of_day:02d}h"
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
