"""Model fit (SRMR, d_ULS, d_G and the exact-fit test), HTMT2 and CVPAT, checked by hand.

The model-implied correlation matrices are rebuilt here element by element from the reported
weights, loadings and construct correlations (a chain model X -> M -> Y, whose implied
construct correlations are products of its paths), and the distances recomputed with plain
loops and SciPy's general eigenvalue routine. The mobi figures are checked against cSEM itself
in ``test_csem_fit.py`` (its d_G takes base-10 logarithms, Qala's the natural one).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.stats
from tests.engines.plssem.conftest_data import SMALL_MODEL, simulate

from qala.core.errors import SpecificationError
from qala.engines.plssem import PLSSEM, kernel as k
from qala.engines.plssem.cvpat import paired_loss_test
from qala.engines.plssem.modelfit import bollen_stine
from qala.engines.plssem.predict import cross_validated_predictions

CHAIN = """
X =~ x1 + x2 + x3
M =~ m1 + m2 + m3
Y =~ y1 + y2 + y3
M ~ X
Y ~ M
"""
BLOCKS = {"X": ["x1", "x2", "x3"], "M": ["m1", "m2", "m3"], "Y": ["y1", "y2", "y3"]}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate(n=300, seed=5)


def hand_sigma(
    data: pd.DataFrame, result: object, *, factor: bool, saturated: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(S, Σ) of the chain model built cell by cell."""
    items = [i for block in BLOCKS.values() for i in block]
    s = np.corrcoef(data[items].to_numpy(), rowvar=False)
    pos = {item: n for n, item in enumerate(items)}
    of = {item: c for c, block in BLOCKS.items() for item in block}
    weights = result.weights  # type: ignore[attr-defined]
    if factor:
        loading = {i: float(result.loadings.loc[i, of[i]]) for i in items}  # type: ignore[attr-defined]
        r = result.construct_correlations  # type: ignore[attr-defined]
    else:
        loading = {}
        for c, block in BLOCKS.items():
            w = weights.loc[block, c].to_numpy()
            idx = [pos[i] for i in block]
            for i, value in zip(block, s[np.ix_(idx, idx)] @ w, strict=True):
                loading[i] = float(value)
        scores = {c: weights.loc[block, c].to_numpy() for c, block in BLOCKS.items()}
        r = pd.DataFrame(
            [
                [
                    scores[a]
                    @ s[np.ix_([pos[i] for i in BLOCKS[a]], [pos[i] for i in BLOCKS[b]])]
                    @ scores[b]
                    for b in BLOCKS
                ]
                for a in BLOCKS
            ],
            index=list(BLOCKS),
            columns=list(BLOCKS),
        )
    if saturated:
        corr = r
    else:  # X -> M -> Y: r(X,M) = b1, r(M,Y) = b2, r(X,Y) = b1 b2
        b1 = float(result.path_matrix.loc["X", "M"])  # type: ignore[attr-defined]
        b2 = float(result.path_matrix.loc["M", "Y"])  # type: ignore[attr-defined]
        corr = pd.DataFrame(
            [[1, b1, b1 * b2], [b1, 1, b2], [b1 * b2, b2, 1]],
            index=list(BLOCKS),
            columns=list(BLOCKS),
        )
    sigma = np.eye(len(items))
    for i in items:
        for j in items:
            if i == j:
                continue
            if of[i] == of[j]:
                value = loading[i] * loading[j] if factor else s[pos[i], pos[j]]
            else:
                value = loading[i] * float(corr.loc[of[i], of[j]]) * loading[j]
            sigma[pos[i], pos[j]] = value
    return s, sigma


def hand_distances(s: np.ndarray, sigma: np.ndarray) -> dict[str, float]:
    p = len(s)
    lower = [(s[i, j] - sigma[i, j]) ** 2 for i in range(p) for j in range(i + 1)]
    eigen = scipy.linalg.eigvals(np.linalg.solve(s, sigma)).real
    return {
        "srmr": math.sqrt(sum(lower) / len(lower)),
        "d_uls": sum((s[i, j] - sigma[i, j]) ** 2 for i in range(p) for j in range(i)),
        "d_g": 0.5 * sum(math.log(e) ** 2 for e in eigen),
    }


@pytest.mark.parametrize("consistent", [False, True], ids=["composite", "PLSc"])
@pytest.mark.parametrize("model", ["saturated", "estimated"])
def test_distances_match_the_hand_built_implied_matrix(
    data: pd.DataFrame, consistent: bool, model: str
) -> None:
    result = PLSSEM(CHAIN, consistent=consistent).fit(data)
    s, sigma = hand_sigma(data, result, factor=consistent, saturated=model == "saturated")
    expected = hand_distances(s, sigma)
    got = result.model_fit().values[model]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_saturated_structural_model_fits_as_the_saturated_model(data: pd.DataFrame) -> None:
    # X -> M, X -> Y, M -> Y connects every pair: the estimated model is the saturated one
    values = PLSSEM(SMALL_MODEL, consistent=True).fit(data).model_fit().values
    assert values["estimated"] == pytest.approx(values["saturated"], abs=1e-12)


def test_bollen_stine_data_have_the_implied_correlations(data: pd.DataFrame) -> None:
    result = PLSSEM(CHAIN).fit(data)
    s, sigma = hand_sigma(data, result, factor=False, saturated=False)
    x = data[[i for b in BLOCKS.values() for i in b]].to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    rotated = bollen_stine(z, s, sigma)
    np.testing.assert_allclose(np.corrcoef(rotated, rowvar=False), sigma, atol=1e-10)


def test_exact_fit_test_accepts_the_true_model_and_rejects_a_wrong_one() -> None:
    # common-factor data from X -> M (0.5), X -> Y (0.3), M -> Y (0.4)
    sample = simulate(n=400, seed=11)
    true_fit = PLSSEM(SMALL_MODEL, consistent=True).fit(sample).model_fit(n_boot=199, seed=4)
    wrong_fit = PLSSEM(CHAIN, consistent=True).fit(sample).model_fit(n_boot=199, seed=4)
    for measure in ("srmr", "d_uls", "d_g"):
        q = true_fit.quantiles["estimated"][measure]
        assert q["hi95"] <= q["hi99"]
        assert true_fit.supported("estimated", measure, "hi95")
        # dropping X -> Y (0.3) leaves a residual the tests see (d_G, the weakest, less so)
        assert wrong_fit.p_values["estimated"][measure] < true_fit.p_values["estimated"][measure]
        if measure != "d_g":
            assert not wrong_fit.supported("estimated", measure, "hi99")
    again = PLSSEM(SMALL_MODEL, consistent=True).fit(sample).model_fit(n_boot=199, seed=4)
    assert again.quantiles == true_fit.quantiles  # the seed fixes the resamples


def test_fit_measures_refuse_two_stage_models(data: pd.DataFrame) -> None:
    with pytest.raises(SpecificationError, match="higher-order"):
        PLSSEM("X =~ x1 + x2 + x3\nM =~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nY ~ X + M + X:M").fit(
            data
        ).model_fit()


# -- HTMT2 ----------------------------------------------------------------------------------------
def test_a_given_resample_plan_replaces_the_seeded_one(data: pd.DataFrame) -> None:
    from qala.engines.plssem.bootstrap import resample_indices

    result = PLSSEM(CHAIN).fit(data)
    seeded = result.model_fit(n_boot=20, seed=3)
    replayed = result.model_fit(indices=resample_indices(len(data), 20, 3))
    assert replayed.quantiles == seeded.quantiles
    assert replayed.n_boot == 20
    other = result.model_fit(indices=resample_indices(len(data), 20, 4))
    assert other.quantiles != seeded.quantiles
    for bad in (
        np.zeros((20, 5), dtype=int),
        np.full((20, len(data)), len(data)),
        np.zeros((1, len(data)), dtype=int),
    ):
        with pytest.raises(SpecificationError, match="indices"):
            result.model_fit(indices=bad)


def test_htmt2_by_hand() -> None:
    """Constructs A (a1, a2, a3) and B (b1, b2): geometric means of the correlations."""
    s = np.array(
        [
            [1.0, 0.7, 0.6, 0.3, 0.4],
            [0.7, 1.0, 0.5, 0.2, 0.35],
            [0.6, 0.5, 1.0, 0.25, 0.3],
            [0.3, 0.2, 0.25, 1.0, 0.8],
            [0.4, 0.35, 0.3, 0.8, 1.0],
        ]
    )
    membership = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)
    layout = k.Layout(
        columns=("a1", "a2", "a3", "b1", "b2"),
        constructs=("A", "B"),
        membership=membership,
        mode_b=(False, False),
        reflective=(True, True),
        adjacency=np.array([[0.0, 1.0], [0.0, 0.0]]),
    )
    hetero = (0.3 * 0.4 * 0.2 * 0.35 * 0.25 * 0.3) ** (1 / 6)
    mono_a = (0.7 * 0.6 * 0.5) ** (1 / 3)
    mono_b = 0.8
    expected = hetero / math.sqrt(mono_a * mono_b)
    got = k.htmt2(s[None], layout)[0]
    assert got[0, 1] == pytest.approx(expected, rel=1e-12)
    assert got[1, 0] == got[0, 1] and np.isnan(got[0, 0])
    # arithmetic means give HTMT: the two differ on this uneven matrix
    htmt = (0.3 + 0.4 + 0.2 + 0.35 + 0.25 + 0.3) / 6 / math.sqrt((0.7 + 0.6 + 0.5) / 3 * 0.8)
    assert k.htmt(s[None], layout)[0, 0, 1] == pytest.approx(htmt, rel=1e-12)
    assert abs(got[0, 1] - htmt) > 1e-3
    s[0, 3] = s[3, 0] = -0.1  # a negative correlation: HTMT2 is undefined
    assert np.isnan(k.htmt2(s[None], layout)[0, 0, 1])


def test_htmt2_is_reported_beside_htmt(data: pd.DataFrame) -> None:
    result = PLSSEM(SMALL_MODEL).fit(data)
    assert set(result.to_dict()["htmt2"]) == {"X", "M", "Y"}
    assert "HTMT2" in result.summary()
    # equal correlations within and between blocks make both ratios equal; here they are close
    assert result.htmt2.loc["X", "M"] == pytest.approx(result.htmt.loc["X", "M"], abs=0.02)


# -- CVPAT ----------------------------------------------------------------------------------------
def test_paired_loss_test_by_hand() -> None:
    # differences -1, 0, -1, -1: mean -0.75, sd 0.5, T = -0.75 / (0.5 / 2) = -3 on 3 df
    out = paired_loss_test(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 4.0, 5.0]))
    assert out.difference == pytest.approx(-0.75)
    assert out.t == pytest.approx(-3.0)
    assert out.p == pytest.approx(scipy.stats.t.cdf(-3.0, 3), rel=1e-10)
    assert out.p == pytest.approx(0.028834, abs=1e-6)
    assert (out.pls_loss, out.benchmark_loss) == (2.5, 3.25)


def test_cvpat_losses_by_hand_with_leave_one_out(data: pd.DataFrame) -> None:
    """With as many folds as rows, the indicator average predicts each value by the mean of
    the others and the linear model by a regression on the other rows."""
    small = data.iloc[:40].reset_index(drop=True)
    result = PLSSEM(SMALL_MODEL).fit(small)
    out = result.cvpat(folds=40, repeats=1, seed=0)
    targets = ["m1", "m2", "m3", "y1", "y2", "y3"]
    y = small[targets].to_numpy()
    n = len(y)
    loo_mean = (y.sum(axis=0) - y) / (n - 1)
    np.testing.assert_allclose(out.losses[:, 1], ((y - loo_mean) ** 2).mean(axis=1), rtol=1e-10)
    x = np.column_stack([np.ones(n), small[["x1", "x2", "x3"]].to_numpy()])  # X affects M and Y
    for row in (0, 17, 39):
        keep = np.arange(n) != row
        coef = np.linalg.lstsq(x[keep], y[keep], rcond=None)[0]
        lm_loss = ((y[row] - x[row] @ coef) ** 2).mean()
        assert out.losses[row, 2] == pytest.approx(lm_loss, rel=1e-9)
    assert out.tests["IA"].pls_loss == pytest.approx(out.losses[:, 0].mean())


def test_cvpat_prefers_the_true_model_to_the_indicator_average(data: pd.DataFrame) -> None:
    out = PLSSEM(SMALL_MODEL).fit(data).cvpat(folds=10, repeats=3, seed=2)
    assert out.tests["IA"].difference < 0 and out.tests["IA"].p < 0.01
    assert set(out.to_dict()["against"]) == {"IA", "LM"}
    again = PLSSEM(SMALL_MODEL).fit(data).cvpat(folds=10, repeats=3, seed=2)
    assert again.tests == out.tests


def test_cross_validated_predictions_are_out_of_sample(data: pd.DataFrame) -> None:
    result = PLSSEM(SMALL_MODEL).fit(data)
    assignment = np.arange(len(data)) % 5
    actual, pls, lm, naive = cross_validated_predictions(result, assignment)
    # the training mean of fold 0 leaves fold 0's rows out
    fold0 = assignment == 0
    np.testing.assert_allclose(naive[fold0, 0], data["m1"][~fold0].mean())
    assert actual.shape == pls.shape == lm.shape == (len(data), 6)


# -- the ECSI mobi model ----------------------------------------------------------------------------
MOBI_FIT = {  # 3 decimals; the same as cSEM 0.6.1's (test_csem_fit.py, d_G there in base 10)
    False: {
        "saturated": {"srmr": 0.057, "d_uls": 0.987, "d_g": 2.215},
        "estimated": {"srmr": 0.124, "d_uls": 4.583, "d_g": 3.241},
    },
    True: {
        "saturated": {"srmr": 0.057, "d_uls": 0.984, "d_g": 2.391},
        "estimated": {"srmr": 0.069, "d_uls": 1.438, "d_g": 2.726},
    },
}


@pytest.mark.shared
@pytest.mark.parametrize("consistent", [False, True], ids=["composite", "PLSc"])
def test_mobi_model_fit(consistent: bool) -> None:
    from tests.conftest import shared_file
    from tests.engines.plssem.seminr_oracle import MOBI_TEXT

    mobi = pd.read_csv(shared_file("mobi.csv"))
    result = PLSSEM(MOBI_TEXT, consistent=consistent).fit(mobi)
    fit = result.model_fit(n_boot=99, seed=1)
    for model, expected in MOBI_FIT[consistent].items():
        assert {m: round(v, 3) for m, v in fit.values[model].items()} == expected
    # the saturated composite model misfits mobi: its SRMR is beyond the resampled 99 %
    assert not fit.supported("saturated", "srmr", "hi99")
    assert fit.measurement == ("common factor" if consistent else "composite")
