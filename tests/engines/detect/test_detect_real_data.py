"""Real AirData.kz PM2.5 data from Astana and Almaty (../shared/data/sensors, CC BY-NC 4.0:
read in place, never copied into the repository; see its SOURCE.md).

The Astana file holds station kgmt_9 saturating at the pipeline's 1000 µg/m³ cap from
2025-12-02 (134 readings), next to a real heating-season smog on the other stations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from conftest import shared_file  # tests/conftest.py (pytest puts tests/ on sys.path)
from qala.engines.detect import (
    FindingKind,
    Observation,
    RobustAnomalyRule,
    RuleSet,
    SaturationRule,
    SilenceRule,
    StreamingEvaluator,
    StuckRule,
    ThresholdRule,
    air_quality_rules,
    columns_from_frame,
    evaluate_frame,
    findings_to_frame,
    hourly_means,
)
from qala.engines.detect.rules import ADVISORY_STEPS

pytestmark = pytest.mark.shared

ASTANA = "sensors/airdatakz_astana_pm25_hourly_2025-12_2026-01.csv"
ALMATY = "sensors/airdatakz_almaty_pm25_daily.csv"
FIRST_SATURATED = pd.Timestamp("2025-12-02 14:19:05-08:00")


@pytest.fixture(scope="module")
def astana() -> pd.DataFrame:
    return pd.read_csv(shared_file(ASTANA))


@pytest.fixture(scope="module")
def astana_findings(astana: pd.DataFrame) -> pd.DataFrame:
    return evaluate_frame(
        astana,
        air_quality_rules(["pm25"]),
        sensor="station_id",
        time="datetime_utc",
        value="value_ugm3",
        quantity=None,
        unit=None,
        default_quantity="pm25",
        default_unit="ug/m3",
    )


def test_offsets_are_honoured_not_assumed_utc(astana_findings: pd.DataFrame) -> None:
    saturated = astana_findings[astana_findings.rule_id == "fault.saturated"]
    # "2025-12-02 14:19:05-08:00" is 22:19:05 UTC, not 14:19:05.
    assert saturated.start.min() == datetime(2025, 12, 2, 22, 19, 5, tzinfo=UTC)


def test_every_capped_reading_of_kgmt_9_is_a_fault(
    astana: pd.DataFrame, astana_findings: pd.DataFrame
) -> None:
    capped = astana[astana.value_ugm3 == 1000.0]
    assert len(capped) == 134 and set(capped.station_id) == {"kgmt_9"}
    expected = set(pd.to_datetime(capped.datetime_utc, utc=True, format="ISO8601"))
    saturated = astana_findings[astana_findings.rule_id == "fault.saturated"]
    assert set(saturated.sensor) == {"kgmt_9"}
    assert set(saturated.start) == expected
    assert (saturated.kind == "fault").all()


def test_saturated_sensor_is_not_a_pollution_episode(astana_findings: pd.DataFrame) -> None:
    after = astana_findings[astana_findings.start >= FIRST_SATURATED]
    kgmt_9 = after[after.sensor == "kgmt_9"]
    # Nothing of kgmt_9 after its first capped reading counts as pollution ...
    assert not kgmt_9.kind.isin(["exceedance"]).any()
    assert not (kgmt_9.rule_id == "episode.pm25").any()
    # ... nor joins a network episode ...
    network = after[after.rule_id == "episode.network.pm25"]
    assert not network.explanation.str.contains("kgmt_9").any()
    # ... and no pollution finding anywhere carries a capped value.
    pollution = astana_findings[astana_findings.kind.isin(["exceedance", "episode"])]
    assert pollution.value.max() < 1000.0
    # The sensor is quarantined (its 333.33 = mean(1000, 0, 0) readings are contaminated) and
    # still quarantined when it stops reporting in January.
    quarantine = astana_findings[
        (astana_findings.sensor == "kgmt_9")
        & astana_findings.rule_id.str.startswith("fault.quarantine")
    ]
    assert quarantine.rule_id.iloc[0] == "fault.quarantine"
    assert quarantine.start.iloc[0] < pd.Timestamp("2025-12-03", tz="UTC")
    assert quarantine.rule_id.iloc[-1] == "fault.quarantine"  # last event opens, none releases
    assert quarantine.start.iloc[-1] < pd.Timestamp("2025-12-25", tz="UTC")


def _daily_means_oracle(astana: pd.DataFrame) -> pd.DataFrame:
    """Local (UTC+5) daily means of clock-hour means with ≥ 18 hours, computed with pandas."""
    table = astana.assign(time=pd.to_datetime(astana.datetime_utc, utc=True, format="ISO8601"))
    table = table[(table.value_ugm3 < 1000.0) & (table.station_id != "kgmt_9")]
    hourly = table.groupby(["station_id", table.time.dt.floor("h")]).value_ugm3.mean().reset_index()
    local = hourly.time + pd.Timedelta(hours=5)
    hourly["day_start"] = local.dt.floor("D") - pd.Timedelta(hours=5)
    daily = (
        hourly.groupby(["station_id", "day_start"]).value_ugm3.agg(["mean", "size"]).reset_index()
    )
    return daily[daily["size"] >= 18]


def test_daily_exceedances_match_an_independent_pandas_computation(
    astana: pd.DataFrame, astana_findings: pd.DataFrame
) -> None:
    daily = _daily_means_oracle(astana)
    for rule_id, limit in (("norm.kz-dsm70.pm25.day", 35.0), ("norm.who-aqg-2021.pm25.day", 15.0)):
        expected = daily[daily["mean"] > limit]
        found = astana_findings[
            (astana_findings.rule_id == rule_id) & (astana_findings.sensor != "kgmt_9")
        ]
        assert sorted(zip(found.sensor, found.start, strict=True)) == sorted(
            zip(expected.station_id, expected.day_start, strict=True)
        )
        merged = found.merge(
            expected, left_on=["sensor", "start"], right_on=["station_id", "day_start"]
        )
        assert merged.value.to_numpy() == pytest.approx(merged["mean"].to_numpy())


def test_heating_season_smog_is_flagged_as_exceedances_and_episodes(
    astana: pd.DataFrame, astana_findings: pd.DataFrame
) -> None:
    # SOURCE.md's "December mean ≈ 100 µg/m³" is the raw mean of the December rows, and the
    # stuck sensor's 1000s inflate it: without them the rows average 47.
    december = astana[astana.datetime_utc.str.startswith("2025-12")]
    assert december.value_ugm3.mean() == pytest.approx(99.59, abs=0.01)
    assert december[december.value_ugm3 < 1000].value_ugm3.mean() == pytest.approx(47.17, abs=0.01)
    # After the fault is removed the smog is still real: the daily means of the smoggy stations
    # (all but kgmt_14, which sits in cleaner air at 7 µg/m³) average 86 µg/m³ in December,
    # 5.7× WHO's 24-hour guideline, and every one of those days is flagged.
    daily = _daily_means_oracle(astana)
    smoggy = daily[daily.station_id != "kgmt_14"]
    smoggy_december = smoggy[(smoggy.day_start + pd.Timedelta(hours=5)).dt.month == 12]
    assert smoggy_december["mean"].mean() == pytest.approx(85.95, abs=0.01)
    who = astana_findings[astana_findings.rule_id == "norm.who-aqg-2021.pm25.day"]
    who_december = who[
        ~who.sensor.isin(["kgmt_14", "kgmt_9"])
        & ((who.start + pd.Timedelta(hours=5)).dt.month == 12)
    ]
    assert len(who_december) == len(smoggy_december) == 37
    assert who_december.value.mean() == pytest.approx(85.95, abs=0.01)
    # Station episodes open on kgmt_12 and all four OpenAQ stations ...
    episodes = astana_findings[astana_findings.rule_id == "episode.pm25"]
    assert {"kgmt_12", "oaq_14969424", "oaq_14969429", "oaq_14971240", "oaq_15151744"} <= set(
        episodes.sensor
    )
    assert (episodes.kind == "episode").all()
    # ... and stations agree: network episodes from late December on, of at least a day.
    network = astana_findings[astana_findings.rule_id == "episode.network.pm25:end"]
    long_ones = network[(network.end - network.start) >= pd.Timedelta(hours=24)]
    assert len(long_ones) >= 5
    assert long_ones.start.min() < pd.Timestamp("2025-12-31", tz="UTC")


def test_almaty_daily_series() -> None:
    """The Almaty file has one city-wide daily mean per day (days grouped in US-Pacific time)."""
    frame = pd.read_csv(shared_file(ALMATY))
    frame["time"] = pd.to_datetime(frame.date).dt.tz_localize("America/Los_Angeles")
    frame["sensor"] = "almaty"
    rules = RuleSet(
        (
            # Each reading *is* a daily mean, so the daily limits apply reading by reading.
            ThresholdRule(
                "kz-day", "pm25", "instant", "ug/m3", high=35.0, citation="ҚР ДСМ-70 daily"
            ),
            ThresholdRule(
                "who-day",
                "pm25",
                "instant",
                "ug/m3",
                high=15.0,
                citation="WHO 2021",
                steps=ADVISORY_STEPS,
            ),
            SaturationRule(cap=1000.0, floor=0.0, unit="ug/m3"),
            StuckRule(),
            RobustAnomalyRule(window=60, min_points=30, threshold=5.0),
            SilenceRule(factor=3.0, min_gap_s=2 * 86_400),
        ),
        units={"pm25": "ug/m3"},
    )
    findings = evaluate_frame(
        frame,
        rules,
        quantity=None,
        unit=None,
        value="value_ugm3",
        default_quantity="pm25",
        default_unit="ug/m3",
    )
    counts = findings.rule_id.value_counts()
    assert counts["kz-day"] == (frame.value_ugm3 > 35.0).sum()
    assert counts["who-day"] == (frame.value_ugm3 > 15.0).sum()
    assert "fault.saturated" not in counts and "fault.stuck" not in counts
    # Two four-day gaps in nine years of daily data.
    gaps = pd.to_datetime(frame.date).diff().dt.days
    silent = findings[findings.kind == str(FindingKind.SILENCE)]
    assert len(silent) == (gaps > 3).sum() == 2
    assert list(silent.value) == [96.0, 96.0]  # hours
    # Advisory steps: 5× the WHO guideline (75 µg/m³, WHO interim target 1) warns, less informs.
    who = findings[findings.rule_id == "who-day"]
    assert (who.severity == "warning").sum() == (frame.value_ugm3 >= 75.0).sum()
    assert (who.severity == "info").sum() == (
        (frame.value_ugm3 > 15.0) & (frame.value_ugm3 < 75.0)
    ).sum()


def test_streaming_replay_with_restart_and_redelivery_equals_batch(
    astana: pd.DataFrame, astana_findings: pd.DataFrame
) -> None:
    """What ingestion will do: messages interleaved across stations (up to 30 min late), every
    tenth one delivered again, and a restart from the saved state half-way through."""
    rules = air_quality_rules(["pm25"])
    columns = columns_from_frame(
        astana,
        sensor="station_id",
        time="datetime_utc",
        value="value_ugm3",
        quantity=None,
        unit=None,
        default_quantity="pm25",
        default_unit="ug/m3",
    )
    observations = [
        Observation(s, q, t, v, u)
        for s, q, t, v, u in zip(
            columns.sensor.tolist(),
            columns.quantity.tolist(),
            columns.time_us.tolist(),
            columns.value.tolist(),
            columns.unit.tolist(),
            strict=True,
        )
    ]
    rng = np.random.default_rng(6)
    delay = rng.integers(0, 30 * 60_000_000, len(observations))
    by_sensor: dict[str, list[int]] = {}
    for index in np.argsort([o.time_us for o in observations], kind="stable"):
        by_sensor.setdefault(observations[index].sensor, []).append(int(index))
    slots = []
    for indices in by_sensor.values():  # arrival keys handed out in time order per station
        keys = sorted(observations[i].time_us + int(delay[i]) for i in indices)
        slots += list(zip(keys, indices, strict=True))
    order = [observations[i] for _, i in sorted(slots)]
    order = [o for k, o in enumerate(order) for _ in range(2 if k % 10 == 0 else 1)]

    half = len(order) // 2
    first = StreamingEvaluator(rules)
    findings = first.feed_many(order[:half])
    second = StreamingEvaluator.from_state(rules, json.loads(json.dumps(first.state())))
    findings += second.feed_many(order[half:]) + second.flush()

    streamed = findings_to_frame(findings)
    key = ["rule_id", "sensor", "start", "end", "value", "explanation"]
    assert (
        streamed.sort_values(key)[key]
        .reset_index(drop=True)
        .equals(astana_findings.sort_values(key)[key].reset_index(drop=True))
    )
    assert second.ignored == len(order) - len(observations) - first.ignored


def test_hourly_means_leave_out_faults_and_give_the_share_of_hours_within_norms(
    astana: pd.DataFrame,
) -> None:
    columns = columns_from_frame(
        astana,
        sensor="station_id",
        time="datetime_utc",
        value="value_ugm3",
        quantity=None,
        unit=None,
        default_quantity="pm25",
        default_unit="ug/m3",
    )
    hours = hourly_means(columns, air_quality_rules(["pm25"]))
    assert hours["mean"].max() < 1000.0
    # Stations without faults: the engine's hourly means equal pandas' clock-hour means.
    table = astana.assign(
        hour=pd.to_datetime(astana.datetime_utc, utc=True, format="ISO8601").dt.floor("h")
    )
    clean = table[table.station_id.str.startswith("oaq_")]
    expected = clean.groupby(["station_id", "hour"]).value_ugm3.mean()
    ours = hours[hours.sensor.str.startswith("oaq_")].set_index(["sensor", "hour"])["mean"]
    assert len(ours) == len(expected)
    assert ours.to_numpy() == pytest.approx(expected.to_numpy())
    # Share of station-hours within the Kazakh daily ПДК level, an indicator for the catalogue:
    # on the fault-free stations it equals the pandas figure.
    assert float((ours <= 35.0).mean()) == pytest.approx(float((expected <= 35.0).mean()))
    # kgmt_9 keeps only its trustworthy hours: 190 of the 477 clock hours with a reading below
    # the cap (the rest fall in quarantine).
    raw_hours = table[(table.station_id == "kgmt_9") & (table.value_ugm3 < 1000)].hour.nunique()
    assert raw_hours == 477
    assert (hours.sensor == "kgmt_9").sum() == 190
