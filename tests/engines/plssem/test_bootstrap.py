"""Bootstrap: batched resamples equal one-by-one refits; seeding; intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tests.engines.plssem.conftest_data import SMALL_MODEL, simulate

from qala.engines.plssem import PLSSEM
from qala.engines.plssem.bootstrap import (
    bca_interval,
    bootstrap,
    column_quantiles,
    resample_indices,
)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate(n=150, seed=5)


@pytest.mark.parametrize(
    "spec",
    [
        SMALL_MODEL,
        "X =~ x1 + x2 + x3\nM =~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nH =~ X + M\nY ~ H\n",
        "X =~ x1 + x2 + x3\nM <~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nY ~ X + M + X:M\n",
    ],
    ids=["plain", "higher-order", "interaction+formative"],
)
@pytest.mark.parametrize("consistent", [False, True])
def test_batched_draws_equal_refits_of_each_resample(
    data: pd.DataFrame, spec: str, consistent: bool
) -> None:
    fit = PLSSEM(spec, consistent=consistent).fit(data)
    idx = resample_indices(len(data), 12, seed=9)
    boot = bootstrap(fit, seed=9, indices=idx, batch_size=5, bca=False)
    assert boot.n_boot == 12
    n_paths = len(fit.paths)
    for b in range(12):
        again = PLSSEM(spec, consistent=consistent).fit(data.iloc[idx[b]].reset_index(drop=True))
        np.testing.assert_allclose(boot.draws[b, :n_paths], again.paths.to_numpy(), atol=1e-9)
    assert boot.paths["estimate"].to_numpy() == pytest.approx(fit.paths.to_numpy(), abs=1e-12)


def test_resample_plan_is_seminrs_seeded_pcg64_stream() -> None:
    gen = np.random.Generator(np.random.PCG64(42))
    expected = np.stack([gen.integers(0, 30, size=30, dtype=np.intp) for _ in range(4)])
    np.testing.assert_array_equal(resample_indices(30, 4, 42), expected)


def test_seeded_and_independent_of_batching_and_processes(data: pd.DataFrame) -> None:
    fit = PLSSEM(SMALL_MODEL).fit(data)
    a = bootstrap(fit, 60, seed=3, batch_size=60, bca=False)
    b = bootstrap(fit, 60, seed=3, batch_size=7, n_jobs=2, bca=False)
    pd.testing.assert_frame_equal(a.paths, b.paths)
    c = bootstrap(fit, 60, seed=4, bca=False)
    assert not np.allclose(a.paths["sd"], c.paths["sd"])


def test_summary_columns_follow_their_definitions(data: pd.DataFrame) -> None:
    fit = PLSSEM(SMALL_MODEL).fit(data)
    boot = bootstrap(fit, 200, seed=1)
    draws = boot.draws[:, 0]
    row = boot.paths.iloc[0]
    assert row["mean"] == pytest.approx(draws.mean())
    assert row["sd"] == pytest.approx(draws.std(ddof=1))
    assert row["t"] == pytest.approx(row["estimate"] / row["sd"])
    assert row["p"] == pytest.approx(2 * stats.t.sf(abs(row["t"]), df=199))
    assert row["ci_low"] == pytest.approx(np.quantile(draws, 0.025))
    assert row["ci_high"] == pytest.approx(np.quantile(draws, 0.975))
    assert row["bca_low"] < row["estimate"] < row["bca_high"]
    out = boot.to_dict()
    assert set(out["paths"]["X -> M"]) >= {"mean", "sd", "t", "p", "ci_low", "ci_high"}
    assert "X -> Y" in boot.total_effects.index


def test_bca_reduces_to_percentile_without_bias_or_skew() -> None:
    draws = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])[:, None]
    jack = np.array([0.1, -0.1, 0.1, -0.1])[:, None]  # symmetric: zero acceleration
    low, high = bca_interval(draws, np.array([0.0]), jack, 0.2)
    assert low[0] == pytest.approx(np.quantile(draws[:, 0], 0.1))
    assert high[0] == pytest.approx(np.quantile(draws[:, 0], 0.9))


def test_degenerate_resamples_are_dropped_and_counted(data: pd.DataFrame) -> None:
    rare = data.copy()
    rare["y3"] = 0.0
    rare.loc[0, "y3"] = 1.0  # most resamples lose the only non-zero value
    fit = PLSSEM(SMALL_MODEL).fit(rare)
    boot = bootstrap(fit, 50, seed=2, bca=False)
    assert boot.n_failed > 10
    assert boot.n_boot + boot.n_failed == 50


def test_column_quantiles_are_numpys_quantiles() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 250):
        draws = rng.normal(size=(n, 40))
        draws[:, :4] = np.round(draws[:, :4])  # ties
        levels = np.concatenate([rng.random(36), [0.0, 1.0, 0.025, 0.975]])
        expected = [np.quantile(draws[:, j], levels[j]) for j in range(40)]
        assert column_quantiles(np.sort(draws, axis=0), levels).tolist() == expected
