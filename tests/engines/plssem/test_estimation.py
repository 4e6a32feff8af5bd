"""The batched kernel, invariances of the estimates, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from tests.engines.plssem.conftest_data import SMALL_MODEL, simulate

from qala.core.errors import ConvergenceError, SpecificationError, ValidationError
from qala.engines.plssem import PLSSEM, kernel as k


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate()


def test_counts_correlations_equal_those_of_the_expanded_resample() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 5))
    idx = rng.integers(0, 40, size=(6, 40))
    counts = np.stack([np.bincount(i, minlength=40) for i in idx]).astype(float)
    got = k.correlations_from_counts(x - x.mean(axis=0), counts)
    for b in range(6):
        np.testing.assert_allclose(got[b], np.corrcoef(x[idx[b]], rowvar=False), atol=1e-12)


def test_constant_resample_column_is_flagged_not_fatal() -> None:
    x = np.column_stack([np.arange(10.0), np.r_[np.ones(9), 2.0]])
    counts = np.ones((2, 10))
    counts[1, 9] = 0  # second member never sees the one differing value
    got = k.correlations_from_counts(x - x.mean(axis=0), counts)
    assert np.isfinite(got[0]).all()
    assert np.isnan(got[1]).all()


def test_recovers_population_paths() -> None:
    # PLSc is consistent for common factors: with n=3000 the paths land near 0.5, 0.3, 0.4
    data = simulate(n=3000, seed=11)
    result = PLSSEM(SMALL_MODEL, consistent=True).fit(data)
    assert result.paths["X -> M"] == pytest.approx(0.5, abs=0.05)
    assert result.paths["X -> Y"] == pytest.approx(0.3, abs=0.05)
    assert result.paths["M -> Y"] == pytest.approx(0.4, abs=0.05)
    # plain PLS attenuates paths towards zero: its paths are smaller than PLSc's
    plain = PLSSEM(SMALL_MODEL).fit(data)
    assert plain.paths["X -> M"] < result.paths["X -> M"]


def test_structural_identities(data: pd.DataFrame) -> None:
    r = PLSSEM(SMALL_MODEL).fit(data)
    scores = r.scores
    # paths are OLS coefficients of standardised scores; R² is their explained variance
    design = scores[["X", "M"]].to_numpy()
    beta, *_ = np.linalg.lstsq(design, scores["Y"].to_numpy(), rcond=None)
    assert beta == pytest.approx([r.paths["X -> Y"], r.paths["M -> Y"]], abs=1e-10)
    resid = scores["Y"].to_numpy() - design @ beta
    assert r.r2["Y"] == pytest.approx(1 - resid.var() / scores["Y"].var(ddof=0), abs=1e-10)
    # total effect of X on Y = direct + X->M->Y
    total = r.paths["X -> Y"] + r.paths["X -> M"] * r.paths["M -> Y"]
    assert r.total_effects.loc["X", "Y"] == pytest.approx(total, abs=1e-12)
    assert r.indirect_effects.loc["X", "Y"] == pytest.approx(total - r.paths["X -> Y"])
    # scores have unit variance; loadings are item-score correlations
    assert scores.std(ddof=1).to_numpy() == pytest.approx(np.ones(3), abs=1e-12)
    assert r.loadings.loc["x1", "X"] == pytest.approx(np.corrcoef(data["x1"], scores["X"])[0, 1])
    # cross-loadings agree with loadings on own construct
    assert r.cross_loadings.loc["y2", "Y"] == pytest.approx(r.loadings.loc["y2", "Y"])
    # f² and VIF by hand from the score correlations
    rxm = np.corrcoef(scores["X"], scores["M"])[0, 1]
    assert r.inner_vif["X -> Y"] == pytest.approx(1 / (1 - rxm**2), abs=1e-10)
    r2_without_m = np.corrcoef(scores["X"], scores["Y"])[0, 1] ** 2
    assert r.f_squared["M -> Y"] == pytest.approx((r.r2["Y"] - r2_without_m) / (1 - r.r2["Y"]))
    assert r.inner_vif["X -> M"] == pytest.approx(1.0)
    assert r.fornell_larcker.loc["X", "X"] == pytest.approx(np.sqrt(r.reliability.loc["X", "ave"]))


def test_item_vif_and_alpha_by_hand(data: pd.DataFrame) -> None:
    r = PLSSEM(SMALL_MODEL).fit(data)
    corr = data[["x1", "x2", "x3"]].corr().to_numpy()
    assert r.item_vif[("X", "x2")] == pytest.approx(np.linalg.inv(corr)[1, 1])
    total = data[["x1", "x2", "x3"]].sum(axis=1).var()
    alpha = 1.5 * (1 - data[["x1", "x2", "x3"]].var().sum() / total)
    # alpha on standardised items equals the raw alpha only for equal variances; use z-scores
    z = (data - data.mean()) / data.std()
    alpha = 1.5 * (1 - 3 / z[["x1", "x2", "x3"]].sum(axis=1).var())
    assert r.reliability.loc["X", "alpha"] == pytest.approx(alpha)


@settings(max_examples=15, deadline=None)
@given(
    scale=st.floats(0.1, 50),
    shift=st.floats(-100, 100),
    seed=st.integers(0, 1000),
    scheme=st.sampled_from(["path", "factor", "centroid"]),
)
def test_estimates_do_not_depend_on_indicator_units(
    scale: float, shift: float, seed: int, scheme: str
) -> None:
    data = simulate(n=120, seed=seed)
    moved = data.copy()
    moved[["x1", "m2", "y3"]] = moved[["x1", "m2", "y3"]] * scale + shift
    a = PLSSEM(SMALL_MODEL, scheme=scheme).fit(data)
    b = PLSSEM(SMALL_MODEL, scheme=scheme).fit(moved)
    np.testing.assert_allclose(a.path_matrix, b.path_matrix, atol=1e-9)
    np.testing.assert_allclose(a.loadings, b.loadings, atol=1e-9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000))
def test_row_order_does_not_matter(seed: int) -> None:
    data = simulate(n=80, seed=seed)
    shuffled = data.sample(frac=1.0, random_state=seed)
    a = PLSSEM(SMALL_MODEL).fit(data)
    b = PLSSEM(SMALL_MODEL).fit(shuffled)
    np.testing.assert_allclose(a.path_matrix, b.path_matrix, atol=1e-10)


def test_formative_mode_b_weights_are_regression_weights(data: pd.DataFrame) -> None:
    r = PLSSEM(SMALL_MODEL.replace("X =~", "X <~")).fit(data)
    # Mode B: weights = solve(corr(items), corr(items, inner proxy)); here X's only neighbours
    # are M and Y, so the X weights regress the path-weighted proxy on the x items
    assert r.weights["X"].loc[["x1", "x2", "x3"]].abs().sum() > 0
    assert r.reliability.loc["X", "rho_a"] == 1.0
    z = (data - data.mean()) / data.std()
    s = r.scores
    proxy = (
        r.construct_correlations.loc["X", "M"] * s["M"]
        + r.construct_correlations.loc["X", "Y"] * s["Y"]
    )
    w, *_ = np.linalg.lstsq(z[["x1", "x2", "x3"]].to_numpy(), proxy.to_numpy(), rcond=None)
    w = w / np.std(z[["x1", "x2", "x3"]].to_numpy() @ w, ddof=1)
    np.testing.assert_allclose(r.weights["X"].loc[["x1", "x2", "x3"]], w, atol=1e-6)


def test_higher_order_two_stage(data: pd.DataFrame) -> None:
    spec = "X =~ x1 + x2 + x3\nM =~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nH =~ X + M\nY ~ H\n"
    r = PLSSEM(spec).fit(data)
    assert list(r.paths.index) == ["H -> Y"]
    # stage two measures H by the stage-one scores of X and M
    assert set(r.loadings["H"][r.loadings["H"] != 0].index) == {"X", "M"}
    # the dimension items keep their stage-one loadings
    assert r.loadings.loc["x1", "X"] > 0.5
    assert r.r2["Y"] == pytest.approx(r.paths["H -> Y"] ** 2)


def test_interaction_term_two_stage(data: pd.DataFrame) -> None:
    d = data.copy()
    r = PLSSEM("X =~ x1 + x2 + x3\nM =~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nY ~ X + M + X:M").fit(d)
    assert "X:M -> Y" in r.paths.index
    # no interaction in the population: its coefficient is small
    assert abs(r.paths["X:M -> Y"]) < 0.12
    main = PLSSEM("X =~ x1 + x2 + x3\nM =~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nY ~ X + M").fit(d)
    assert r.r2["Y"] >= main.r2["Y"] - 0.01


# -- errors -------------------------------------------------------------------------------------
def test_unknown_columns_are_listed(data: pd.DataFrame) -> None:
    with pytest.raises(ValidationError) as caught:
        PLSSEM(SMALL_MODEL.replace("x3", "x9").replace("y2", "yy")).fit(data)
    assert {p.column for p in caught.value.problems} == {"x9", "yy"}


def test_non_numeric_values_name_row_and_column(data: pd.DataFrame) -> None:
    bad = data.astype(object)
    bad.loc[4, "m2"] = "n/a"
    with pytest.raises(ValidationError) as caught:
        PLSSEM(SMALL_MODEL).fit(bad)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column, problem.value) == (6, "m2", "n/a")


def test_missing_values_policies(data: pd.DataFrame) -> None:
    holed = data.copy()
    holed.loc[[3, 7], "y1"] = np.nan
    with pytest.raises(ValidationError, match="2 missing value"):
        PLSSEM(SMALL_MODEL).fit(holed)
    assert PLSSEM(SMALL_MODEL, missing="drop").fit(holed).n_obs == len(data) - 2
    filled = PLSSEM(SMALL_MODEL, missing="mean").fit(holed)
    manual = holed.fillna({"y1": holed["y1"].mean()})
    assert filled.paths.to_numpy() == pytest.approx(
        PLSSEM(SMALL_MODEL).fit(manual).paths.to_numpy()
    )


def as_csv_cells(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The frame as a CSV reader gives it: column name → text cells (NaN as an empty cell)."""
    return {c: ["" if pd.isna(v) else repr(float(v)) for v in frame[c]] for c in frame.columns}


def test_plain_csv_cells_give_the_dataframe_fit(data: pd.DataFrame) -> None:
    """`qala sem fit` reads its CSV without pandas: text cells fit exactly as the DataFrame."""
    holed = data.copy()
    holed.loc[[3, 7], "y1"] = np.nan
    for missing in ("mean", "drop"):
        frame_fit = PLSSEM(SMALL_MODEL, missing=missing).fit(holed)  # type: ignore[arg-type]
        cells_fit = PLSSEM(SMALL_MODEL, missing=missing).fit(as_csv_cells(holed))  # type: ignore[arg-type]
        np.testing.assert_array_equal(cells_fit.values, frame_fit.values)
        assert cells_fit.coefficients == frame_fit.coefficients
        assert list(cells_fit.data.index) == list(frame_fit.data.index)
    with pytest.raises(ValidationError, match="2 missing value"):
        PLSSEM(SMALL_MODEL).fit(as_csv_cells(holed))


def test_plain_cells_report_what_the_dataframe_path_reports(data: pd.DataFrame) -> None:
    cells = as_csv_cells(data)
    cells["m2"][4] = "4,5"  # a decimal comma is not a number
    cells["x1"][0] = " NA "  # pandas' missing markers are missing here too
    with pytest.raises(ValidationError) as caught:
        PLSSEM(SMALL_MODEL).fit(cells)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column, problem.value) == (6, "m2", "4,5")
    cells["m2"][4] = "4.5"
    assert PLSSEM(SMALL_MODEL, missing="drop").fit(cells).n_obs == len(data) - 1
    del cells["y3"]
    with pytest.raises(ValidationError) as unknown:
        PLSSEM(SMALL_MODEL).fit(cells)
    assert [p.column for p in unknown.value.problems] == ["y3"]
    cells = as_csv_cells(data)
    cells["m3"] = ["4"] * len(data)
    with pytest.raises(ValidationError, match="constant"):
        PLSSEM(SMALL_MODEL).fit(cells)


def test_constant_indicator_is_rejected(data: pd.DataFrame) -> None:
    flat = data.copy()
    flat["m3"] = 4.0
    with pytest.raises(ValidationError, match="constant") as caught:
        PLSSEM(SMALL_MODEL).fit(flat)
    assert caught.value.problems[0].column == "m3"


def test_non_convergence_raises(data: pd.DataFrame) -> None:
    with pytest.raises(ConvergenceError, match="did not converge within 2 iterations"):
        PLSSEM(SMALL_MODEL, max_iter=2).fit(data)


def test_bad_options_and_collinear_constructs(data: pd.DataFrame) -> None:
    with pytest.raises(SpecificationError, match="scheme"):
        PLSSEM(SMALL_MODEL, scheme="mode-z")
    twin = data.copy()
    for i in (1, 2, 3):
        twin[f"w{i}"] = twin[f"x{i}"]
    spec = SMALL_MODEL + "W =~ w1 + w2 + w3\nY ~ W\n"
    with pytest.raises(SpecificationError, match="not identified"):
        PLSSEM(spec).fit(twin)
