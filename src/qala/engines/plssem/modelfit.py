"""Overall model fit of a PLS-SEM model: SRMR, d_ULS and d_G, and the bootstrap test of exact fit.

The model-implied indicator correlation matrix follows cSEM's ``fit()`` (Dijkstra & Henseler
2015): ``Σ = Λ' V Λ + Θ``, where ``Λ`` holds the loadings (PLSc-corrected for common factors,
``S_kk w_k`` for composites), ``Θ`` the unit diagonal's remainder, and ``V`` the construct
correlations — as estimated for the *saturated* model (every construct correlates freely) or as
implied by the structural model for the *estimated* model. Within a composite's block the
observed correlations stand (a composite leaves its indicators' correlations free); within a
common factor's block they are ``λ_i λ_j``.

The exact-fit test bootstraps Bollen–Stine transformed data ``Z S^{-1/2} Σ^{1/2}``, whose
correlation matrix is ``Σ`` itself, so every resample comes from a population where the model
holds; a distance above the 95 % (99 %) quantile of the resampled distances (HI95, HI99)
rejects exact fit at the 5 % (1 %) level.

Everything here works on stacks of correlation matrices (a leading batch axis), as the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qala.core.errors import SpecificationError
from qala.engines.plssem import kernel as k
from qala.engines.plssem.estimation import fit_counts

if TYPE_CHECKING:
    from qala.engines.plssem.estimates import PLSEstimates

MEASURES: tuple[str, ...] = ("srmr", "d_uls", "d_g")
MODELS: tuple[str, ...] = ("saturated", "estimated")
QUANTILES: dict[str, float] = {"hi95": 0.95, "hi99": 0.99}


def common_factors(layout: k.Layout, consistent: bool) -> np.ndarray:
    """Which constructs are common factors: reflective (``=~``), several Mode A indicators,
    and PLSc asked for. The rest are composites."""
    n_items = layout.membership.sum(axis=0)
    reflective = np.array(layout.reflective) & ~np.array(layout.mode_b) & (n_items > 1)
    return np.asarray(reflective & consistent)


def implied_construct_correlations(est: k.Estimates, layout: k.Layout) -> k.Array:
    """Construct correlations implied by the structural model (b × K × K), as cSEM's ``fit()``:
    exogenous correlations as estimated, structural error variances ``1 - R²``, the implied
    matrix ``(I - B)^-1 (Γ Φ Γ' + Ψ) (I - B)^-T`` with its diagonal set to one."""
    k_count = len(layout.constructs)
    endo = layout.endogenous
    exo = [j for j in range(k_count) if j not in endo]
    r = est.construct_corr
    path = np.swapaxes(est.paths, 1, 2)  # [target, source], cSEM's orientation
    b_mat = path[:, endo][:, :, endo]
    gamma = path[:, endo][:, :, exo]
    phi = r[:, exo][:, :, exo]
    zeta = 1.0 - (path * r).sum(axis=2)[:, endo]
    eye = np.eye(len(endo))
    inverse = np.linalg.inv(eye - b_mat)
    exo_endo = phi @ np.swapaxes(gamma, 1, 2) @ np.swapaxes(inverse, 1, 2)
    psi = zeta[:, :, None] * eye
    inner = gamma @ phi @ np.swapaxes(gamma, 1, 2) + psi
    endo_endo = inverse @ inner @ np.swapaxes(inverse, 1, 2)
    idx = np.arange(len(endo))
    endo_endo[:, idx, idx] = 1.0
    ex, en = np.asarray(exo, dtype=np.intp), np.asarray(endo, dtype=np.intp)
    out = np.empty_like(r)
    out[:, ex[:, None], ex] = phi
    out[:, ex[:, None], en] = exo_endo
    out[:, en[:, None], ex] = np.swapaxes(exo_endo, 1, 2)
    out[:, en[:, None], en] = endo_endo
    return out


def implied_correlations(
    s: k.Array, est: k.Estimates, layout: k.Layout, *, consistent: bool, saturated: bool
) -> k.Array:
    """Model-implied indicator correlation matrices (b × q × q) of the saturated or the
    estimated model."""
    lam = est.loadings  # b × q × K, own-construct cells only
    v = est.construct_corr if saturated else implied_construct_correlations(est, layout)
    sigma = lam @ v @ np.swapaxes(lam, 1, 2)
    q = s.shape[1]
    idx = np.arange(q)
    sigma[:, idx, idx] = 1.0  # Θ = 1 - Σλ² on the diagonal, V's diagonal being one
    factors = common_factors(layout, consistent)
    for j in np.flatnonzero(~factors):
        items = np.asarray(layout.items_of(int(j)))
        sigma[:, items[:, None], items] = s[:, items[:, None], items]
    return np.asarray(sigma)


def srmr(s: k.Array, sigma: k.Array) -> k.Array:
    """Standardised root mean square residual over the lower triangle, diagonal included."""
    lower_i, lower_j = np.tril_indices(s.shape[1])
    residual = (s - sigma)[:, lower_i, lower_j]
    return np.asarray(np.sqrt((residual**2).mean(axis=1)))


def d_uls(s: k.Array, sigma: k.Array) -> k.Array:
    """Squared Euclidean distance ``½ Σ_ij (s_ij - σ_ij)²`` over the whole matrix."""
    return np.asarray(0.5 * ((s - sigma) ** 2).sum(axis=(1, 2)))


def d_g(s: k.Array, sigma: k.Array) -> k.Array:
    """Geodesic distance ``½ Σ (ln φ_i)²`` over the eigenvalues φ of ``S⁻¹ Σ`` (natural
    logarithm, as Dijkstra & Henseler 2015 define it); NaN where ``Σ`` is not positive
    definite."""
    out = np.full(s.shape[0], np.nan)
    finite = np.flatnonzero(np.isfinite(s).all(axis=(1, 2)) & np.isfinite(sigma).all(axis=(1, 2)))
    try:
        lower_inv = np.linalg.inv(np.linalg.cholesky(s[finite]))
    except np.linalg.LinAlgError:  # a member's S is not positive definite: member by member
        if finite.size > 1:
            for i in finite:
                out[i] = d_g(s[i : i + 1], sigma[i : i + 1])[0]
        return out
    similar = lower_inv @ sigma[finite] @ np.swapaxes(lower_inv, 1, 2)
    phi = np.linalg.eigvalsh(similar)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = 0.5 * (np.log(phi) ** 2).sum(axis=1)
    values[(phi <= 0).any(axis=1)] = np.nan
    out[finite] = values
    return out


def distances(s: k.Array, sigma: k.Array) -> dict[str, k.Array]:
    return {"srmr": srmr(s, sigma), "d_uls": d_uls(s, sigma), "d_g": d_g(s, sigma)}


def _symmetric_power(matrix: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    if values.min() <= 1e-12:
        raise SpecificationError(
            "the model-implied indicator correlation matrix is not positive definite, so the "
            "Bollen–Stine transformation (and the exact-fit test) is undefined for this model"
        )
    return np.asarray((vectors * values**power) @ vectors.T)


def bollen_stine(z: np.ndarray, s: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Standardised data ``z`` (n × q) rotated so that its correlation matrix is ``sigma``."""
    return np.asarray(z @ _symmetric_power(s, -0.5) @ _symmetric_power(sigma, 0.5))


@dataclass
class ModelFitResults:
    """SRMR, d_ULS and d_G of the saturated and the estimated model, with the exact-fit test.

    ``values[model][measure]`` is the distance; with the test, ``quantiles[model][measure]``
    holds HI95/HI99 and ``p_values[model][measure]`` the share of resampled distances at least
    as large as the observed one.
    """

    values: dict[str, dict[str, float]]
    measurement: str  # "composite", "common factor" or "mixed"
    n_boot: int = 0
    n_failed: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    quantiles: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    p_values: dict[str, dict[str, float]] = field(default_factory=dict)

    def supported(
        self, model: str = "estimated", measure: str = "srmr", level: str = "hi95"
    ) -> bool:
        """Whether exact fit is not rejected: the distance stays below the quantile."""
        return self.values[model][measure] <= self.quantiles[model][measure][level]

    def to_dict(self) -> dict[str, Any]:
        """``{"srmr": {"saturated": {"value", "hi95", "hi99", "p"}, "estimated": {...}}, …}``
        and a ``model_fit`` entry with the test's settings."""
        out: dict[str, Any] = {}
        for measure in MEASURES:
            entry: dict[str, Any] = {}
            for model in MODELS:
                cell: dict[str, float | None] = {"value": _clean(self.values[model][measure])}
                for level in QUANTILES:
                    q = self.quantiles.get(model, {}).get(measure, {}).get(level)
                    cell[level] = None if q is None else _clean(q)
                p = self.p_values.get(model, {}).get(measure)
                cell["p"] = None if p is None else _clean(p)
                entry[model] = cell
            out[measure] = entry
        out["model_fit"] = {
            "measurement": self.measurement,
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
            "seed": self.seed,
            "test": "Bollen-Stine bootstrap of exact fit (Dijkstra & Henseler 2015)",
        }
        return out

    def summary(self, digits: int = 3) -> str:
        fmt = f"{{:.{digits}f}}".format
        head = f"Model fit ({self.measurement} measurement)"
        lines = [head, "-" * 60]
        tested = bool(self.quantiles)
        header = f"  {'':<10}{'model':<11}{'value':>9}"
        if tested:
            header += f"{'HI95':>9}{'HI99':>9}{'p':>8}"
        lines.append(header)
        for measure in MEASURES:
            label = {"srmr": "SRMR", "d_uls": "d_ULS", "d_g": "d_G"}[measure]
            for model in MODELS:
                row = f"  {label:<10}{model:<11}{fmt(self.values[model][measure]):>9}"
                if tested:
                    q = self.quantiles[model][measure]
                    row += f"{fmt(q['hi95']):>9}{fmt(q['hi99']):>9}"
                    row += f"{fmt(self.p_values[model][measure]):>8}"
                lines.append(row)
        if tested:
            lines.append(
                f"  exact-fit test: {self.n_boot} Bollen–Stine resamples, seed {self.seed}; "
                "a value above HI95 (HI99) rejects exact fit at 5 % (1 %)"
            )
        return "\n".join(lines)


def _clean(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _measurement(layout: k.Layout, consistent: bool) -> str:
    factors = common_factors(layout, consistent)
    n_items = layout.membership.sum(axis=0)
    multi = n_items > 1
    if not factors[multi].any():
        return "composite"
    return "common factor" if factors[multi].all() else "mixed"


def model_fit(
    results: PLSEstimates,
    *,
    n_boot: int = 0,
    seed: int | None = None,
    indices: np.ndarray | None = None,
) -> ModelFitResults:
    """SRMR, d_ULS and d_G of a fitted model and, with ``n_boot`` > 0, the bootstrap test of
    exact overall fit for the saturated and the estimated model (each on its own Bollen–Stine
    transformed data, from the same seeded resamples).

    ``indices`` (resamples × rows, zero-based row numbers) replaces the seeded plan, to replay
    another program's resamples (``n_boot`` and ``seed`` are then ignored).

    Models with higher-order constructs or interaction terms are not supported (their implied
    indicator correlations need the first stage's model as well).
    """
    plan = results.plan
    if plan.first is not None:
        raise SpecificationError(
            "model fit measures support models without higher-order constructs or interaction terms"
        )
    if indices is not None:
        indices = np.asarray(indices)
        if indices.ndim != 2 or indices.shape[1] != len(results.values) or len(indices) < 2:
            raise SpecificationError("`indices` must be at least 2 resamples of every row")
        if indices.min() < 0 or indices.max() >= len(results.values):
            raise SpecificationError("`indices` must be row numbers of the data")
        n_boot, seed = len(indices), None
    if n_boot < 0 or n_boot == 1:
        raise SpecificationError("`n_boot` must be 0 (no test) or at least 2")
    layout = plan.final
    consistent = results.consistent
    s = results.indicator_correlations[None]
    est = results.estimates
    values: dict[str, dict[str, float]] = {}
    sigmas: dict[str, np.ndarray] = {}
    for model in MODELS:
        sigma = implied_correlations(
            s, est, layout, consistent=consistent, saturated=model == "saturated"
        )
        sigmas[model] = sigma[0]
        values[model] = {m: float(v[0]) for m, v in distances(s, sigma).items()}
    out = ModelFitResults(values, _measurement(layout, consistent), seed=seed)
    if n_boot == 0:
        return out
    from qala.engines.plssem.bootstrap import counts_from_indices, resample_indices

    x = results.values
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    if indices is None:
        indices = resample_indices(len(z), n_boot, seed)
    counts = counts_from_indices(indices, len(z))
    out.n_boot = n_boot
    with k.single_threaded_blas():
        for model in MODELS:
            rotated = bollen_stine(z, s[0], sigmas[model])
            boot = _resampled_distances(results, rotated, counts, saturated=model == "saturated")
            ok = np.isfinite(np.stack(list(boot.values()))).all(axis=0)
            out.n_failed[model] = int((~ok).sum())
            out.quantiles[model] = {}
            out.p_values[model] = {}
            for measure, draws in boot.items():
                kept = draws[ok]
                out.quantiles[model][measure] = {
                    level: float(np.quantile(kept, q)) for level, q in QUANTILES.items()
                }
                out.p_values[model][measure] = float((kept >= values[model][measure]).mean())
    return out


def _resampled_distances(
    results: PLSEstimates, data: np.ndarray, counts: np.ndarray, *, saturated: bool
) -> dict[str, np.ndarray]:
    """Distances of every resample of ``data`` (NaN where the fit failed), in batches."""
    layout = results.plan.final
    centred = data - data.mean(axis=0)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, counts.shape[0], 500):
        fit = fit_counts(
            results.plan,
            centred,
            counts[start : start + 500],
            scheme=results.scheme,
            consistent=results.consistent,
            max_iter=results.model.max_iter,
            tol=results.model.tol,
        )
        s = fit.s_final
        bad = ~fit.converged
        with np.errstate(invalid="ignore", divide="ignore"):
            safe = np.where(bad[:, None, None], np.eye(s.shape[1]), s)
            sigma = implied_correlations(
                safe, fit.estimates, layout, consistent=results.consistent, saturated=saturated
            )
            part = distances(safe, sigma)
        for values in part.values():
            values[bad] = np.nan
        parts.append(part)
    return {m: np.concatenate([p[m] for p in parts]) for m in MEASURES}
