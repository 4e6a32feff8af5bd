"""Each rule on a hand-made series, with the expected numbers worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from qala.core.errors import SpecificationError, ValidationError
from qala.engines.detect import (
    CrossSensorRule,
    EpisodeRule,
    Finding,
    FindingKind,
    NetworkEpisodeRule,
    Observation,
    QuarantineRule,
    RateOfChangeRule,
    RobustAnomalyRule,
    RuleSet,
    SaturationRule,
    SeasonalAnomalyRule,
    Severity,
    SilenceRule,
    StreamingEvaluator,
    StuckRule,
    SummationRule,
    ThresholdRule,
    heating_rules,
    load_norm_table,
    summation_rules_from_norms,
    threshold_rules_from_norms,
    to_epoch_us,
)

ALMATY = timezone(timedelta(hours=5))
START = datetime(2025, 12, 1, 0, 0, tzinfo=ALMATY)  # a Monday, local midnight


def at(hours: float = 0.0, minutes: float = 0.0) -> datetime:
    return START + timedelta(hours=hours, minutes=minutes)


def reading(
    value: float, when: datetime, sensor: str = "s1", quantity: str = "pm25", unit: str = "ug/m3"
) -> Observation:
    return Observation.at(sensor, quantity, when, value, unit)


def run(rules: RuleSet, observations: list[Observation], *, flush: bool = True) -> list[Finding]:
    evaluator = StreamingEvaluator(rules)
    findings = evaluator.feed_many(observations)
    if flush:
        findings += evaluator.flush()
    return findings


def only(*rules: object, units: dict[str, str] | None = None) -> RuleSet:
    return RuleSet(tuple(rules), units=units or {"pm25": "ug/m3", "o3": "ug/m3"})  # type: ignore[arg-type]


def by_rule(findings: list[Finding], prefix: str) -> list[Finding]:
    return [f for f in findings if f.rule_id.startswith(prefix)]


# ---- thresholds ------------------------------------------------------------------------------


def test_instant_limit_uses_kazakh_one_time_pdk_and_converts_mg_to_ug() -> None:
    rules = only(*threshold_rules_from_norms(load_norm_table("air_kz_dsm70").limits))
    findings = run(
        rules,
        [
            reading(0.15, at(0), unit="mg/m3"),  # 150 µg/m³: below 160
            reading(0.2, at(1), unit="mg/m3"),  # 200 µg/m³: 1.25×
            reading(900, at(2)),  # 5.625×: critical
        ],
    )
    instant = by_rule(findings, "norm.kz-dsm70.pm25.instant")
    assert [f.value for f in instant] == [pytest.approx(200.0), 900.0]
    assert [f.severity for f in instant] == [Severity.WARNING, Severity.CRITICAL]
    assert instant[0].threshold == 160.0
    assert instant[0].details["ratio"] == pytest.approx(1.25)
    assert "1.25×" in instant[0].explanation and "160" in instant[0].explanation


def test_daily_mean_is_a_local_calendar_day_of_hourly_means_with_coverage() -> None:
    rule = ThresholdRule("day35", "pm25", "day", "ug/m3", high=35.0, citation="test")
    # 12 hours at 30 and 12 at 50 on local 1 December: mean 40.
    day_one = [reading(30.0 if h < 12 else 50.0, at(h)) for h in range(24)]
    # 17 hours on 2 December: below 75 % coverage, no daily value.
    day_two = [reading(90.0, at(24 + h)) for h in range(17)]
    findings = by_rule(run(only(rule), day_one + day_two), "day35")
    assert len(findings) == 1
    assert findings[0].value == pytest.approx(40.0)
    assert findings[0].start == datetime(2025, 11, 30, 19, 0, tzinfo=UTC)
    assert findings[0].end == datetime(2025, 12, 1, 19, 0, tzinfo=UTC)
    assert "24 of 24 hours" in findings[0].explanation


def test_hourly_mean_averages_the_readings_of_a_clock_hour() -> None:
    rule = ThresholdRule("hour100", "pm25", "hour", "ug/m3", high=100.0)
    findings = run(
        only(rule),
        [reading(v, at(0, m)) for v, m in ((90, 0), (120, 20), (120, 40))] + [reading(5, at(1))],
    )
    assert [f.value for f in findings] == [pytest.approx(110.0)]
    assert findings[0].start == at(0) and findings[0].end == at(1)


def test_eight_hour_rolling_mean_needs_six_of_eight_hours() -> None:
    rule = ThresholdRule("o3-8h", "o3", "8h", "ug/m3", high=100.0)
    values = [80, 90, 100, 110, 120, 130, 140, 150]
    findings = run(only(rule), [reading(v, at(h), quantity="o3") for h, v in enumerate(values)])
    # After 6 hours: mean(80..130) = 105; after 7: 110; after 8: 115. Five hours are too few.
    assert [f.value for f in findings] == [
        pytest.approx(105.0),
        pytest.approx(110.0),
        pytest.approx(115.0),
    ]
    assert findings[-1].start == at(0) and findings[-1].end == at(8)


def test_range_rule_flags_both_sides() -> None:
    rule = ThresholdRule("ret", "return_temperature", "instant", "degC", low=35.0, high=70.0)
    findings = run(
        only(rule, units={"return_temperature": "degC"}),
        [
            reading(v, at(h), quantity="return_temperature", unit="degC")
            for h, v in enumerate((50, 75, 28))
        ],
    )
    assert [(f.value, f.details["side"]) for f in findings] == [(75.0, "above"), (28.0, "below")]
    assert findings[1].details["ratio"] == pytest.approx(35 / 28)


def test_threshold_rule_needs_a_bound_and_a_known_averaging() -> None:
    with pytest.raises(SpecificationError, match="give `high`"):
        ThresholdRule("x", "pm25", "day", "ug/m3")
    with pytest.raises(SpecificationError, match="averaging"):
        ThresholdRule("x", "pm25", "week", "ug/m3", high=1.0)


# ---- faults --------------------------------------------------------------------------------


def test_saturated_reading_is_a_fault_and_stays_out_of_the_hourly_mean() -> None:
    rules = only(
        SaturationRule(cap=1000.0, floor=0.0, unit="ug/m3"),
        ThresholdRule("hour35", "pm25", "hour", "ug/m3", high=35.0),
    )
    findings = run(
        rules,
        [reading(20, at(0)), reading(1000, at(0, 20)), reading(30, at(0, 40)), reading(-1, at(1))],
    )
    assert [(f.rule_id, f.kind, f.value) for f in findings] == [
        ("fault.saturated", FindingKind.FAULT, 1000.0),
        ("fault.out_of_range", FindingKind.FAULT, -1.0),
    ]  # the hourly mean is (20 + 30) / 2 = 25: no exceedance


def test_flat_line_is_stuck_after_eight_repeats_and_zero_after_three() -> None:
    rules = only(StuckRule(repeats=8, zero_repeats=3))
    series = [5.0] * 9 + [0.0] * 3
    findings = run(rules, [reading(v, at(h)) for h, v in enumerate(series)])
    assert [(f.start, f.details["repeats"]) for f in findings] == [
        (at(7), 8),
        (at(8), 9),
        (at(11), 3),
    ]


def test_quarantine_suppresses_contaminated_readings_until_clean_run() -> None:
    rules = only(
        SaturationRule(cap=1000.0, unit="ug/m3"),
        QuarantineRule(faults=2, window=24, release_after=3),
        ThresholdRule("inst160", "pm25", "instant", "ug/m3", high=160.0),
    )
    series = [10, 1000, 1000, 333.33, 10, 10, 200]
    findings = run(rules, [reading(v, at(h)) for h, v in enumerate(series)])
    assert [(f.rule_id, f.start) for f in findings] == [
        ("fault.saturated", at(1)),
        ("fault.saturated", at(2)),
        ("fault.quarantine", at(2)),
        ("fault.quarantine:end", at(5)),
        ("inst160", at(6)),
    ]  # 333.33 (= mean of 1000, 0, 0) is not reported as an exceedance


# ---- anomalies -----------------------------------------------------------------------------


def test_rate_of_change_between_valid_readings() -> None:
    rules = only(RateOfChangeRule("pm25", max_per_hour=50.0, unit="ug/m3"))
    findings = run(rules, [reading(10, at(0)), reading(80, at(1)), reading(85, at(1, 30))])
    assert [f.value for f in findings] == [pytest.approx(70.0)]
    assert findings[0].start == at(0) and findings[0].end == at(1)


def test_mad_z_score_against_rolling_median() -> None:
    rules = only(RobustAnomalyRule(window=48, min_points=12, threshold=3.5, min_mad=1.0))
    history = [10, 12, 11, 13] * 3  # median 11.5, MAD 1.0
    series = [*history, 16.0, 20.0]
    findings = run(rules, [reading(v, at(h)) for h, v in enumerate(series)])
    # 16: z = 0.6745 × 4.5 = 3.04 (not flagged); 20 against 13 values (median 12, MAD 1):
    # z = 0.6745 × 8 / 1 = 5.40.
    assert len(findings) == 1
    assert findings[0].value == 20.0
    assert findings[0].details["median"] == pytest.approx(12.0)
    assert findings[0].details["z"] == pytest.approx(0.6745 * 8.0)


def test_seasonal_baseline_by_hour_of_day_and_weekday() -> None:
    rules = only(SeasonalAnomalyRule(history=6, min_points=3, threshold=3.5, min_mad=1.0))
    observations = []
    for week in range(4):
        for hour in range(24 * 7):
            value = 10.0 + hour % 24 + 0.3 * week
            if week == 3 and hour == 8:  # Monday 08:00 local, fourth week
                value = 30.0
            observations.append(reading(value, at(week * 24 * 7 + hour)))
    findings = run(rules, observations)
    assert len(findings) == 1
    (finding,) = findings
    assert finding.start == at(3 * 24 * 7 + 8)
    assert finding.details["median"] == pytest.approx(18.3)
    assert finding.details["z"] == pytest.approx(0.6745 * (30.0 - 18.3))
    assert "Mon 08h" in finding.explanation


def test_silence_on_arrival_and_live_check_share_a_key() -> None:
    rules = only(SilenceRule(factor=3.0, history=16, min_history=4, min_gap_s=600))
    evaluator = StreamingEvaluator(rules)
    for k in range(6):  # every 10 minutes: five gaps of 10 min
        assert evaluator.feed(reading(5.0, at(0, 10 * k))) == []
    last = to_epoch_us(at(0, 50))
    assert evaluator.check_silence(last + 25 * 60_000_000) == []  # 25 min < 3 × 10 min
    live = evaluator.check_silence(last + 31 * 60_000_000)
    assert [f.kind for f in live] == [FindingKind.SILENCE]
    assert evaluator.check_silence(last + 40 * 60_000_000) == []  # reported once per silence
    ended = evaluator.feed(reading(5.0, at(1, 50)))
    assert len(ended) == 1 and ended[0].key == live[0].key
    assert ended[0].value == pytest.approx(1.0)  # hours


# ---- episodes and neighbours ---------------------------------------------------------------


def test_episode_needs_sustained_values_with_natural_variance() -> None:
    rule = EpisodeRule("pm25", limit=35.0, unit="ug/m3", window_hours=24, min_coverage=0.75)
    varied = [60.0 if h % 2 else 80.0 for h in range(24)] + [10.0] * 20
    findings = run(only(rule), [reading(v, at(h)) for h, v in enumerate(varied)])
    assert [f.rule_id for f in findings] == ["episode", "episode:end"]
    opened, closed = findings
    # First evaluable window: 18 hours (75 % of 24) with mean 70 — 2× the limit.
    assert opened.end == at(18) and opened.value == pytest.approx(70.0)
    assert opened.severity == Severity.MAJOR
    # Closes when the 24-hour mean falls to 35: after 14 low hours, (10 × 70 + 14 × 10) / 24 = 35.
    assert closed.end == at(24 + 14)

    flat = run(only(rule), [reading(70.0, at(h)) for h in range(30)])
    assert flat == []  # a flat line above the limit is not an episode


def test_network_episode_when_stations_agree() -> None:
    rules = RuleSet(
        (
            NetworkEpisodeRule(
                "pm25", limit=35.0, unit="ug/m3", min_sensors=2, min_fraction=0.5, min_hours=3
            ),
        ),
        units={"pm25": "ug/m3"},
    )
    observations = []
    for hour in range(8):
        high = 50.0 if hour < 5 else 10.0
        observations += [
            reading(high, at(hour), "a"),
            reading(high, at(hour), "b"),
            reading(10.0, at(hour), "c"),
        ]
    findings = run(rules, observations)
    assert [(f.rule_id, f.sensor, f.start, f.end) for f in findings] == [
        ("episode.network", "all", at(0), at(3)),
        ("episode.network:end", "all", at(0), at(5)),
    ]
    assert findings[0].details["sensors"] == ["a", "b"]


def test_network_episode_bridges_short_data_gaps_but_not_clean_hours() -> None:
    rules = RuleSet(
        (NetworkEpisodeRule("pm25", limit=35.0, unit="ug/m3", min_hours=3, max_missing_hours=2),),
        units={"pm25": "ug/m3"},
    )
    levels = {
        0: 50.0,
        1: 50.0,
        2: 50.0,
        5: 50.0,
        6: 10.0,
        7: 10.0,
        8: 10.0,
        9: 10.0,
    }  # 3, 4 missing
    observations = [reading(v, at(h), s) for h, v in levels.items() for s in ("a", "b")]
    findings = run(rules, observations)
    assert [(f.rule_id, f.start, f.end) for f in findings] == [
        ("episode.network", at(0), at(3)),
        ("episode.network:end", at(0), at(6)),  # hours 3–4 had no data; hour 6 is clean
    ]


def test_station_far_from_neighbours_median() -> None:
    rules = RuleSet(
        (CrossSensorRule("pm25", "ug/m3", min_neighbours=2, abs_tolerance=25.0),),
        units={"pm25": "ug/m3"},
    )
    observations = [reading(20, at(0), "a"), reading(22, at(0), "b"), reading(100, at(0), "c")]
    findings = run(rules, observations)
    assert [(f.sensor, f.details["neighbour_median"]) for f in findings] == [("c", 21.0)]


def test_groups_keep_networks_apart() -> None:
    rules = RuleSet((CrossSensorRule("pm25", "ug/m3", min_neighbours=2),), units={"pm25": "ug/m3"})
    evaluator = StreamingEvaluator(rules, groups={"a": "north", "b": "north", "c": "south"})
    evaluator.feed_many(
        [reading(20, at(0), "a"), reading(22, at(0), "b"), reading(100, at(0), "c")]
    )
    assert evaluator.flush() == []  # nobody has two neighbours in its own group


# ---- heating -------------------------------------------------------------------------------


def test_heating_supply_against_schedule_and_ranges() -> None:
    rules = heating_rules()
    observations = [
        reading(-10.0, at(0), "weather", "outdoor_temperature", "degC"),
        reading(100.0, at(0, 5), "chp1", "supply_temperature", "degC"),  # schedule 110 ± 3.3
        reading(111.0, at(1, 5), "chp1", "supply_temperature", "degC"),  # +11 °C in 1 h: not a jump
        reading(75.0, at(0, 10), "sub7", "return_temperature", "degC"),
        reading(1.8, at(0, 10), "chp1", "supply_pressure", "MPa"),
        reading(500.0, at(0, 15), "chp1", "supply_pressure", "kPa"),  # 0.5 MPa, fine
    ]
    findings = run(rules, observations)
    summary = [(f.rule_id, f.sensor, f.value) for f in findings]
    assert summary == [
        ("heating.schedule", "chp1", 100.0),
        ("heating.range.return_temperature", "sub7", 75.0),
        ("heating.range.supply_pressure", "chp1", 1.8),
    ]
    assert findings[0].details["expected"] == pytest.approx(110.0)
    assert "under-heating" in findings[0].explanation


# ---- input checks --------------------------------------------------------------------------


def test_naive_times_and_bad_state_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Observation.at("s1", "pm25", "2025-12-01 08:00", 1.0, "ug/m3")
    with pytest.raises(ValidationError, match="version"):
        StreamingEvaluator.from_state(only(), {"version": 99})
    with pytest.raises(ValidationError, match="cannot convert"):
        run(
            only(ThresholdRule("x", "pm25", "instant", "ug/m3", high=1.0)),
            [reading(1.0, at(0), unit="degC")],
        )


def test_streams_are_per_sensor_and_quantity_and_units_may_change() -> None:
    rules = only(
        ThresholdRule("pm25-day", "pm25", "day", "ug/m3", high=35.0),
        ThresholdRule("pm10-inst", "pm10", "instant", "ug/m3", high=300.0),
        units={"pm25": "ug/m3", "pm10": "ug/m3"},
    )
    observations = []
    for hour in range(24):
        # The station switches from mg/m³ to µg/m³ at noon; the daily mean is still 40 µg/m³.
        observations.append(
            reading(0.04 if hour < 12 else 40.0, at(hour), unit="mg/m3" if hour < 12 else "ug/m3")
        )
        # Same station, same times, another quantity: not a duplicate.
        observations.append(reading(310.0 if hour == 5 else 50.0, at(hour), quantity="pm10"))
    findings = run(rules, observations)
    assert [(f.rule_id, f.start) for f in findings] == [("pm10-inst", at(5)), ("pm25-day", at(0))]
    assert findings[1].value == pytest.approx(40.0)


def test_daily_windows_follow_the_local_offset() -> None:
    rule = ThresholdRule("day35", "pm25", "day", "ug/m3", high=35.0)
    # Local 1 December (UTC+5) runs from 19:00 UTC on 30 November: 24 readings at 100 µg/m³
    # from 19:00 UTC, then clean air. With an offset of 0 the same readings straddle two UTC days.
    start = datetime(2025, 11, 30, 19, 0, tzinfo=UTC)
    observations = [
        reading(100.0 if h < 24 else 1.0, start + timedelta(hours=h)) for h in range(48)
    ]
    local = run(RuleSet((rule,), utc_offset_minutes=300, units={"pm25": "ug/m3"}), observations)
    assert [(f.start, f.value) for f in local] == [(start, pytest.approx(100.0))]
    utc = run(RuleSet((rule,), utc_offset_minutes=0, units={"pm25": "ug/m3"}), observations)
    # UTC 1 December: 19 hours at 100 and 5 at 1 → 79.375; UTC 30 November has only 5 hours.
    assert [(f.start, f.value) for f in utc] == [
        (datetime(2025, 12, 1, tzinfo=UTC), pytest.approx((19 * 100 + 5 * 1) / 24))
    ]


def test_summation_of_no2_and_so2_in_shares_of_the_one_time_pdk() -> None:
    table = load_norm_table("air_kz_dsm70")
    (rule,) = summation_rules_from_norms(table, ["no2", "so2"])
    assert (
        rule.quantities == ("no2", "so2")
        and rule.limits == (200.0, 500.0)
        and rule.dominance == 0.8
    )
    rules = only(rule, units={"no2": "ug/m3", "so2": "ug/m3"})
    observations = []
    for hour, (no2, so2) in enumerate(
        [(120.0, 300.0), (180.0, 100.0), (100.0, 200.0), (150.0, None)]
    ):
        observations.append(reading(no2, at(hour), "post1", "no2"))
        if so2 is not None:
            observations.append(reading(so2 / 1000, at(hour, 5), "post1", "so2", "mg/m3"))
    findings = run(rules, observations)
    # Hour 0: 120/200 + 300/500 = 0.6 + 0.6 = 1.2 > 1, shares 50 %: exceedance.
    # Hour 1: 0.9 + 0.2 = 1.1 but NO2 is 82 % of it (> 80 %): its own limit applies, not the sum.
    # Hour 2: 0.5 + 0.4 = 0.9 ≤ 1. Hour 3: SO2 missing, nothing to add up.
    assert [(f.start, f.value, f.severity, f.quantity) for f in findings] == [
        (at(0), pytest.approx(1.2), Severity.WARNING, "no2+so2")
    ]
    assert "no2 0.60 + so2 0.60 = 1.20" in findings[0].explanation
    with pytest.raises(SpecificationError, match="two quantities"):
        SummationRule(("no2",), (200.0,), "ug/m3")


def test_episode_window_longer_than_a_day() -> None:
    rule = EpisodeRule("pm25", limit=35.0, unit="ug/m3", window_hours=48, min_coverage=0.75)
    series = [60.0 if h % 2 else 80.0 for h in range(40)]
    findings = run(only(rule), [reading(v, at(h)) for h, v in enumerate(series)])
    # 75 % of 48 hours = 36 hourly means are needed before the first evaluation.
    assert [(f.rule_id, f.end, f.details["hours"]) for f in findings] == [("episode", at(36), 36)]


def test_live_silence_alert_survives_a_restart() -> None:
    rules = only(SilenceRule(factor=3.0, min_history=4, min_gap_s=600))
    evaluator = StreamingEvaluator(rules)
    evaluator.feed_many([reading(5.0, at(0, 10 * k)) for k in range(6)])
    now = to_epoch_us(at(2))
    assert len(evaluator.check_silence(now)) == 1
    restored = StreamingEvaluator.from_state(rules, json.loads(json.dumps(evaluator.state())))
    assert restored.check_silence(now + 60_000_000) == []  # already reported before the restart
