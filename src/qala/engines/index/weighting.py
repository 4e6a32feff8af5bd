"""Weighting methods. Each returns weights of the children of each aggregate.

* ``equal`` — every child of a parent weighs the same;
* ``budget`` — budget allocation: each expert spreads points over the children; a child's weight is
  the mean of the experts' shares (OECD/JRC Handbook 2008 §6.1.3);
* ``pca`` — squared loadings of the first principal component of the standardised children
  (they sum to one), the usual PCA weights;
* ``factor`` — the Handbook's factor-analysis weights (Nicoletti et al. 2000): keep components
  with eigenvalue > 1, rotate them with varimax, assign each child to the factor on which its
  squared loading is largest, weight = squared loading scaled to unity within the factor times the
  factor's share of the explained variance;
* ``optimise_correlation`` — weights chosen so that each child's Pearson correlation with the
  parent (normalised to sum to one) is as close as possible to its intended importance (equal by
  default), as in COINr's ``get_opt_weights`` (Becker et al. 2017).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from .aggregation import weighted_mean

FloatArray = npt.NDArray[np.float64]


def budget_allocation(
    allocations: Mapping[str, Mapping[str, float]], codes: Sequence[str]
) -> dict[str, float]:
    """Mean share per code over experts; each expert's points are scaled to sum to one."""
    shares = []
    for expert, points in allocations.items():
        unknown = set(points) - set(codes)
        if unknown:
            raise ValueError(f"expert `{expert}` allocates to unknown codes {sorted(unknown)}")
        total = float(sum(points.values()))
        if total <= 0:
            raise ValueError(f"expert `{expert}` allocates no points")
        shares.append([float(points.get(c, 0.0)) / total for c in codes])
    if not shares:
        raise ValueError("budget allocation needs at least one expert")
    mean = np.mean(np.array(shares), axis=0)
    return dict(zip(codes, mean.tolist(), strict=True))


def _standardise(x: FloatArray) -> FloatArray:
    # complete cases only: PCA of imputed data is the norm; drop rows with gaps otherwise
    rows = ~np.isnan(x).any(axis=1)
    x = x[rows]
    sd = x.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    return np.asarray((x - x.mean(axis=0)) / sd, dtype=float)


def pca_weights(x: FloatArray) -> FloatArray:
    """Squared first-component loadings of the correlation matrix (sum to one)."""
    z = _standardise(x)
    if z.shape[1] == 1:
        return np.ones(1)
    corr = np.corrcoef(z, rowvar=False)
    vals, vecs = np.linalg.eigh(corr)
    first = vecs[:, np.argmax(vals)]
    w = first**2
    return np.asarray(w / w.sum(), dtype=float)


def varimax(loadings: FloatArray, *, max_iter: int = 500, tol: float = 1e-8) -> FloatArray:
    """Kaiser's varimax rotation of a loading matrix (p × k)."""
    p, k = loadings.shape
    if k < 2:
        return loadings
    rotation = np.eye(k)
    objective = 0.0
    for _ in range(max_iter):
        lam = loadings @ rotation
        u, s, vt = np.linalg.svd(loadings.T @ (lam**3 - lam @ np.diag(np.sum(lam**2, axis=0)) / p))
        rotation = u @ vt
        new = float(np.sum(s))
        if new < objective * (1 + tol):
            break
        objective = new
    return np.asarray(loadings @ rotation, dtype=float)


def factor_weights(x: FloatArray) -> FloatArray:
    """The OECD/JRC Handbook's factor-analysis weights (see module docstring)."""
    z = _standardise(x)
    p = z.shape[1]
    if p == 1:
        return np.ones(1)
    corr = np.corrcoef(z, rowvar=False)
    vals, vecs = np.linalg.eigh(corr)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    keep = max(1, int(np.sum(vals > 1.0)))
    loadings = vecs[:, :keep] * np.sqrt(np.clip(vals[:keep], 0, None))
    rotated = varimax(loadings)
    sq = rotated**2
    explained = sq.sum(axis=0)  # variance explained by each rotated factor
    scaled = sq / explained  # squared loadings scaled to unity within each factor
    factor_share = explained / explained.sum()
    owner = np.argmax(sq, axis=1)
    w = np.array([scaled[i, owner[i]] * factor_share[owner[i]] for i in range(p)])
    return np.asarray(w / w.sum(), dtype=float)


def optimise_correlation(
    x: FloatArray,
    *,
    importance: Sequence[float] | None = None,
    method: str = "arithmetic",
    lower: float = 0.01,
) -> FloatArray:
    """Weights whose children–parent correlations match ``importance`` (sum-normalised)."""
    k = x.shape[1]
    if k == 1:
        return np.ones(1)
    target = np.ones(k) if importance is None else np.asarray(importance, dtype=float)
    target = target / target.sum()
    ok = ~np.isnan(x).any(axis=1)
    xs = x[ok]

    def loss(w: FloatArray) -> float:
        y = weighted_mean(xs, np.abs(w) + 1e-12, method)
        if np.std(y) == 0:
            return 1e6
        r = np.array([np.corrcoef(xs[:, j], y)[0, 1] for j in range(k)])
        r = np.nan_to_num(r)
        if r.sum() <= 0:
            return 1e6
        return float(np.sum((r / r.sum() - target) ** 2))

    from scipy.optimize import minimize  # imported here: scipy.optimize is slow to import

    start = target.copy()
    res = minimize(loss, start, method="L-BFGS-B", bounds=[(lower, 1.0)] * k)
    w = np.abs(res.x)
    return np.asarray(w / w.sum(), dtype=float)
