"""Missing data (:class:`~.rules.SilenceRule`): a stream quiet for much longer than its usual
interval between readings — found when the sensor speaks again, or by a periodic check."""

from __future__ import annotations

from .model import US_PER_HOUR, US_PER_SECOND, Finding, FindingKind, format_epoch_us
from .rules import SilenceRule
from .state import StreamState
from .stats import median


def silence_on_arrival(
    stream: StreamState,
    rule: SilenceRule,
    sensor: str,
    quantity: str,
    gap: int,
    time_us: int,
    findings: list[Finding],
) -> None:
    """A silence finding (phase end) when the gap this reading closes was too long for the stream."""
    if len(stream.gaps) < rule.min_history:
        return
    usual = median(stream.gaps)
    limit = max(rule.factor * usual, rule.min_gap_s * US_PER_SECOND)
    if gap > limit:
        assert stream.last_time is not None
        findings.append(
            silence_finding(
                rule, sensor, quantity, stream.last_time, time_us, usual, limit, ended=True
            )
        )


def silent_at(
    stream: StreamState, rule: SilenceRule, sensor: str, quantity: str, now: int
) -> Finding | None:
    """A silence finding (phase open) if the stream has been quiet too long at ``now``, once per
    silence: it marks the stream as alerted."""
    if stream.last_time is None or len(stream.gaps) < rule.min_history:
        return None
    if stream.silence_alerted == stream.last_time:
        return None
    usual = median(stream.gaps)
    limit = max(rule.factor * usual, rule.min_gap_s * US_PER_SECOND)
    if now - stream.last_time <= limit:
        return None
    stream.silence_alerted = stream.last_time
    return silence_finding(rule, sensor, quantity, stream.last_time, now, usual, limit, ended=False)


def silence_finding(
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
