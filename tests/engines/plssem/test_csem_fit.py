"""SRMR, d_ULS, d_G and the exact-fit test on the ECSI mobi model against cSEM.

Reference: cSEM 0.6.1 (CRAN release of 2025-05-16, built from its source) on R 4.2.2 (Debian),
``assess()`` / ``calculateSRMR|DL|DG(.saturated = TRUE)`` and ``testOMF(.R = 499, .seed = 1,
.alpha = c(0.05, 0.01), .handle_inadmissibles = "ignore")``, run on 2026-12-06 with
``Rscript bench/csem_fit.R mobi.csv 499 1`` on the shared mobi.csv (seminr's mobi, n = 250):
PLS-PM, path scheme, Mode A; "composite" = every construct a composite (``<~``) without
disattenuation, "PLSc" = every construct a common factor (``=~``), disattenuated. The numbers
below are its output, to 10 decimals.

Conventions: cSEM's d_G takes base-10 logarithms, Qala's the natural one, so Qala's d_G is
compared after dividing by ln(10)². cSEM's ``testOMF()`` refuses to test PLSc on mobi (its
construct correlation matrix is not positive semi-definite, so ``verify()`` calls the estimates
inadmissible); the script lets it run with ``verify()`` passing, which with "ignore" changes
nothing else, to get the quantiles under Qala's convention (test all the same, drop only
resamples whose distances are not finite).

The quantiles depend on the resamples. Qala replays cSEM's own resamples — R's
``set.seed(1)`` and ``sample(1:250, replace = TRUE)`` 499 times, reproduced in
``r_sample.py`` — so they are compared as exactly as the statistics: to 1e-6, well inside the
3 decimals the issue asks for (the agreement is ~1e-8, the two programs' convergence
tolerances).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tests.conftest import shared_file
from tests.engines.plssem.r_sample import RSampler
from tests.engines.plssem.seminr_oracle import MOBI_TEXT

from qala.engines.plssem import PLSSEM
from qala.engines.plssem.modelfit import ModelFitResults

TOL = 1e-6
LN10_SQ = math.log(10) ** 2
CSEM = {
    "composite": {
        "saturated": {
            "srmr": 0.0573630774,
            "d_uls": 0.9871567956,
            "d_g_log10": 0.4177171815,
            "srmr_hi95": 0.0469343042,
            "srmr_hi99": 0.050421925,
            "d_uls_hi95": 0.6608521653,
            "d_uls_hi99": 0.7627194639,
            "d_g_log10_hi95": 0.3097496414,
            "d_g_log10_hi99": 0.3368993686,
            "n_admissible": 499,
        },
        "estimated": {
            "srmr": 0.1236038538,
            "d_uls": 4.5833737992,
            "d_g_log10": 0.6112491604,
            "srmr_hi95": 0.058870266,
            "srmr_hi99": 0.0651021679,
            "d_uls_hi95": 1.0397133767,
            "d_uls_hi99": 1.2714880546,
            "d_g_log10_hi95": 0.3251034845,
            "d_g_log10_hi99": 0.3560746933,
            "n_admissible": 499,
        },
    },
    "PLSc": {
        "saturated": {
            "srmr": 0.0572592786,
            "d_uls": 0.9835874956,
            "d_g_log10": 0.4508904469,
            "srmr_hi95": 0.0502397931,
            "srmr_hi99": 0.054690124,
            "d_uls_hi95": 0.7572111651,
            "d_uls_hi99": 0.8973084277,
            "d_g_log10_hi95": 0.3733943815,
            "d_g_log10_hi99": 0.4151581369,
            "n_admissible": 499,
        },
        "estimated": {
            "srmr": 0.0692378158,
            "d_uls": 1.4381625399,
            "d_g_log10": 0.514072863,
            "srmr_hi95": 0.0746414104,
            "srmr_hi99": 0.0915885783,
            "d_uls_hi95": 1.6714055099,
            "d_uls_hi99": 2.5170393327,
            "d_g_log10_hi95": 0.5347377694,
            "d_g_log10_hi99": 1.1530493936,
            "n_admissible": 462,
        },
    },
}
# cSEM's names for Qala's measures, and the factor taking Qala's figure to cSEM's
AS_CSEM = {"srmr": ("srmr", 1.0), "d_uls": ("d_uls", 1.0), "d_g": ("d_g_log10", 1 / LN10_SQ)}
MEASUREMENTS = {"composite": False, "PLSc": True}

_FITS: dict[str, ModelFitResults] = {}


def _fit(measurement: str) -> ModelFitResults:
    if measurement not in _FITS:
        mobi = pd.read_csv(shared_file("mobi.csv"))
        result = PLSSEM(MOBI_TEXT, consistent=MEASUREMENTS[measurement]).fit(mobi)
        indices = RSampler(1).resamples(len(mobi), 499)  # testOMF(.seed = 1)'s draws
        _FITS[measurement] = result.model_fit(indices=indices)
    return _FITS[measurement]


def test_r_sampler_reproduces_r() -> None:
    # R 4.2.2: set.seed(1); sample(1:250, 12, replace = TRUE)
    assert list(RSampler(1).sample(250, 12) + 1) == [
        249, 68, 167, 129, 162, 215, 43, 14, 210, 187, 51, 225
    ]  # fmt: skip
    # set.seed(7); sample(1:70000, 6, replace = TRUE) -- 17 bits, two 16-bit chunks per draw
    assert list(RSampler(7).sample(70000, 6) + 1) == [4572, 51906, 63706, 66107, 19348, 4303]
    # successive calls continue the stream: set.seed(20261206); x <- sample(1:250, replace =
    # TRUE); y <- sample(1:250, replace = TRUE); sum(x * 1:250); sum(y * 1:250)
    sampler = RSampler(20261206)
    x, y = sampler.sample(250) + 1, sampler.sample(250) + 1
    weights = np.arange(1, 251)
    assert (int(x @ weights), int(y @ weights)) == (3668072, 3944281)


@pytest.mark.shared
@pytest.mark.parametrize("model", ["saturated", "estimated"])
@pytest.mark.parametrize("measurement", list(MEASUREMENTS))
def test_distances_match_csem(measurement: str, model: str) -> None:
    fit = _fit(measurement)
    reference = CSEM[measurement][model]
    for measure, (name, factor) in AS_CSEM.items():
        ours = fit.values[model][measure] * factor
        assert ours == pytest.approx(reference[name], abs=TOL), (measure, ours, reference[name])
        assert round(ours, 3) == round(reference[name], 3)


@pytest.mark.shared
@pytest.mark.parametrize("model", ["saturated", "estimated"])
@pytest.mark.parametrize("measurement", list(MEASUREMENTS))
def test_exact_fit_test_matches_csem_on_its_resamples(measurement: str, model: str) -> None:
    fit = _fit(measurement)
    reference = CSEM[measurement][model]
    assert 499 - fit.n_failed[model] == reference["n_admissible"]
    for measure, (name, factor) in AS_CSEM.items():
        for level in ("hi95", "hi99"):
            ours = fit.quantiles[model][measure][level] * factor
            theirs = reference[f"{name}_{level}"]
            assert ours == pytest.approx(theirs, abs=TOL), (measure, level, ours, theirs)
            # the decision: cSEM keeps exact fit when the statistic is below the quantile
            assert fit.supported(model, measure, level) == (reference[name] < theirs)
