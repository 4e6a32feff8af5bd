"""Norm tables, bands, units, input validation and the small numeric helpers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from qala.core.errors import SpecificationError, ValidationError
from qala.engines.detect import (
    Observation,
    RuleSet,
    Severity,
    StreamingEvaluator,
    StuckRule,
    ThresholdRule,
    air_quality_rules,
    band_of,
    columns_from_frame,
    conversion_factor,
    load_heating_norms,
    load_norm_table,
    normalise_unit,
    severity_for,
)
from qala.engines.detect.rules import ADVISORY_STEPS, LEGAL_STEPS
from qala.engines.detect.stats import median_mad_of_sorted, median_without


def limits_of(name: str) -> dict[tuple[str, str], float]:
    return {(x.quantity, x.averaging): x.value for x in load_norm_table(name).limits}


def test_kazakh_pdk_table() -> None:
    table = load_norm_table("air_kz_dsm70")
    assert "ҚР ДСМ-70" in table.document and table.legal_force == "binding"
    assert table.status.startswith("secondary")  # says honestly how far values were checked
    assert limits_of("air_kz_dsm70") == {
        ("pm25", "instant"): 160,
        ("pm25", "day"): 35,
        ("pm10", "instant"): 300,
        ("pm10", "day"): 60,
        ("no2", "instant"): 200,
        ("no2", "day"): 40,
        ("so2", "instant"): 500,
        ("so2", "day"): 50,
        ("co", "instant"): 5000,
        ("co", "day"): 3000,
        ("o3", "instant"): 160,
        ("o3", "day"): 30,
    }


def test_who_2021_guidelines() -> None:
    assert limits_of("air_who_2021") == {
        ("pm25", "day"): 15,
        ("pm25", "year"): 5,
        ("pm10", "day"): 45,
        ("pm10", "year"): 15,
        ("no2", "day"): 25,
        ("no2", "year"): 10,
        ("o3", "8h"): 100,
        ("so2", "day"): 40,
        ("co", "day"): 4000,  # 4 mg/m³
    }
    assert load_norm_table("air_who_2021").legal_force == "advisory"
    with pytest.raises(SpecificationError, match="no 8h limit for `pm25`"):
        load_norm_table("air_who_2021").limit("pm25", "8h")


def test_air_quality_rules_use_both_tables_but_not_annual_limits() -> None:
    rules = air_quality_rules(["pm25"])
    thresholds = sorted(r.rule_id for r in rules.rules if isinstance(r, ThresholdRule))
    assert thresholds == [
        "norm.kz-dsm70.pm25.day",
        "norm.kz-dsm70.pm25.instant",
        "norm.who-aqg-2021.pm25.day",
    ]
    who = next(
        r for r in rules.rules if isinstance(r, ThresholdRule) and r.rule_id.startswith("norm.who")
    )
    assert who.steps == ADVISORY_STEPS


@pytest.mark.parametrize(
    ("value", "scale", "averaging", "band"),
    [
        (14.9, "who-2021-interim-targets", "day", "within-guideline"),
        (15.0, "who-2021-interim-targets", "day", "above-guideline"),
        (37.5, "who-2021-interim-targets", "day", "above-IT3"),
        (80.0, "who-2021-interim-targets", "day", "above-IT1"),
        (9.0, "us-epa-aqi-pm25-2024", "day", "good"),
        (9.1, "us-epa-aqi-pm25-2024", "day", "moderate"),
        (35.4, "us-epa-aqi-pm25-2024", "day", "moderate"),
        (35.5, "us-epa-aqi-pm25-2024", "day", "unhealthy-for-sensitive-groups"),
        (230.0, "us-epa-aqi-pm25-2024", "day", "hazardous"),
        (0.8, "kz-standard-index", "instant", "low"),
        (6.2, "kz-standard-index", "instant", "high"),
    ],
)
def test_bands(value: float, scale: str, averaging: str, band: str) -> None:
    assert band_of(value, quantity="pm25", averaging=averaging, scale_id=scale) == band


def test_heating_schedule_interpolates_between_published_points() -> None:
    norms = load_heating_norms()
    schedule = norms.schedule
    assert schedule.supply_at(-10) == pytest.approx(110.0)
    assert schedule.supply_at(-15) == pytest.approx(122.5)
    assert schedule.supply_at(10) == pytest.approx(80.0)  # warmer than +8: the hot-water break
    assert schedule.supply_at(-40) == pytest.approx(150.0)  # colder than design: capped
    assert schedule.return_at(0) == pytest.approx(45.0)
    ranges = {r.quantity: (r.low, r.high, r.unit) for r in norms.ranges}
    assert ranges["return_temperature"] == (35.0, 70.0, "degC")
    assert ranges["supply_pressure"] == (0.3, 1.6, "MPa")


def test_units() -> None:
    assert normalise_unit("µg/m³") == normalise_unit("μg/m3") == normalise_unit("мкг/м3") == "ug/m3"
    assert conversion_factor("mg/m3", "µg/m³") == 1000.0
    assert conversion_factor("MPa", "kPa") == 1000.0
    assert conversion_factor("bar", "MPa") == pytest.approx(0.1)
    with pytest.raises(ValidationError, match="concentration"):
        conversion_factor("degC", "ug/m3")
    with pytest.raises(ValidationError, match="unknown unit"):
        conversion_factor("furlong", "ug/m3")


def test_severity_steps() -> None:
    assert [severity_for(r, LEGAL_STEPS) for r in (1.0, 1.99, 2.0, 4.99, 5.0)] == [
        Severity.WARNING,
        Severity.WARNING,
        Severity.MAJOR,
        Severity.MAJOR,
        Severity.CRITICAL,
    ]
    assert [severity_for(r, ADVISORY_STEPS) for r in (1.2, 5.0)] == [
        Severity.INFO,
        Severity.WARNING,
    ]


def test_rule_set_refuses_two_singleton_rules_for_one_quantity() -> None:
    with pytest.raises(SpecificationError, match="two StuckRule"):
        RuleSet((StuckRule(), StuckRule()))


def test_columns_from_frame_reads_offsets_and_reports_every_problem() -> None:
    aware = pd.DataFrame(
        {
            "sensor": ["a", "b"],
            "time": pd.to_datetime(
                ["2025-12-01T00:00:00-08:00", "2025-12-01T01:00:00+05:00"], utc=True
            ).tz_convert("Asia/Almaty"),
            "value": [1.0, 2.0],
        }
    )
    columns = columns_from_frame(
        aware, quantity=None, unit=None, default_quantity="pm25", default_unit="ug/m3"
    )
    assert columns.time_us.tolist() == [
        1764576000000000,
        1764532800000000,
    ]  # 08:00Z and 20:00Z the day before

    naive = aware.assign(time=pd.to_datetime(["2025-12-01 00:00", "2025-12-01 01:00"]))
    with pytest.raises(ValidationError, match="no timezone"):
        columns_from_frame(
            naive, quantity=None, unit=None, default_quantity="pm25", default_unit="ug/m3"
        )

    with pytest.raises(ValidationError) as caught:
        columns_from_frame(pd.DataFrame({"sensor": ["a"], "time": ["2025-12-01T00:00Z"]}))
    assert {p.column for p in caught.value.problems} == {"value", "quantity", "unit"}

    bad = pd.DataFrame(
        {
            "sensor": ["a", "", "c"],
            "time": ["2025-12-01T00:00Z", "yesterday", "2025-12-01T00:00Z"],
            "value": [1, 2, "n/a"],
        }
    )
    with pytest.raises(ValidationError) as caught:
        columns_from_frame(
            bad, quantity=None, unit=None, default_quantity="pm25", default_unit="ug/m3"
        )
    assert sorted((p.row, p.column) for p in caught.value.problems) == [
        (3, "sensor"),
        (3, "time"),
        (4, "value"),
    ]


def test_findings_serialise_to_json() -> None:
    evaluator = StreamingEvaluator(air_quality_rules(["pm25"]))
    (finding, *_) = [
        f
        for f in evaluator.feed(
            Observation.at("s1", "pm25", "2025-12-01T08:00:00+05:00", 1000.0, "ug/m3")
        )
    ]
    data = json.loads(json.dumps(finding.as_dict()))
    assert data["rule_id"] == "fault.saturated"
    assert data["start"] == "2025-12-01T03:00:00+00:00"
    assert data["severity"] == "major" and data["kind"] == "fault"


@given(
    st.lists(
        st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5).map(float)), min_size=1, max_size=80
    )
)
def test_median_mad_of_sorted_matches_numpy(values: list[float]) -> None:
    median, mad = median_mad_of_sorted(sorted(values))
    array = np.asarray(values)
    assert median == pytest.approx(np.median(array), rel=1e-12, abs=1e-9)
    assert mad == pytest.approx(np.median(np.abs(array - np.median(array))), rel=1e-12, abs=1e-9)


@given(st.lists(st.integers(-5, 5).map(float), min_size=2, max_size=30), st.data())
def test_leave_one_out_median_matches_numpy(values: list[float], data: st.DataObject) -> None:
    ordered = sorted(values)
    position = data.draw(st.integers(0, len(values) - 1))
    # The neighbours' median of the sensor at `position`, found through the rank of its value.
    rank = ordered.index(values[position])
    others = values[:position] + values[position + 1 :]
    assert median_without(ordered, rank) == pytest.approx(float(np.median(others)))
