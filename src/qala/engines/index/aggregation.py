"""Aggregation of children scores into a parent score.

All means are weighted and skip missing children by renormalising the weights of the available
ones (COINr's default); ``min_coverage`` turns a parent missing when the available share of
children falls below it, and ``missing="propagate"`` makes any missing child give a missing parent.

* arithmetic ``Σ w x / Σ w`` (fully compensatory);
* geometric ``exp(Σ w ln x / Σ w)`` (needs x > 0; partially compensatory);
* harmonic ``Σ w / Σ (w / x)`` (needs x ≠ 0; least compensatory of the three);
* weighted median: the value at which the cumulative weight reaches one half (robust);
* Copeland: a weighted pairwise contest; unit *a* beats *b* when the weights of the children on
  which *a* is better (ties count half) exceed half; score = wins − losses (Munda & Nardo 2009,
  OECD/JRC Handbook 2008 §6.2, non-compensatory);
* benefit of the doubt: each unit gets the weights most favourable to it, a DEA linear programme
  (Cherchye et al. 2007): maximise Σ w_k y_ik subject to Σ w_k y_jk ≤ 1 for every unit j and
  w ≥ 0 (optionally bounded shares); the score lies in [0, 1] (1 = on the frontier).

Functions here take ``values`` of shape (units, children) and weights of shape (children,);
``*_batch`` variants take values (units, reps, children) or (units, 1, children) and weights
(reps, children) and return (units, reps), used by the uncertainty analysis.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MEANS = ("arithmetic", "geometric", "harmonic")
METHODS = (*MEANS, "median", "copeland", "bod")


class AggregationDomainError(ValueError):
    """Values outside the domain of the mean (e.g. zero or negative for the geometric mean)."""

    def __init__(self, method: str, rows: list[int]) -> None:
        self.method = method
        self.rows = rows
        need = "> 0" if method == "geometric" else "≠ 0"
        super().__init__(f"{method} mean needs values {need}")


def mean_batch(
    values: FloatArray,
    weights: FloatArray,
    method: str = "arithmetic",
    *,
    min_coverage: float | None = None,
    missing: str = "available",
    strict: bool = True,
) -> FloatArray:
    """Weighted means over the last axis; see module docstring for shapes.

    With ``strict`` a value outside the mean's domain raises :class:`AggregationDomainError`;
    otherwise the affected results become NaN.
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if method not in MEANS:
        raise ValueError(f"unknown mean `{method}`; expected one of {MEANS}")
    present = ~np.isnan(v)
    if method == "geometric":
        bad = present & (v <= 0)
    elif method == "harmonic":
        bad = present & (v == 0)
    else:
        bad = None
    bad_rows = bad.any(axis=-1) if bad is not None else None
    if strict and bad_rows is not None and bad_rows.any():
        rows = sorted({int(i) for i in np.argwhere(bad_rows)[:, 0]})
        raise AggregationDomainError(method, rows)
    complete = bool(present.all()) and (bad_rows is None or not bad_rows.any())
    if complete:
        # fast path (the usual case after imputation): no masks, one transform
        with np.errstate(divide="ignore", invalid="ignore"):
            f = v if method == "arithmetic" else np.log(v) if method == "geometric" else 1.0 / v
        num = _weighted_sum(f, w)
        den = np.broadcast_to(w.sum(axis=-1), num.shape)
    else:
        ok = present if bad is None else present & ~bad
        with np.errstate(divide="ignore", invalid="ignore"):
            if method == "arithmetic":
                f = np.where(ok, v, 0.0)
            elif method == "geometric":
                f = np.where(ok, np.log(np.where(ok, v, 1.0)), 0.0)
            else:
                f = np.where(ok, 1.0 / np.where(ok, v, 1.0), 0.0)
        num = _weighted_sum(f, w)
        den = _weighted_sum(ok.astype(float), w)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "arithmetic":
            out = num / den
        elif method == "geometric":
            out = np.exp(num / den)
        else:
            out = den / num
    out = np.where(den > 0, out, np.nan)
    k = v.shape[-1]
    if missing not in ("available", "propagate"):
        raise ValueError("missing must be `available` or `propagate`")
    if missing == "propagate" or min_coverage is not None:
        n_present = np.broadcast_to(present.sum(axis=-1), out.shape)
        if missing == "propagate":
            out = np.where(n_present < k, np.nan, out)
        if min_coverage is not None:
            out = np.where(n_present / k < min_coverage, np.nan, out)
    if bad_rows is not None:
        out = np.where(np.broadcast_to(bad_rows, out.shape), np.nan, out)
    return np.asarray(out, dtype=float)


def _weighted_sum(f: FloatArray, w: FloatArray) -> FloatArray:
    """Σ_k f[..., k] w[..., k] as matrix products (BLAS) rather than broadcast temporaries."""
    if f.ndim == 2 and w.ndim == 1:
        return np.asarray(f @ w, dtype=float)
    if f.ndim == 3 and f.shape[1] == 1 and w.ndim == 2:
        return np.asarray(f[:, 0, :] @ w.T, dtype=float)
    if f.ndim == 3 and w.ndim == 2:
        return np.asarray(np.einsum("nrk,rk->nr", f, w), dtype=float)
    return np.asarray((f * w).sum(axis=-1), dtype=float)


def weighted_mean(
    values: FloatArray,
    weights: FloatArray,
    method: str = "arithmetic",
    *,
    min_coverage: float | None = None,
    missing: str = "available",
) -> FloatArray:
    """Weighted arithmetic/geometric/harmonic mean of each row of ``values`` (units × children)."""
    return mean_batch(values, weights, method, min_coverage=min_coverage, missing=missing)


def weighted_median(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted median of each row: the value where the cumulative weight share reaches one half
    (midway between two values when it lands exactly on one half, so equal weights give the
    ordinary median). Missing values are skipped; robust to outlying children."""
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    out = np.full(v.shape[0], np.nan)
    for i, row in enumerate(v):
        ok = ~np.isnan(row) & (w > 0)
        if not ok.any():
            continue
        x, ww = row[ok], w[ok]
        order = np.argsort(x, kind="mergesort")
        x, ww = x[order], ww[order] / ww.sum()
        cum = np.cumsum(ww)
        j = int(np.searchsorted(cum, 0.5 - 1e-12))
        if abs(cum[j] - 0.5) < 1e-12 and j + 1 < x.size:
            out[i] = (x[j] + x[j + 1]) / 2
        else:
            out[i] = x[j]
    return out


def outranking_matrix(values: FloatArray, weights: FloatArray) -> FloatArray:
    """``e[a, b]`` = share of weight on which unit a beats b (ties count half; NaN skipped)."""
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    n = v.shape[0]
    out = np.zeros((n, n))
    for start in range(0, n, 256):
        a = v[start : start + 256, None, :]
        b = v[None, :, :]
        both = ~np.isnan(a) & ~np.isnan(b)
        wins = np.where(both & (a > b), w, 0.0).sum(axis=-1)
        ties = np.where(both & (a == b), w, 0.0).sum(axis=-1)
        total = np.where(both, w, 0.0).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + 256] = np.where(total > 0, (wins + 0.5 * ties) / total, 0.5)
    np.fill_diagonal(out, 0.0)
    return out


def copeland(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Copeland score: number of pairwise wins minus losses under the weighted majority."""
    e = outranking_matrix(values, weights)
    wins = (e > 0.5).sum(axis=1)
    losses = (e < 0.5).sum(axis=1) - 1  # the diagonal (0) is not a loss
    score = (wins - losses).astype(float)
    score[np.isnan(values).all(axis=1)] = np.nan
    return np.asarray(score, dtype=float)


def benefit_of_the_doubt(
    values: FloatArray,
    *,
    min_share: float | None = None,
    max_share: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """DEA benefit-of-the-doubt scores and each unit's own weights.

    ``min_share``/``max_share`` bound each child's share ``w_k y_ik / Σ_k w_k y_ik`` of the unit's
    score (the pie-share restrictions of Cherchye et al. 2007), which prevents a unit from
    putting all weight on one child. Missing values count as 0. Returns (scores, weights) with
    weights of shape (units, children).
    """
    y = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
    if (y < 0).any():
        raise ValueError("benefit of the doubt needs non-negative values (normalise first)")
    from scipy.optimize import linprog  # imported here: scipy.optimize is slow to import

    n, k = y.shape
    scores = np.full(n, np.nan)
    weights = np.full((n, k), np.nan)
    for i in range(n):
        a_ub = [y]
        b_ub = [np.ones(n)]
        if min_share is not None:
            # min_share * Σ w y_i - w_k y_ik <= 0
            a_ub.append(min_share * np.tile(y[i], (k, 1)) - np.diag(y[i]))
            b_ub.append(np.zeros(k))
        if max_share is not None:
            a_ub.append(np.diag(y[i]) - max_share * np.tile(y[i], (k, 1)))
            b_ub.append(np.zeros(k))
        res = linprog(
            -y[i],
            A_ub=np.vstack(a_ub),
            b_ub=np.concatenate(b_ub),
            bounds=[(0, None)] * k,
            method="highs",
        )
        if res.status == 0:
            scores[i] = -res.fun
            weights[i] = res.x
    return scores, weights
