"""Properties of the streaming evaluator: idempotence, resumable state, batch = streaming."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import numpy as np
from hypothesis import given, settings, strategies as st

from qala.engines.detect import (
    Finding,
    Observation,
    StreamingEvaluator,
    air_quality_rules,
    evaluate_columns,
)
from qala.engines.detect.model import US_PER_HOUR, ObservationColumns, to_epoch_us

RULES = air_quality_rules(["pm25"])
T0 = to_epoch_us("2025-12-01T00:00:00+05:00")
MINUTE = 60_000_000

# A reading is mostly natural (0–300 µg/m³), sometimes saturated at the 1000 cap or exactly
# repeated, so every rule family gets exercised.
value_strategy = st.one_of(
    st.floats(min_value=0.0, max_value=300.0, allow_nan=False).map(lambda v: round(v, 2)),
    st.just(1000.0),
    st.just(0.0),
    st.just(42.0),
)


@st.composite
def sensor_series(draw: st.DrawFn, sensor: str, quantity: str = "pm25") -> list[Observation]:
    gaps = draw(
        st.lists(
            st.integers(min_value=5, max_value=draw(st.sampled_from([40, 75, 180]))),
            min_size=1,
            max_size=70,
        )
    )
    values = draw(st.lists(value_strategy, min_size=len(gaps), max_size=len(gaps)))
    offset = draw(st.integers(min_value=0, max_value=59))
    times = T0 + (offset + np.cumsum(gaps)) * MINUTE
    return [
        Observation(sensor, quantity, int(t), v, "ug/m3")
        for t, v in zip(times.tolist(), values, strict=True)
    ]


@st.composite
def network(draw: st.DrawFn) -> list[list[Observation]]:
    count = draw(st.sampled_from([1, 2, 3, 3]))
    return [draw(sensor_series(f"s{k}")) for k in range(count)]


def as_tuple(finding: Finding) -> tuple[object, ...]:
    return (
        finding.rule_id,
        str(finding.kind),
        finding.sensor,
        finding.start_us,
        finding.end_us,
        finding.value,
        int(finding.severity),
        finding.explanation,
    )


def streamed(order: list[Observation]) -> tuple[list[Finding], StreamingEvaluator]:
    evaluator = StreamingEvaluator(RULES)
    findings = evaluator.feed_many(order)
    findings += evaluator.flush()
    return findings, evaluator


def arrival_order(
    series: list[list[Observation]], rng: random.Random, max_delay_us: int
) -> list[Observation]:
    """Interleave the sensors: each reading arrives between its time and ``max_delay_us`` later,
    each sensor's readings stay in time order (its arrival keys are handed out in time order)."""
    slots: list[tuple[int, int, int]] = []
    for index, readings in enumerate(series):
        keys = sorted(o.time_us + rng.randint(0, max_delay_us) for o in readings)
        slots += [(key, index, position) for position, key in enumerate(keys)]
    slots.sort()
    return [series[index][position] for _, index, position in slots]


@settings(max_examples=60, deadline=None)
@given(series=network(), seed=st.integers(0, 2**32 - 1))
def test_refeeding_seen_observations_changes_nothing(
    series: list[list[Observation]], seed: int
) -> None:
    rng = random.Random(seed)
    everything = sorted((o for s in series for o in s), key=lambda o: o.time_us)
    evaluator = StreamingEvaluator(RULES)
    evaluator.feed_many(everything)
    before = json.dumps(evaluator.state(), sort_keys=True)
    replay = rng.sample(everything, k=min(len(everything), 1 + rng.randrange(len(everything))))
    assert evaluator.feed_many(replay) == []
    assert json.dumps(evaluator.state(), sort_keys=True) == before


@settings(max_examples=60, deadline=None)
@given(series=network(), seed=st.integers(0, 2**32 - 1))
def test_duplicates_in_the_stream_do_not_double_count(
    series: list[list[Observation]], seed: int
) -> None:
    rng = random.Random(seed)
    everything = sorted((o for s in series for o in s), key=lambda o: o.time_us)
    with_repeats: list[Observation] = []
    for observation in everything:
        with_repeats.append(observation)
        if rng.random() < 0.3:  # the broker redelivers, sometimes straight away, sometimes later
            with_repeats.append(rng.choice(with_repeats))
    clean, _ = streamed(everything)
    repeated, _ = streamed(with_repeats)
    assert [as_tuple(f) for f in repeated] == [as_tuple(f) for f in clean]


@settings(max_examples=60, deadline=None)
@given(series=network(), cut=st.floats(0.0, 1.0))
def test_state_survives_a_restart(series: list[list[Observation]], cut: float) -> None:
    everything = sorted((o for s in series for o in s), key=lambda o: o.time_us)
    split = int(cut * len(everything))
    straight, straight_evaluator = streamed(everything)

    first = StreamingEvaluator(RULES)
    resumed_findings = first.feed_many(everything[:split])
    saved = json.loads(json.dumps(first.state()))  # what the ingestion component would store
    second = StreamingEvaluator.from_state(RULES, saved)
    resumed_findings += second.feed_many(everything[split:])
    resumed_findings += second.flush()

    assert [as_tuple(f) for f in resumed_findings] == [as_tuple(f) for f in straight]
    assert json.dumps(second.state(), sort_keys=True) == json.dumps(
        straight_evaluator.state(), sort_keys=True
    )


@settings(max_examples=80, deadline=None)
@given(series=network(), seed=st.integers(0, 2**32 - 1))
def test_streaming_any_bounded_interleaving_equals_batch(
    series: list[list[Observation]], seed: int
) -> None:
    rng = random.Random(seed)
    everything = [o for s in series for o in s]
    columns = ObservationColumns(
        sensor=np.array([o.sensor for o in everything], dtype=object),
        quantity=np.array([o.quantity for o in everything], dtype=object),
        time_us=np.array([o.time_us for o in everything], dtype=np.int64),
        value=np.array([o.value for o in everything], dtype=float),
        unit=np.array([o.unit for o in everything], dtype=object),
    )
    batch = sorted(as_tuple(f) for f in evaluate_columns(columns, RULES))
    # Readings may arrive up to one hour late relative to each other (RuleSet.lateness_s is 2 h).
    order = arrival_order(series, rng, max_delay_us=US_PER_HOUR)
    order += rng.sample(order, k=len(order) // 4)  # plus redeliveries at the end
    stream, _ = streamed(order)
    assert sorted(as_tuple(f) for f in stream) == batch


@settings(max_examples=40, deadline=None)
@given(series=network(), cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_incremental_changes_rebuild_the_full_state(
    series: list[list[Observation]], cuts: list[float]
) -> None:
    """A store that upserts the records of changes() after each batch holds state()."""
    everything = sorted((o for s in series for o in s), key=lambda o: o.time_us)
    bounds = sorted({0, len(everything), *(int(c * len(everything)) for c in cuts)})
    evaluator = StreamingEvaluator(RULES)
    store: dict[tuple[str, str, str], dict[str, object]] = {}
    for start, stop in itertools.pairwise(bounds):
        evaluator.feed_many(everything[start:stop])
        changes = json.loads(json.dumps(evaluator.changes()))
        for record in changes["streams"]:
            store[("stream", record["sensor"], record["quantity"])] = record
        for record in changes["groups"]:
            store[("group", record["group"], record["quantity"])] = record
    rebuilt = {
        "version": 1,
        "streams": [r for k, r in sorted(store.items()) if k[0] == "stream"],
        "groups": [r for k, r in sorted(store.items()) if k[0] == "group"],
    }
    assert json.dumps(rebuilt, sort_keys=True) == json.dumps(evaluator.state(), sort_keys=True)
    assert evaluator.changes()["streams"] == []  # nothing changed since


@settings(max_examples=40, deadline=None)
@given(series=network(), cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
def test_changed_records_as_json_equal_the_changes(
    series: list[list[Observation]], cuts: list[float]
) -> None:
    """changed_records() gives each changed record as JSON text, a stream's hourly means and
    seasonal profile encoded once per hour: after every batch (hours closing between them or
    not) they are the records changes() would give, and rebuild state()."""
    everything = sorted((o for s in series for o in s), key=lambda o: o.time_us)
    bounds = sorted({0, len(everything), *(int(c * len(everything)) for c in cuts)})
    as_json = StreamingEvaluator(RULES)
    as_dicts = StreamingEvaluator(RULES)
    store: dict[tuple[str, str, str], object] = {}
    for start, stop in itertools.pairwise(bounds):
        as_json.feed_many(everything[start:stop])
        as_dicts.feed_many(everything[start:stop])
        records = as_json.changed_records()
        expected = as_dicts.changes()
        wanted = [("stream", r.pop("sensor"), r.pop("quantity"), r) for r in expected["streams"]]
        wanted += [("group", r.pop("group"), r.pop("quantity"), r) for r in expected["groups"]]
        assert [[k, s, q, json.loads(text)] for k, s, q, text in records] == json.loads(
            json.dumps(wanted)
        )
        store.update(((k, s, q), json.loads(text)) for k, s, q, text in records)
    rebuilt = StreamingEvaluator(RULES)
    rebuilt.load_records((k, s, q, data) for (k, s, q), data in store.items())  # type: ignore[misc]
    assert json.dumps(rebuilt.state(), sort_keys=True) == json.dumps(
        as_json.state(), sort_keys=True
    )
    assert as_json.changed_records() == []  # nothing changed since


GAS_RULES = air_quality_rules(["no2", "so2"])  # includes the NO2 + SO2 summation rule


@st.composite
def gas_network(draw: st.DrawFn) -> list[list[Observation]]:
    count = draw(st.sampled_from([1, 2]))
    return [
        draw(sensor_series(f"s{k}", quantity)) for k in range(count) for quantity in ("no2", "so2")
    ]


@settings(max_examples=40, deadline=None)
@given(series=gas_network(), seed=st.integers(0, 2**32 - 1))
def test_summation_streaming_equals_batch(series: list[list[Observation]], seed: int) -> None:
    rng = random.Random(seed)
    everything = [o for s in series for o in s]
    columns = ObservationColumns(
        sensor=np.array([o.sensor for o in everything], dtype=object),
        quantity=np.array([o.quantity for o in everything], dtype=object),
        time_us=np.array([o.time_us for o in everything], dtype=np.int64),
        value=np.array([o.value for o in everything], dtype=float),
        unit=np.array([o.unit for o in everything], dtype=object),
    )
    batch = sorted(as_tuple(f) for f in evaluate_columns(columns, GAS_RULES))
    order = arrival_order(series, rng, max_delay_us=US_PER_HOUR)
    evaluator = StreamingEvaluator(GAS_RULES)
    stream = evaluator.feed_many(order) + evaluator.flush()
    assert sorted(as_tuple(f) for f in stream) == batch


def test_state_kept_record_by_record_equals_the_whole_state_and_stays_within_the_locked_keys() -> (
    None
):
    """What a store does with one row per record: before each batch it would lock
    ``state_keys`` of the batch's readings; the records ``changes()`` reports must be among them,
    and a fresh evaluator loading the stored records (``load_records``) goes on exactly as the
    one that never stopped."""
    from qala.engines.detect import air_quality_rules, heating_rules

    rng = random.Random(7)
    for rules, quantities in (
        (air_quality_rules(), ("pm25", "pm10", "no2", "so2")),
        (heating_rules(), ("supply_temperature", "return_temperature", "outdoor_temperature")),
    ):
        groups = {"s1": "north", "s2": "north", "s3": "south"}
        straight = StreamingEvaluator(rules, groups=groups)
        stored: dict[tuple[str, str, str], Any] = {}
        resumed = StreamingEvaluator(rules, groups=groups)
        start = to_epoch_us("2025-12-01T00:00:00Z")
        readings = []
        for i in range(400):
            sensor = rng.choice(("s1", "s2", "s3"))
            quantity = rng.choice(quantities)
            value = (
                rng.uniform(0, 300) if quantity != "outdoor_temperature" else rng.uniform(-30, 5)
            )
            readings.append((sensor, quantity, start + i * 600_000_000, round(value, 1)))
        for batch_start in range(0, len(readings), 25):
            batch = readings[batch_start : batch_start + 25]
            locked = {
                key
                for sensor, quantity, *_ in batch
                for key in straight.state_keys(sensor, quantity)
            }
            for sensor, quantity, time_us, value in batch:
                unit = rules_unit(quantity)
                straight.feed_value(sensor, quantity, time_us, value, unit)
            changes = straight.changes()
            for kind, section, field in (
                ("stream", "streams", "sensor"),
                ("group", "groups", "group"),
            ):
                for record in changes[section]:
                    key = (kind, record[field], record["quantity"])
                    assert key in locked, key
                    stored[key] = record
            # Another process: load what the store holds for the batch's keys, feed the batch.
            resumed.load_records([(*key, stored.get(key)) for key in sorted(locked)])
            for sensor, quantity, time_us, value in batch:
                resumed.feed_value(sensor, quantity, time_us, value, rules_unit(quantity))
            resumed.changes()
        assert resumed.state() == straight.state()
        fresh = StreamingEvaluator(rules, groups=groups)
        fresh.load_records([(*key, record) for key, record in stored.items()])
        assert fresh.state() == straight.state()


def rules_unit(quantity: str) -> str:
    return "degC" if "temperature" in quantity else "ug/m3"
