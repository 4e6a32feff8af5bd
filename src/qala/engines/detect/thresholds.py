"""Threshold rules (:class:`~.rules.ThresholdRule`): a reading, an hourly, 8-hour or daily mean
above (or below) a norm's limit."""

from __future__ import annotations

import math

from .compiled import Limit
from .model import US_PER_DAY, US_PER_HOUR, Finding, FindingKind, format_epoch_us
from .rules import severity_for


def check_limit(
    limit: Limit,
    sensor: str,
    quantity: str,
    start_us: int,
    end_us: int,
    value: float,
    findings: list[Finding],
    what: str,
    coverage: str = "",
) -> None:
    """An exceedance finding when ``value`` (a reading or a mean over start–end) breaks ``limit``."""
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


def check_eight_hour_mean(
    limits: list[Limit],
    sensor: str,
    quantity: str,
    hourly: list[list[float]],
    hour: int,
    findings: list[Finding],
) -> None:
    """The 8-hour limits against the mean of the hourly means ending with ``hour``."""
    end = (hour + 1) * US_PER_HOUR
    recent = [m for h, m in hourly if h > hour - 8]
    for limit in limits:
        if len(recent) >= math.ceil(limit.rule.min_coverage * 8):
            check_limit(
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


def check_daily_mean(
    limits: list[Limit],
    sensor: str,
    quantity: str,
    start: int,
    mean: float,
    hours: int,
    utc_offset_minutes: int,
    findings: list[Finding],
) -> None:
    """The daily limits against the mean of a local day's ``hours`` hourly means."""
    for limit in limits:
        if hours >= math.ceil(limit.rule.min_coverage * 24):
            check_limit(
                limit,
                sensor,
                quantity,
                start,
                start + US_PER_DAY,
                mean,
                findings,
                "daily mean",
                f"; {hours} of 24 hours, local day UTC{utc_offset_minutes / 60:+g}",
            )
