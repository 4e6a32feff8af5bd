"""Each method against hand-computed values and the OECD/JRC (2008) / COINr definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qala.engines.index import aggregation, imputation, normalisation, treatment, weighting
from qala.engines.index.audit import cronbach_alpha, pca_summary

nan = float("nan")


# --- treatment ------------------------------------------------------------------------------
def test_skew_and_kurtosis_match_coinr_vignette() -> None:
    # COINr vignette "treat": x <- c(1:10, 30, 100); skew 3.063241, kurt 9.741391
    x = np.array([*range(1, 11), 30, 100], dtype=float)
    assert treatment.skewness(x) == pytest.approx(3.063241, abs=1e-6)
    assert treatment.kurtosis(x) == pytest.approx(9.741391, abs=1e-6)
    assert not treatment.passes_skew_kurtosis(x)


def test_winsorise_one_point_as_in_coinr_vignette() -> None:
    x = np.array([*range(1, 11), 30, 100], dtype=float)
    out, flags, n = treatment.winsorise(x, max_points=2)
    assert n == 1
    assert out[-1] == 30 and out[-2] == 30  # 100 takes the next highest value
    assert flags[-1] == "winhi" and flags.count("winhi") == 1
    assert treatment.skewness(out) == pytest.approx(1.712038, abs=1e-6)
    assert treatment.kurtosis(out) == pytest.approx(1.815781, abs=1e-6)


def test_jrc_rule_needs_both_skew_and_kurtosis() -> None:
    # skewed but light-tailed passes: the rule fails only when |skew| >= 2 AND kurtosis >= 3.5
    assert treatment.passes_skew_kurtosis(np.array([0, 0, 0, 0, 1, 1, 5.0]), 2, 3.5) is (
        abs(treatment.skewness(np.array([0, 0, 0, 0, 1, 1, 5.0]))) < 2
        or treatment.kurtosis(np.array([0, 0, 0, 0, 1, 1, 5.0])) < 3.5
    )


def test_log_applied_to_original_when_winsorisation_is_not_enough() -> None:
    x = np.array([1.0] * 20 + [50, 100, 100000])
    out = treatment.treat_indicator(x, max_points=1)
    assert out.log_transformed and out.winsorised == 0
    lo, hi = x.min(), x.max()
    np.testing.assert_allclose(out.values, np.log(x - lo + 0.01 * (hi - lo)))
    assert out.flags == ["log"] * x.size


def test_negative_skew_winsorises_low_end() -> None:
    x = -np.array([*range(1, 11), 30, 100], dtype=float)
    out, flags, n = treatment.winsorise(x, max_points=5)
    assert n == 1 and out[-1] == -30 and flags[-1] == "winlo"


# --- normalisation --------------------------------------------------------------------------
def test_minmax_and_direction() -> None:
    x = np.array([1.0, 2.0, 3.0, nan])
    np.testing.assert_allclose(normalisation.minmax(x), [0, 50, 100, nan])
    np.testing.assert_allclose(normalisation.minmax(x, -1), [100, 50, 0, nan])
    np.testing.assert_allclose(normalisation.minmax(x, 1, 1, 100), [1, 50.5, 100, nan])


def test_zscore_uses_sample_sd() -> None:
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(normalisation.zscore(x), [-1, 0, 1])
    np.testing.assert_allclose(normalisation.zscore(x, 1, 10, 2), [8, 10, 12])
    np.testing.assert_allclose(normalisation.zscore(x, -1, 10, 2), [12, 10, 8])


def test_rank_and_percentile_use_sport_ties() -> None:
    x = np.array([3.0, 1.0, 2.0, 2.0])
    np.testing.assert_allclose(normalisation.rank(x), [4, 1, 2, 2])
    # COINr n_prank: (rank - 1) / (n - 1), here on 0..100
    np.testing.assert_allclose(normalisation.percentile(x), [100, 0, 100 / 3, 100 / 3])


def test_goalposts() -> None:
    x = np.array([5.0, 12.0, -1.0])
    np.testing.assert_allclose(normalisation.goalposts(x, 1, 0, 10), [50, 100, 0])
    np.testing.assert_allclose(normalisation.goalposts(x, -1, 0, 10), [50, 0, 100])
    np.testing.assert_allclose(normalisation.goalposts(x, 1, 0, 10, truncate=False), [50, 120, -10])


def test_distance_to_target() -> None:
    x = np.array([0.0, 5.0, 10.0])
    np.testing.assert_allclose(normalisation.distance_to_target(x, 1, 8), [0, 62.5, 100])
    np.testing.assert_allclose(normalisation.distance_to_target(x, -1, 2), [100, 62.5, 0])


def test_custom_bands_like_the_national_rating() -> None:
    # share implemented -> 1..5 points in 20% bands
    bands = [[0, 1], [0.2, 2], [0.4, 3], [0.6, 4], [0.8, 5]]
    x = np.array([0.1, 0.25, 0.8, 1.0, nan])
    np.testing.assert_allclose(
        normalisation.piecewise(x, points=bands, steps=True), [1, 2, 5, 5, nan]
    )
    np.testing.assert_allclose(
        normalisation.piecewise(np.array([0.5]), points=[[0, 0], [1, 100]]), [50]
    )


def test_registered_custom_normaliser() -> None:
    normalisation.register_normaliser("times_two", lambda x, direction: 2 * x * direction)
    out = normalisation.normalise_column(
        np.array([1.0, 2.0]), "custom", -1, {"function": "times_two"}
    )
    np.testing.assert_allclose(out, [-2, -4])


# --- aggregation ----------------------------------------------------------------------------
def test_weighted_means() -> None:
    w = np.array([1.0, 3.0])
    assert aggregation.weighted_mean(np.array([[10.0, 20.0]]), w)[0] == pytest.approx(17.5)
    assert aggregation.weighted_mean(np.array([[4.0, 16.0]]), np.ones(2), "geometric")[
        0
    ] == pytest.approx(8)
    assert aggregation.weighted_mean(np.array([[4.0, 16.0]]), w, "geometric")[0] == pytest.approx(
        4**1.75
    )
    assert aggregation.weighted_mean(np.array([[1.0, 4.0]]), np.ones(2), "harmonic")[
        0
    ] == pytest.approx(1.6)


def test_missing_values_reweight_or_propagate() -> None:
    x = np.array([[10.0, nan, 30.0]])
    assert aggregation.weighted_mean(x, np.ones(3))[0] == pytest.approx(20)
    assert math.isnan(aggregation.weighted_mean(x, np.ones(3), min_coverage=0.8)[0])
    assert math.isnan(aggregation.weighted_mean(x, np.ones(3), missing="propagate")[0])


def test_geometric_mean_rejects_non_positive_values() -> None:
    with pytest.raises(aggregation.AggregationDomainError):
        aggregation.weighted_mean(np.array([[0.0, 1.0]]), np.ones(2), "geometric")


def test_batched_means_equal_one_by_one() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 100, size=(7, 4))
    w = rng.uniform(0.5, 1.5, size=(5, 4))
    batch = aggregation.mean_batch(x[:, None, :], w, "geometric")
    for r in range(5):
        np.testing.assert_allclose(batch[:, r], aggregation.weighted_mean(x, w[r], "geometric"))


def test_weighted_median() -> None:
    x = np.array([[1.0, 2.0, 3.0, 100.0], [5.0, nan, 1.0, 3.0]])
    np.testing.assert_allclose(aggregation.weighted_median(x, np.ones(4)), [2.5, 3.0])
    # weight 3 on the outlier: it holds more than half of the weight
    np.testing.assert_allclose(
        aggregation.weighted_median(x[:1], np.array([1.0, 1.0, 1.0, 3.5])), [100.0]
    )


def test_copeland_counts_pairwise_majorities() -> None:
    x = np.array([[3.0, 3.0, 1.0], [2.0, 2.0, 2.0], [1.0, 1.0, 3.0]])
    np.testing.assert_allclose(aggregation.copeland(x, np.ones(3)), [2, 0, -2])
    # a heavy third indicator turns the contest around
    np.testing.assert_allclose(aggregation.copeland(x, np.array([1.0, 1.0, 3.0])), [-2, 0, 2])


def test_benefit_of_the_doubt_by_hand() -> None:
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4]])
    scores, weights = aggregation.benefit_of_the_doubt(y)
    np.testing.assert_allclose(scores, [1, 1, 1, 0.8], atol=1e-9)
    assert (weights >= -1e-12).all()


# --- imputation -----------------------------------------------------------------------------
def test_group_mean_and_median() -> None:
    d = pd.DataFrame({"x": [1.0, nan, 3.0, 10.0, nan, 20.0, 60.0]})
    groups = ["a", "a", "a", "b", "b", "b", "b"]
    assert imputation.impute_group(d, groups)["x"].tolist() == [1, 2, 3, 10, 30, 20, 60]
    assert imputation.impute_group(d, groups, median=True)["x"].tolist() == [
        1,
        2,
        3,
        10,
        20,
        20,
        60,
    ]


def test_previous_year_carry() -> None:
    now = pd.DataFrame({"x": [nan, 5.0], "y": [nan, nan]}, index=["A", "B"])
    hist = pd.DataFrame(
        {"x": [1.0, 2.0, 9.0], "y": [7.0, nan, nan]},
        index=pd.MultiIndex.from_tuples([("A", 2019), ("A", 2020), ("B", 2020)]),
    )
    out = imputation.impute_previous(now, hist)
    assert out.loc["A", "x"] == 2 and out.loc["B", "x"] == 5 and out.loc["A", "y"] == 7
    assert math.isnan(out.loc["B", "y"])
    assert math.isnan(imputation.impute_previous(now, hist, max_gap=1).loc["A", "y"])


def test_em_recovers_a_linear_relation() -> None:
    d = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "y": [2.1, 3.9, 6.0, 8.1, 9.9, nan]})
    out = imputation.impute_em(d)
    assert out.loc[5, "y"] == pytest.approx(12.0, abs=0.3)
    assert out.loc[0, "y"] == 2.1  # observed values untouched


def test_regression_and_knn_fill_only_gaps() -> None:
    d = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "y": [2.0, 4, 6, 8, 10, nan]})
    assert imputation.impute_regression(d).loc[5, "y"] == pytest.approx(12.0, abs=0.5)
    knn = imputation.impute_knn(d, k=2)
    assert knn.loc[5, "y"] == pytest.approx(9.0)  # mean of the two nearest units (x = 5, 4)
    assert knn.loc[:4, "y"].tolist() == [2, 4, 6, 8, 10]


# --- weighting ------------------------------------------------------------------------------
def test_budget_allocation_averages_expert_shares() -> None:
    w = weighting.budget_allocation(
        {"e1": {"a": 60, "b": 40}, "e2": {"a": 20, "b": 80}}, ["a", "b"]
    )
    assert w == pytest.approx({"a": 0.4, "b": 0.6})


def test_pca_weights_are_squared_loadings_of_first_component() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=200)
    x = np.column_stack(
        [f + 0.1 * rng.normal(size=200), f + 0.1 * rng.normal(size=200), rng.normal(size=200)]
    )
    w = weighting.pca_weights(x)
    assert w.sum() == pytest.approx(1)
    assert w[0] == pytest.approx(0.5, abs=0.02) and w[2] < 0.02


def test_factor_weights_follow_the_handbook_recipe() -> None:
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=300), rng.normal(size=300)
    e = lambda: 0.3 * rng.normal(size=300)  # noqa: E731
    x = np.column_stack([f1 + e(), f1 + e(), f2 + e(), f2 + e()])
    w = weighting.factor_weights(x)
    assert w.sum() == pytest.approx(1)
    # two factors of equal strength, two indicators each -> about a quarter each
    np.testing.assert_allclose(w, [0.25] * 4, atol=0.04)


def test_optimised_weights_equalise_correlations() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(size=150)
    x = np.column_stack(
        [
            base + 0.2 * rng.normal(size=150),
            base + 1.0 * rng.normal(size=150),
            rng.normal(size=150) * 3 + base,
        ]
    )
    w = weighting.optimise_correlation(x)
    y = x @ w
    r = np.array([np.corrcoef(x[:, j], y)[0, 1] for j in range(3)])
    r_equal = np.array([np.corrcoef(x[:, j], x.mean(axis=1))[0, 1] for j in range(3)])
    assert np.ptp(r / r.sum()) < np.ptp(r_equal / r_equal.sum())


# --- audit helpers --------------------------------------------------------------------------
def test_cronbach_alpha_by_hand() -> None:
    x = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 3.0]])
    assert cronbach_alpha(x) == pytest.approx(2 * (1 - (1 + 1 / 3) / (7 / 3)))
    assert cronbach_alpha(np.column_stack([np.arange(5.0), np.arange(5.0)])) == pytest.approx(1)


def test_pca_summary_single_dimension() -> None:
    x = np.column_stack([np.arange(10.0), 2 * np.arange(10.0), np.arange(10.0) ** 1.01])
    s = pca_summary(x)
    assert s["pc1_share"] > 0.99 and s["components_over_1"] == 1
