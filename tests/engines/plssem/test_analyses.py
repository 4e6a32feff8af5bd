"""PLSpredict, IPMA, and multigroup analysis with MICOM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.conftest import shared_file
from tests.engines.plssem.conftest_data import SMALL_MODEL, simulate
from tests.engines.plssem.seminr_oracle import MOBI_TEXT

from qala.core.errors import SpecificationError, ValidationError
from qala.engines.plssem import PLSSEM
from qala.engines.plssem.mga import multigroup


# -- PLSpredict ---------------------------------------------------------------------------------
@pytest.mark.shared
def test_plspredict_leave_one_out_reference_numbers() -> None:
    # seminr 0.2.1 predict_pls(technique=predict_EA, no_folds=None) on mobi, RMSE of its
    # out-of-sample PLS and LM predictions (see test_seminr_oracle for the live comparison)
    mobi = pd.read_csv(shared_file("mobi.csv"))
    table = PLSSEM(MOBI_TEXT).fit(mobi).predict(folds=len(mobi)).table
    expected = {
        "CUEX1": (1.532728, 1.562696),
        "CUSA3": (1.464092, 1.394451),
        "CUSL2": (2.838353, 2.856390),
        "PERQ2": (1.779013, 1.555290),
        "PERV2": (1.702442, 1.586134),
        "CUSCO": (2.098056, 1.997558),
    }
    for item, (pls_rmse, lm_rmse) in expected.items():
        assert table.loc[item, "pls_rmse"] == pytest.approx(pls_rmse, abs=1e-6)
        assert table.loc[item, "lm_rmse"] == pytest.approx(lm_rmse, abs=1e-6)
    assert list(table.index[:3]) == ["CUEX1", "CUEX2", "CUEX3"]


def test_plspredict_metrics_are_consistent() -> None:
    data = simulate(n=200, seed=1)
    out = PLSSEM(SMALL_MODEL).fit(data).predict(folds=5, repeats=2, seed=3)
    t = out.table
    assert set(t["construct"]) == {"M", "Y"}
    # predictable indicators: PLS beats the training mean
    assert (t["q2_predict"] > 0.05).all()
    assert (t["pls_mae"] <= t["pls_rmse"] + 1e-12).all()
    again = PLSSEM(SMALL_MODEL).fit(data).predict(folds=5, repeats=2, seed=3)
    pd.testing.assert_frame_equal(t, again.table)
    assert out.to_dict()["indicators"]["y1"]["construct"] == "Y"


def test_plspredict_rejects_two_stage_models() -> None:
    spec = "X =~ x1 + x2\nM =~ m1 + m2\nY =~ y1 + y2\nY ~ X + M + X:M"
    with pytest.raises(SpecificationError, match="PLSpredict"):
        PLSSEM(spec).fit(simulate(n=60)).predict()


# -- IPMA ---------------------------------------------------------------------------------------
def test_ipma_single_items_by_hand() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 8, 100).astype(float)
    y = np.clip(np.round(0.6 * x + rng.normal(0, 1, 100) + 1), 1, 7)
    m = np.clip(np.round(0.5 * y + rng.normal(0, 1, 100) + 2), 1, 7)
    data = pd.DataFrame({"x1": x, "y1": y, "m1": m})
    fit = PLSSEM("X =~ x1\nY =~ y1\nM =~ m1\nY ~ X\nM ~ Y").fit(data)
    out = fit.ipma("M", scale=(1, 7))
    rx, ry, rm = ((v - 1) / 6 * 100 for v in (x, y, m))
    slope_xy = np.polyfit(rx, ry, 1)[0]
    slope_ym = np.polyfit(ry, rm, 1)[0]
    assert out.constructs.loc["Y", "importance"] == pytest.approx(slope_ym)
    assert out.constructs.loc["X", "importance"] == pytest.approx(slope_xy * slope_ym)
    assert out.constructs.loc["X", "performance"] == pytest.approx(rx.mean())
    assert out.target_performance == pytest.approx(rm.mean())
    assert out.indicators.loc["x1", "importance"] == pytest.approx(slope_xy * slope_ym)


def test_ipma_multi_item_performance_uses_normalised_unstandardised_weights() -> None:
    data = simulate(n=150, seed=2)
    fit = PLSSEM(SMALL_MODEL).fit(data)
    out = fit.ipma("Y")
    items = ["x1", "x2", "x3"]
    w = fit.weights.loc[items, "X"] / data[items].std()
    w = w / w.sum()
    rescaled = (data[items] - data[items].min()) / (data[items].max() - data[items].min()) * 100
    assert out.constructs.loc["X", "performance"] == pytest.approx((rescaled @ w).mean())
    assert out.indicators.loc["x2", "performance"] == pytest.approx(rescaled["x2"].mean())
    with pytest.raises(SpecificationError, match="endogenous"):
        fit.ipma("X")


# -- multigroup analysis ------------------------------------------------------------------------
def test_identical_groups_show_no_difference_and_full_invariance() -> None:
    data = simulate(n=80, seed=4)
    both = pd.concat([data.assign(city="A"), data.assign(city="B")], ignore_index=True)
    out = multigroup(SMALL_MODEL, both, "city", permutations=60, seed=1)
    assert out.sizes == (80, 80)
    assert np.allclose(out.paths["difference"], 0, atol=1e-12)
    assert (out.paths["p_permutation"] == 1.0).all()
    assert np.allclose(out.micom_composition["c"], 1.0)
    assert out.micom_composition["invariant"].all()
    assert np.allclose(out.micom_means_variances["mean_diff"], 0, atol=1e-12)
    assert out.micom_means_variances["mean_equal"].all()


def test_a_real_path_difference_is_detected() -> None:
    strong = simulate(n=250, seed=5)
    weak = simulate(n=250, seed=6)
    # break the X -> M link in the second group by shuffling M's items together
    order = np.random.default_rng(0).permutation(250)
    weak[["m1", "m2", "m3"]] = weak[["m1", "m2", "m3"]].to_numpy()[order]
    data = pd.concat([strong.assign(g="mono"), weak.assign(g="other")], ignore_index=True)
    out = multigroup(SMALL_MODEL, data, "g", permutations=200, seed=2)
    assert out.paths.loc["X -> M", "coef_mono"] > 0.3
    assert abs(out.paths.loc["X -> M", "coef_other"]) < 0.15
    assert out.paths.loc["X -> M", "p_permutation"] < 0.01
    assert out.to_dict()["paths"]["X -> M"]["p_permutation"] < 0.01


def test_group_column_errors() -> None:
    data = simulate(n=30).assign(g=["a", "b", "c"] * 10)
    with pytest.raises(ValidationError, match="exactly two groups"):
        multigroup(SMALL_MODEL, data, "g", permutations=5)
    with pytest.raises(ValidationError):
        multigroup(SMALL_MODEL, data, "nope", permutations=5)
    out = multigroup(SMALL_MODEL, data, "g", groups=("a", "c"), permutations=5)
    assert out.sizes == (10, 10)


# -- text and picture output --------------------------------------------------------------------
def test_summary_and_diagram_for_a_two_stage_model() -> None:
    from qala.engines.plssem.diagram import path_diagram_png

    data = simulate(n=90, seed=12)
    spec = "X =~ x1 + x2 + x3\nM =~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nY ~ X + M + X:M\n"
    fit = PLSSEM(spec).fit(data)
    text = fit.summary()
    assert "X:M -> Y" in text and "Fornell" in text and "HTMT" in text
    boot = fit.bootstrap(30, seed=1, bca=False)
    assert "X:M -> Y" in boot.summary()
    png = path_diagram_png(fit, boot)
    assert png.startswith(b"\x89PNG")
