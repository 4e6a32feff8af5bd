"""Imputation of missing indicator values; every imputed cell is flagged by the caller.

Methods (OECD/JRC Handbook 2008, section 3):

* ``mean`` / ``median`` — the indicator's mean or median over units;
* ``group_mean`` / ``group_median`` — the same within a group of units (e.g. region, city size);
  units of a group with no observed value fall back to the overall mean/median;
* ``previous`` — the unit's latest earlier observation in a panel (previous-year carry);
* ``em`` — expectation-maximisation under a multivariate normal model (Little & Rubin 2002):
  each missing value becomes its conditional expectation given the unit's observed indicators;
* ``regression`` — chained regressions (scikit-learn's IterativeImputer, Bayesian ridge);
* ``knn`` — mean of the k nearest units on standardised observed indicators;
* ``row_mean`` — "shadow imputation": each indicator is min-max normalised (direction-aware), a
  gap takes the unit's mean normalised score on the other indicators of the same group (e.g. its
  pillar), mapped back to the indicator's scale (COINr ``impute_by = "row"``,
  ``normalise_first = TRUE``). This is the value an arithmetic mean would implicitly assign by
  skipping the gap.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from qala.core.errors import ConvergenceError

FloatArray = npt.NDArray[np.float64]


def impute_mean(data: pd.DataFrame, *, median: bool = False) -> pd.DataFrame:
    fill = data.median() if median else data.mean()
    return data.fillna(fill)


def impute_group(
    data: pd.DataFrame, groups: Sequence[object], *, median: bool = False
) -> pd.DataFrame:
    x = data.to_numpy(dtype=float, copy=True)
    labels = pd.Series(list(groups), index=data.index)
    stat = np.nanmedian if median else np.nanmean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing group gives NaN
        for label in labels.dropna().unique():
            rows = (labels == label).to_numpy()
            block = x[rows]
            x[rows] = np.where(np.isnan(block), stat(block, axis=0), block)
    out = pd.DataFrame(x, index=data.index, columns=data.columns)
    # units in an all-missing group (or without a group) fall back to the overall statistic
    return impute_mean(out, median=median) if out.isna().to_numpy().any() else out


def impute_previous(
    data: pd.DataFrame, history: pd.DataFrame, *, max_gap: int | None = None
) -> pd.DataFrame:
    """Fill from ``history`` (rows: units, a MultiIndex (unit, time) sorted by time).

    ``history`` holds the earlier periods only; the latest non-missing value per unit and
    indicator is carried forward. ``max_gap`` limits how many periods back a value may come from.
    """
    if history.empty:
        return data.copy()
    hist = history.sort_index(level=1)
    if max_gap is not None:
        times = sorted(hist.index.get_level_values(1).unique())
        keep = set(times[-max_gap:])
        hist = hist[hist.index.get_level_values(1).isin(keep)]
    last = hist.groupby(level=0).last()  # last non-null per column
    last = last.reindex(index=data.index, columns=data.columns)
    return data.fillna(last)


def impute_knn(data: pd.DataFrame, *, k: int = 5) -> pd.DataFrame:
    from sklearn.impute import KNNImputer

    mu = data.mean()
    sd = data.std(ddof=1).replace(0, 1.0).fillna(1.0)
    z = (data - mu) / sd
    filled = KNNImputer(n_neighbors=k).fit_transform(z.to_numpy())
    out = pd.DataFrame(filled, index=data.index, columns=data.columns) * sd + mu
    return data.where(data.notna(), out)


def impute_regression(data: pd.DataFrame, *, max_iter: int = 25, seed: int = 0) -> pd.DataFrame:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    imputer = IterativeImputer(max_iter=max_iter, random_state=seed, sample_posterior=False)
    filled = imputer.fit_transform(data.to_numpy())
    out = pd.DataFrame(filled, index=data.index, columns=data.columns)
    return data.where(data.notna(), out)


def impute_em(
    data: pd.DataFrame, *, max_iter: int = 200, tol: float = 1e-6, ridge: float = 1e-6
) -> pd.DataFrame:
    """EM for a multivariate normal with missing values; returns conditional expectations."""
    x = data.to_numpy(dtype=float)
    n, p = x.shape
    miss = np.isnan(x)
    if not miss.any():
        return data.copy()
    all_missing = miss.all(axis=0)
    if all_missing.any():
        bad = [str(c) for c, m in zip(data.columns, all_missing, strict=True) if m]
        raise ValueError(f"EM imputation needs at least one value per indicator; none for {bad}")
    # standardise for conditioning, undo at the end
    mu0 = np.nanmean(x, axis=0)
    sd0 = np.nanstd(x, axis=0, ddof=1)
    sd0[~np.isfinite(sd0) | (sd0 == 0)] = 1.0
    z = (x - mu0) / sd0
    filled = np.where(miss, 0.0, z)
    mu = filled.mean(axis=0)
    sigma = np.cov(filled, rowvar=False) + ridge * np.eye(p)
    for _ in range(max_iter):
        correction = np.zeros((p, p))
        new = filled.copy()
        for i in range(n):
            m = miss[i]
            if not m.any():
                continue
            o = ~m
            if o.any():
                s_oo = sigma[np.ix_(o, o)]
                s_mo = sigma[np.ix_(m, o)]
                coef = np.linalg.solve(s_oo, s_mo.T).T
                new[i, m] = mu[m] + coef @ (z[i, o] - mu[o])
                correction[np.ix_(m, m)] += sigma[np.ix_(m, m)] - coef @ s_mo.T
            else:
                new[i, m] = mu[m]
                correction[np.ix_(m, m)] += sigma[np.ix_(m, m)]
        mu_new = new.mean(axis=0)
        d = new - mu_new
        sigma_new = (d.T @ d + correction) / n + ridge * np.eye(p)
        change = float(np.max(np.abs(new - filled)))
        filled, mu, sigma = new, mu_new, sigma_new
        if change < tol:
            break
    else:
        raise ConvergenceError(f"EM imputation did not converge in {max_iter} iterations")
    out = pd.DataFrame(filled * sd0 + mu0, index=data.index, columns=data.columns)
    return data.where(data.notna(), out)


def impute_row_mean(
    data: pd.DataFrame,
    *,
    directions: Sequence[int] | None = None,
    column_groups: Sequence[Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Shadow imputation by the unit's mean normalised score within each column group."""
    x = data.to_numpy(dtype=float)
    d = np.ones(x.shape[1]) if directions is None else np.asarray(directions, dtype=float)
    lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
    span = np.where(hi > lo, hi - lo, np.nan)
    z = np.where(d > 0, (x - lo) / span, (hi - x) / span)
    groups = [list(data.columns)] if column_groups is None else [list(g) for g in column_groups]
    pos = {c: j for j, c in enumerate(data.columns)}
    filled = z.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a unit with no value in a group
        for group in groups:
            cols = [pos[c] for c in group if c in pos]
            block = z[:, cols]
            row_mean = np.nanmean(block, axis=1, keepdims=True)
            filled[:, cols] = np.where(np.isnan(block), row_mean, block)
    back = np.where(d > 0, lo + filled * span, hi - filled * span)
    out = pd.DataFrame(np.where(np.isnan(x), back, x), index=data.index, columns=data.columns)
    return out
