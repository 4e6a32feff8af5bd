"""Pollution episodes: at one station (:class:`~.rules.EpisodeRule`, a rolling mean of hourly
means above the limit, with natural variation) and across a group of stations
(:class:`~.rules.NetworkEpisodeRule`, enough stations above the limit for hours in a row)."""

from __future__ import annotations

import math

from .compiled import QuantityRules
from .model import US_PER_HOUR, Finding, FindingKind, Severity
from .rules import EpisodeRule, NetworkEpisodeRule, severity_for
from .state import GroupState, StreamState
from .stats import median


def check_episode(
    stream: StreamState,
    rule: EpisodeRule,
    limit: float,
    compiled: QuantityRules,
    sensor: str,
    quantity: str,
    hour: int,
    findings: list[Finding],
) -> None:
    """Open, extend or close the station's episode with the hourly mean of ``hour``."""
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


def network_episode(
    group: GroupState,
    compiled: QuantityRules,
    group_id: str,
    quantity: str,
    hour: int,
    means: dict[str, float],
    findings: list[Finding],
) -> None:
    """Open, extend or close the group's network episode with the stations' means of ``hour``."""
    for rule, limit in compiled.network_episode:
        above = sorted(s for s, v in means.items() if v > limit)
        elevated = len(above) >= rule.min_sensors and len(above) >= rule.min_fraction * len(means)
        if group.last_hour is not None and hour > group.last_hour + 1 + rule.max_missing_hours:
            end_network_episode(
                group, rule, limit, compiled, group_id, quantity, group.last_hour, findings
            )
            group.run = 0
        group.last_hour = hour
        unit = compiled.unit or rule.unit
        if not elevated:
            end_network_episode(
                group, rule, limit, compiled, group_id, quantity, hour - 1, findings
            )
            group.run = 0
            continue
        group.run += 1
        level = median([means[s] for s in above])
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


def end_network_episode(
    group: GroupState,
    rule: NetworkEpisodeRule,
    limit: float,
    compiled: QuantityRules,
    group_id: str,
    quantity: str,
    last_elevated_hour: int,
    findings: list[Finding],
) -> None:
    """Close the group's open episode at ``last_elevated_hour``."""
    if not group.episode_open:
        return
    group.episode_open = False
    start = (
        group.episode_start if group.episode_start is not None else last_elevated_hour * US_PER_HOUR
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
