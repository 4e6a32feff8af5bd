"""Framework, spec round-trips, the build pipeline and its flags, on small hand-checked data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from qala.core.errors import SpecificationError, ValidationError
from qala.engines.index import (
    Aggregate,
    Assumption,
    Denominate,
    Impute,
    IndexSpec,
    Normalise,
    Screen,
    Treat,
    Weight,
    audit,
    build_index,
    compare,
    framework_from_meta,
    framework_from_tree,
    run_uncertainty,
)

TREE = {
    "code": "City",
    "children": [
        {
            "code": "Health",
            "weight": 2,
            "children": [{"code": "beds"}, {"code": "wait", "direction": -1}],
        },
        {"code": "Mobility", "children": [{"code": "bus"}, {"code": "bike"}]},
        {"code": "wifi", "weight": 1},  # an indicator straight under the index: unbalanced tree
    ],
}

DATA = pd.DataFrame(
    {
        "uCode": ["A", "B", "C", "D"],
        "uName": ["Astana", "Almaty", "Shymkent", "Aktobe"],
        "region": ["north", "south", "south", "north"],
        "pop": [1000.0, 2000.0, 1000.0, 500.0],
        "beds": [10.0, 40.0, 30.0, np.nan],
        "wait": [5.0, 10.0, 20.0, 15.0],
        "bus": [1.0, 2.0, 3.0, 4.0],
        "bike": [4.0, 3.0, 2.0, 1.0],
        "wifi": [0.0, 50.0, 100.0, 50.0],
    }
)


def simple_spec(**agg: object) -> IndexSpec:
    return IndexSpec(
        steps=(Impute(method="group_mean", group="region"), Normalise(), Aggregate(**agg)),  # type: ignore[arg-type]
        name="test",
    )


def test_tree_framework_levels_and_unbalanced_depth() -> None:
    fw = framework_from_tree(TREE)
    assert fw.root == "City"
    assert fw.indicators == ["beds", "wait", "bus", "bike", "wifi"]
    assert fw.aggregates == ["Health", "Mobility", "City"]
    assert fw.level_of("wifi") == 1 and fw.level_of("City") == 3
    assert fw.to_tree()["children"][0]["weight"] == 2
    assert framework_from_tree(fw.to_tree()) == fw


def test_meta_round_trip_and_errors_name_the_row() -> None:
    fw = framework_from_tree(TREE)
    again = framework_from_meta(fw.to_meta())
    assert again.indicators == fw.indicators and again.weights == fw.weights
    bad = fw.to_meta()
    bad.loc[1, "Direction"] = 3
    bad.loc[2, "Parent"] = "Nowhere"
    with pytest.raises(ValidationError) as err:
        framework_from_meta(bad, source="meta.csv")
    text = str(err.value)
    assert "meta.csv, row 3, column `Direction`" in text


def test_build_by_hand() -> None:
    result = build_index(simple_spec(), DATA, framework_from_tree(TREE))
    # D's beds imputed with the north mean (10); flagged
    assert result.imputed.loc["D", "beds"] and result.imputed.sum().sum() == 1
    s = result.scores
    # beds 10,40,30,10 -> 0,100,66.67,0 ; wait (lower better) 5,10,20,15 -> 100,66.67,0,33.33
    assert s.loc["C", "beds"] == pytest.approx(200 / 3)
    assert s.loc["A", "wait"] == pytest.approx(100)
    assert s.loc["A", "Health"] == pytest.approx(50)
    assert s.loc["B", "Health"] == pytest.approx((100 + 200 / 3) / 2)
    # City = (2*Health + Mobility + wifi) / 4 ; Mobility is 50 for everyone
    for u in "ABCD":
        expected = (2 * s.loc[u, "Health"] + 50 + s.loc[u, "wifi"]) / 4
        assert s.loc[u, "City"] == pytest.approx(expected)
    assert result.ranks.loc["B", "City"] == 1
    out = result.to_json_dict(decimals=2)
    assert set(out["scores"]) == set("ABCD") and out["ranks"]["B"]["City"] == 1
    assert out["imputed"] == {"D": ["beds"]}


def test_denominate_and_screen() -> None:
    fw = framework_from_tree(TREE)
    spec = IndexSpec(
        steps=(
            Denominate(by={"beds": "pop"}, scale={"beds": 1000}),
            Screen(unit_min_coverage=0.9, collinearity_threshold=0.99),
        )
    )
    result = build_index(spec, DATA, fw)
    assert result.datasets["denominated"].loc["B", "beds"] == pytest.approx(20)
    assert result.screening["dropped_units"] == ["D"]  # 4 of 5 indicators = 80% coverage
    assert ("bus", "bike", pytest.approx(-1.0)) in result.screening["collinear_pairs"]
    assert list(result.scores.index) == ["A", "B", "C"]


def test_weight_steps() -> None:
    fw = framework_from_tree(TREE)
    spec = IndexSpec(
        steps=(
            Impute(method="mean"),
            Normalise(),
            Weight(
                method="budget",
                level=2,
                allocations={"e1": {"Health": 1, "Mobility": 3, "wifi": 0}},
            ),
            Weight(method="fixed", weights={"beds": 3.0}),
            Aggregate(),
        )
    )
    result = build_index(spec, DATA, fw)
    assert result.framework["Mobility"].weight == pytest.approx(0.75)
    assert result.framework["wifi"].weight == 0
    assert result.framework["beds"].weight == 3
    s = result.scores
    assert s.loc["A", "City"] == pytest.approx(0.25 * s.loc["A", "Health"] + 0.75 * 50)


def test_geometric_on_zero_scores_explains_the_fix() -> None:
    with pytest.raises(ValidationError, match="min-max 1–100"):
        build_index(simple_spec(method="geometric"), DATA, framework_from_tree(TREE))
    spec = simple_spec(method="geometric").with_step("normalise", params={"low": 1, "high": 100})
    assert build_index(spec, DATA, framework_from_tree(TREE)).scores["City"].notna().all()


def test_copeland_and_bod_levels() -> None:
    result = build_index(
        simple_spec(method="arithmetic", by_level={3: "copeland"}), DATA, framework_from_tree(TREE)
    )
    # weighted majority contests of Health (w 2), Mobility (all tied) and wifi: B beats everyone,
    # A beats C and D, C beats D (worked by hand)
    assert result.scores["City"].tolist() == [1, 3, -1, -3]
    bod = build_index(simple_spec(method="bod"), DATA, framework_from_tree(TREE))
    assert bod.scores["City"].max() == pytest.approx(1.0)
    # each unit's own weights reproduce its score: Σ w y_i = score, and Σ w y_j <= 1 for all j
    for code in ("Health", "Mobility", "City"):
        w = bod.unit_weights[code]
        y = bod.scores[list(w.columns)]
        np.testing.assert_allclose((w * y).sum(axis=1), bod.scores[code], atol=1e-7)
        assert ((y.to_numpy() @ w.to_numpy().T) <= 1 + 1e-7).all()


def test_normalise_methods_work_with_their_own_defaults() -> None:
    fw = framework_from_tree(TREE)
    for method in ("minmax", "zscore", "rank", "percentile", "distance_to_max"):
        result = build_index(IndexSpec(steps=(Impute(), Normalise(method=method))), DATA, fw)
        assert result.scores["bus"].notna().all(), method
    z = build_index(IndexSpec(steps=(Normalise(method="zscore"),)), DATA, fw).scores["bus"]
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)


def test_spec_round_trips_and_rejects_typos() -> None:
    spec = IndexSpec(
        steps=(
            Denominate(),
            Impute(method="knn", k=3),
            Screen(unit_min_coverage=0.5),
            Treat(),
            Normalise(method="rank", params={}),
            Weight(method="pca"),
            Aggregate(by_level={3: "geometric"}),
        ),
        name="x",
        description="d",
    )
    assert IndexSpec.from_text(spec.to_yaml()) == spec
    assert IndexSpec.from_text(spec.to_json()) == spec
    assert json.loads(spec.to_json())["steps"][1] == {
        "step": "impute",
        "method": "knn",
        "group": None,
        "k": 3,
        "max_gap": None,
        "fallback": None,
        "group_level": None,
    }
    with pytest.raises(ValidationError, match="unknown field"):
        IndexSpec.from_text("steps:\n  - step: normalise\n    methd: rank\n")
    with pytest.raises(ValidationError, match="unknown step"):
        IndexSpec.from_text("steps:\n  - step: normalize\n")
    with pytest.raises(ValidationError, match="last step"):
        IndexSpec(steps=(Aggregate(), Normalise()))
    with pytest.raises(SpecificationError):
        spec.with_step("treat", max_point=3)


def test_regenerate_and_compare() -> None:
    base = build_index(simple_spec(), DATA, framework_from_tree(TREE))
    variant = base.regenerate(base.spec.with_step("normalise", method="rank", params={}))
    table = compare(base, variant)
    assert set(table.columns) == {"a", "b", "diff", "abs_diff"}
    assert (table["diff"] == table["a"] - table["b"]).all()
    assert table["abs_diff"].is_monotonic_decreasing


def test_previous_year_imputation_from_panel() -> None:
    panel = pd.concat([DATA.assign(Time=2023, beds=[11.0, 41, 31, 99]), DATA.assign(Time=2024)])
    result = build_index(
        IndexSpec(steps=(Impute(method="previous"),)), panel, framework_from_tree(TREE)
    )
    assert result.datasets["imputed"].loc["D", "beds"] == 99
    assert result.imputed.loc["D", "beds"]
    # a unit never observed before stays missing unless a fallback fills it
    fresh = panel.copy()
    fresh.loc[(fresh["Time"] == 2023) & (fresh["uCode"] == "D"), "beds"] = np.nan
    spec = IndexSpec(steps=(Impute(method="previous"),))
    assert np.isnan(
        build_index(spec, fresh, framework_from_tree(TREE)).datasets["imputed"].loc["D", "beds"]
    )
    spec = IndexSpec(steps=(Impute(method="previous", fallback="median"),))
    assert (
        build_index(spec, fresh, framework_from_tree(TREE)).datasets["imputed"].loc["D", "beds"]
        == 30
    )


def test_strengths_weaknesses_and_audit() -> None:
    result = build_index(simple_spec(), DATA, framework_from_tree(TREE))
    sw = result.strengths_weaknesses("A", n=2)
    assert list(sw["strengths"]["code"]) == ["wait", "bike"]  # ranked 1st on both
    report = audit(result)
    assert set(report.consistency.index) == {"Health", "Mobility", "City"}
    # bus and bike are perfectly opposed: flagged as a negative pair inside Mobility
    assert (
        (report.flagged_pairs["a"] == "bus") & (report.flagged_pairs["issue"] == "negative")
    ).any()
    assert set(report.influence.index) == {"beds", "wait", "bus", "bike", "wifi"}


def test_uncertainty_without_real_alternatives_keeps_nominal_ranks() -> None:
    spec = simple_spec()
    fw = framework_from_tree(TREE)
    same = [
        Assumption(
            "agg", step="aggregate", parameter="method", values=("arithmetic", "arithmetic")
        ),
        Assumption("imp", step="impute", parameter="method", values=("group_mean",)),
    ]
    res = run_uncertainty(spec, DATA, fw, same, n=20)
    stats = res.rank_stats
    assert (stats["q05"] == stats["nominal"]).all() and (stats["q95"] == stats["nominal"]).all()


def test_sobol_finds_the_only_influential_assumption() -> None:
    fw = framework_from_tree(TREE)
    spec = simple_spec().with_step("normalise", params={"low": 1, "high": 100})
    assumptions = [
        Assumption("noop", step="treat", parameter="max_points", values=(1, 5)),
        Assumption("weights", weights_noise={2: 0.9}, weight_sets=64),
    ]
    spec = spec.insert_step(1, Treat(skew_threshold=100))  # treatment never triggers
    res = run_uncertainty(spec, DATA, fw, assumptions, n=64, method="sobol")
    assert res.runs == 64 * (2 + 2)
    assert abs(res.sensitivity.loc["noop", "ST"]) < 1e-9
    assert res.sensitivity.loc["weights", "ST"] > 0.5


N_UNITS = 6


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(0, 100, allow_nan=False), min_size=N_UNITS * 5, max_size=N_UNITS * 5),
    unit=st.integers(0, N_UNITS - 1),
    indicator=st.sampled_from(["beds", "bus", "bike", "wifi"]),
    bump=st.floats(0.01, 50),
    method=st.sampled_from(["arithmetic", "geometric", "harmonic"]),
)
def test_index_is_monotone_in_a_positive_indicator(values, unit, indicator, bump, method) -> None:  # type: ignore[no-untyped-def]
    cols = ["beds", "wait", "bus", "bike", "wifi"]
    frame = pd.DataFrame(np.array(values).reshape(N_UNITS, 5), columns=cols)
    frame.insert(0, "uCode", [f"U{i}" for i in range(N_UNITS)])
    fw = framework_from_tree(TREE)
    spec = IndexSpec(steps=(Normalise(params={"low": 1, "high": 100}), Aggregate(method=method)))
    before = build_index(spec, frame, fw).scores.loc[f"U{unit}", "City"]
    frame.loc[unit, indicator] += bump
    after = build_index(spec, frame, fw).scores.loc[f"U{unit}", "City"]
    if np.isnan(before) or np.isnan(after):
        return  # an indicator without variance cannot be normalised
    assert after >= before - 1e-9


def test_dropping_an_aggregate_drops_its_subtree_and_empty_parents() -> None:
    fw = framework_from_tree(TREE)
    smaller = fw.without(["Health"])
    assert smaller.indicators == ["bus", "bike", "wifi"]
    assert fw.without(["bus", "bike"]).aggregates == ["Health", "City"]


def test_continuous_assumptions_are_sampled_in_range() -> None:
    fw = framework_from_tree(TREE)
    spec = simple_spec().insert_step(1, Treat())
    assumptions = [
        Assumption("skew", step="treat", parameter="skew_threshold", low=0.5, high=3.0),
        Assumption("winmax", step="treat", parameter="max_points", low=1, high=4),
    ]
    res = run_uncertainty(spec, DATA, fw, assumptions, n=30, seed=5)
    assert res.samples["skew"].between(0.5, 3.0).all()
    assert res.samples["winmax"].between(1, 4).all()
    assert res.data_variants == 30  # every draw differs: each ran its own data steps
    assert res.ranks.notna().all().all() and res.ranks.max().max() <= 4


def test_uncertainty_config_from_yaml_block() -> None:
    from qala.engines.index import assumptions_from_config, uncertainty_section

    text = """
steps: [{step: normalise}, {step: aggregate}]
uncertainty:
  assumptions:
    - {name: agg, step: aggregate, parameter: method, values: [arithmetic, median]}
    - {name: w, weights_noise: {2: 0.2}, weight_sets: 10}
    - {name: drop, drop: [[], [wifi]]}
    - {name: t, step: normalise, parameter: method, range: [0, 1]}
"""
    block = uncertainty_section(text)
    assert block is not None
    found = assumptions_from_config(block)
    assert [a.kind for a in found] == ["step", "weights", "drop", "step"]
    assert found[1].weights_noise == {2: 0.2} and found[2].drop == ((), ("wifi",))
    assert found[0].decode(0.99) == 1 and found[3].decode(0.25) == 0.25
    with pytest.raises(ValidationError, match="unknown field"):
        assumptions_from_config({"assumptions": [{"name": "x", "stepp": "treat"}]})


def test_long_records_and_catalogue_style_tree() -> None:
    from qala.engines.index import wide_from_long

    long = DATA.melt(
        id_vars=["uCode", "uName", "region", "pop"], var_name="code", value_name="value"
    )
    long = long.rename(columns={"uCode": "place"})
    extra = DATA.set_index("uCode")[["region"]]
    wide = wide_from_long(
        long[["place", "code", "value"]], unit="place", indicator="code", extra=extra
    )
    tree = {
        "code": "City",
        "id": 7,
        "children": [
            {
                "code": "Health",
                "weight": 2,
                "children": [{"code": "beds"}, {"code": "wait", "direction": "lower"}],
            },
            {"code": "Mobility", "weight": None, "children": [{"code": "bus"}, {"code": "bike"}]},
            {"code": "wifi", "direction": "higher", "unit": "%"},
        ],
    }
    fw = framework_from_tree(tree)
    assert fw["wait"].direction == -1 and fw["Mobility"].weight == 1
    got = build_index(simple_spec(), wide, fw).scores
    expected = build_index(simple_spec(), DATA, framework_from_tree(TREE)).scores
    pd.testing.assert_frame_equal(got, expected)
    with pytest.raises(ValidationError, match="several values"):
        wide_from_long(pd.concat([long, long.head(1)]), unit="place", indicator="code")


def test_distance_to_target_takes_targets_from_the_structure() -> None:
    tree = {
        "code": "I",
        "children": [
            {"code": "beds", "target": 35.0},
            {"code": "wait", "direction": -1, "target": 7.5},
        ],
    }
    spec = IndexSpec(steps=(Impute(), Normalise(method="distance_to_target")))
    s = build_index(spec, DATA, framework_from_tree(tree)).scores
    # beds 10, 40, 30, (mean 80/3): (x - 10) / (35 - 10), capped at 100
    assert s["beds"].tolist() == pytest.approx([0, 100, 80, 200 / 3])
    # wait 5, 10, 20, 15 (lower is better): (20 - x) / (20 - 7.5)
    assert s["wait"].tolist() == pytest.approx([100, 80, 0, 40])


step_strategy = st.one_of(
    st.builds(
        Denominate, scale=st.dictionaries(st.sampled_from(["beds", "bus"]), st.floats(0.1, 1e3))
    ),
    st.builds(
        Screen,
        unit_min_coverage=st.none() | st.floats(0, 1),
        drop_zero_variance=st.booleans(),
        exclude_units=st.lists(st.sampled_from(["A", "B"]), unique=True),
    ),
    st.builds(
        Impute,
        method=st.sampled_from(["mean", "median", "group_mean", "knn", "em"]),
        k=st.integers(1, 9),
    ),
    st.builds(
        Treat,
        method=st.sampled_from(["winsorise_log", "winsorise", "log", "none"]),
        max_points=st.none() | st.integers(1, 10),
        skew_threshold=st.floats(0.5, 4),
    ),
    st.builds(
        Normalise,
        method=st.sampled_from(["minmax", "zscore", "rank"]),
        per_indicator=st.dictionaries(
            st.sampled_from(["beds", "wifi"]),
            st.just({"method": "goalposts", "lower": 0, "upper": 1}),
        ),
    ),
    st.builds(Weight, method=st.sampled_from(["equal", "pca"]), level=st.integers(1, 3)),
)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(step_strategy, max_size=6),
    aggregate=st.builds(
        Aggregate,
        method=st.sampled_from(["arithmetic", "geometric", "median", "copeland"]),
        by_level=st.dictionaries(st.integers(2, 4), st.sampled_from(["harmonic", "bod"])),
        min_coverage=st.none() | st.floats(0, 1),
    ),
    name=st.text(max_size=20),
)
def test_any_spec_round_trips_through_yaml_and_json(steps, aggregate, name) -> None:  # type: ignore[no-untyped-def]
    spec = IndexSpec(steps=(*steps, aggregate), name=name, description="generated")
    assert IndexSpec.from_text(spec.to_yaml()) == spec
    assert IndexSpec.from_text(spec.to_json()) == spec


def test_spec_validation_collects_type_and_choice_problems() -> None:
    text = """
steps:
  - {step: treat, max_points: five, method: trim}
  - {step: normalise, method: minmax}
  - {step: aggregate, method: mean, by_level: {3: bod, 4: mode}}
"""
    with pytest.raises(ValidationError) as err:
        IndexSpec.from_text(text)
    message = str(err.value)
    assert "4 problem(s)" in message
    assert "step 1 (treat): `max_points` must be int | None (got 'five')" in message
    assert "step 1 (treat): `method` must be one of winsorise_log" in message
    assert "step 3 (aggregate): `method` must be one of arithmetic" in message
    assert "by_level[4]" in message


def test_data_problems_name_rows_and_columns() -> None:
    fw = framework_from_tree(TREE)
    bad = DATA.drop(columns=["wifi"]).astype({"bus": object})
    bad.loc[2, "bus"] = "n/a"
    with pytest.raises(ValidationError) as err:
        build_index(simple_spec(), bad, fw)
    message = str(err.value)
    assert "column `wifi`: indicator of the structure has no data column" in message
    bad = DATA.astype({"bus": object})
    bad.loc[2, "bus"] = "n/a"
    with pytest.raises(
        ValidationError, match=r"row 4, column `bus`: expected a number \(got 'n/a'\)"
    ):
        build_index(simple_spec(), bad, fw)
    with pytest.raises(ValidationError, match="duplicate unit code"):
        build_index(simple_spec(), pd.concat([DATA, DATA.head(1)], ignore_index=True), fw)
    with pytest.raises(ValidationError, match="no unit column `place`"):
        build_index(IndexSpec(unit_column="place"), DATA, fw)
