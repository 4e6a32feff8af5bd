"""The bootstrap's normal and t functions against SciPy's (the oracle they replace)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from qala.engines.plssem.distributions import normal_cdf, normal_ppf, t_sf


def test_normal_cdf_and_quantile_match_scipy() -> None:
    x = np.concatenate([np.linspace(-40, 40, 801), [0.0, np.inf, -np.inf, np.nan]])
    np.testing.assert_allclose(normal_cdf(x), special.ndtr(x), rtol=1e-13, atol=1e-16)
    p = np.concatenate([np.linspace(0, 1, 1001), [1e-300, 1 - 1e-16, np.nan, -0.1, 1.1]])
    np.testing.assert_allclose(normal_ppf(p), special.ndtri(p), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("df", [1, 2, 5, 29.5, 199, 4999, 49999])
def test_t_survival_matches_scipy(df: float) -> None:
    t = np.concatenate([np.linspace(-60, 60, 1201), [0.0, np.inf, -np.inf, np.nan]])
    expected = special.stdtr(df, -t)
    got = t_sf(t, df)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)
    assert got.shape == t.shape
