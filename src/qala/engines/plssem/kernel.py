"""Batched PLS kernel: the whole algorithm runs on indicator correlation matrices.

With standardised indicators every quantity the PLS algorithm needs is a function of the
indicator correlation matrix ``S`` and the outer weights ``W``: score covariances are ``W'SW``,
item-score covariances ``SW``, Mode A updates ``S W E`` and Mode B updates solve a block of ``S``.
So one estimation costs O(p²K) per iteration regardless of the sample size, and many
estimations (bootstrap resamples, jackknife, cross-validation folds, permutations) run at once
as stacks of small matrices: arrays here carry a leading batch axis ``b``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Scheme = Literal["path", "factor", "centroid"]
SCHEMES: tuple[str, ...] = ("path", "factor", "centroid")


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread: the batched kernel multiplies many small matrices,
    where BLAS threads only add synchronisation (several times slower on a busy machine), and
    bootstrap worker processes must not each start a thread per core."""
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class Layout:
    """Index form of one estimation stage.

    ``membership[i, k]`` is 1 when column ``i`` is an indicator of construct ``k``;
    ``adjacency[i, j]`` is 1 for a path ``i -> j``.
    """

    columns: tuple[str, ...]
    constructs: tuple[str, ...]
    membership: Array
    mode_b: tuple[bool, ...]
    reflective: tuple[bool, ...]
    adjacency: Array

    @property
    def endogenous(self) -> list[int]:
        return [j for j in range(len(self.constructs)) if self.adjacency[:, j].any()]

    def predecessors(self, j: int) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.adjacency[:, j])]

    @cached_property
    def regressions(self) -> tuple[tuple[int, npt.NDArray[np.intp]], ...]:
        """(construct, its predecessors) for each endogenous construct: the inner loop of
        every PLS iteration, so worked out once per layout."""
        return tuple((j, np.asarray(self.predecessors(j), dtype=np.intp)) for j in self.endogenous)

    def items_of(self, k: int) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.membership[:, k])]


SMALL_SYSTEM = 2  # up to this size, vectorised elimination beats one LAPACK call per member


def batched_solve(a: Array, b: Array) -> Array:
    """Solve ``a x = b`` for a stack; singular members give NaN instead of failing the stack.

    One- and two-variable systems (most constructs have one or two predecessors) are solved
    across the whole stack at once: ``np.linalg.solve`` calls LAPACK once per member, which
    dominated the bootstrap; for larger systems it is still the faster of the two.
    """
    m = a.shape[-1]
    if m <= SMALL_SYSTEM:
        return _eliminate(a, b)
    try:
        return np.asarray(np.linalg.solve(a, b[..., None])[..., 0], dtype=np.float64)
    except np.linalg.LinAlgError:
        out = np.full(b.shape, np.nan)
        for i in range(a.shape[0]):
            with contextlib.suppress(np.linalg.LinAlgError):
                out[i] = np.linalg.solve(a[i], b[i])
        return out


def _eliminate(a: Array, b: Array) -> Array:
    """Gaussian elimination with partial pivoting (as LAPACK's ``gesv``), vectorised over the
    stack; a member with an exactly zero pivot (singular) gets NaN, as the LAPACK path gives."""
    m = a.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if m == 1:
            x = b / a[:, :, 0]
            x[a[:, 0, 0] == 0] = np.nan
            return np.asarray(x)
        lu = np.array(a, dtype=np.float64)
        x = np.array(b, dtype=np.float64)
        rows = np.arange(lu.shape[0])
        singular = np.zeros(lu.shape[0], dtype=bool)
        for k in range(m):
            pivot = k + np.argmax(np.abs(lu[:, k:, k]), axis=1)
            swap = pivot != k
            if swap.any():
                r, p = rows[swap], pivot[swap]
                lu[r, k], lu[r, p] = lu[r, p], lu[r, k].copy()
                x[r, k], x[r, p] = x[r, p], x[r, k].copy()
            diagonal = lu[:, k, k]
            singular |= diagonal == 0
            factor = lu[:, k + 1 :, k] / diagonal[:, None]
            lu[:, k + 1 :, k + 1 :] -= factor[:, :, None] * lu[:, None, k, k + 1 :]
            x[:, k + 1 :] -= factor * x[:, k, None]
        for k in range(m - 1, -1, -1):
            x[:, k] = (x[:, k] - (lu[:, k, k + 1 :] * x[:, k + 1 :]).sum(axis=1)) / lu[:, k, k]
    x[singular] = np.nan
    return np.asarray(x)


def correlations_from_counts(centred: Array, counts: Array) -> Array:
    """Weighted correlation matrices of ``centred`` (n × p) for each row of ``counts`` (b × n).

    ``counts`` holds how often each observation enters the sample: bootstrap multiplicities,
    or 0/1 for subsets (cross-validation folds, groups). Uses the n-1 denominator; members where
    a column is constant get NaN.
    """
    p = centred.shape[1]
    upper_i, upper_j = np.triu_indices(p)
    products = centred[:, upper_i] * centred[:, upper_j]
    n_eff = counts.sum(axis=1)
    means = counts @ centred / n_eff[:, None]
    second = counts @ products
    cov_upper = (second - n_eff[:, None] * means[:, upper_i] * means[:, upper_j]) / (
        n_eff[:, None] - 1.0
    )
    cov = np.empty((counts.shape[0], p, p))
    cov[:, upper_i, upper_j] = cov_upper
    cov[:, upper_j, upper_i] = cov_upper
    variance = np.diagonal(cov, axis1=1, axis2=2)
    scale = (centred**2).mean(axis=0) + 1e-300
    constant = (variance <= 1e-12 * scale).any(axis=1)
    sd = np.sqrt(np.clip(variance, 1e-300, None))
    corr: Array = cov / (sd[:, :, None] * sd[:, None, :])
    idx = np.arange(p)
    corr[:, idx, idx] = 1.0
    corr[constant] = np.nan
    return corr


def weighted_correlations_of_stack(values: Array, counts: Array) -> Array:
    """Weighted correlation matrices of a per-member data stack ``values`` (b × n × q)."""
    n_eff = counts.sum(axis=1)
    means = np.einsum("bn,bnq->bq", counts, values) / n_eff[:, None]
    centred = values - means[:, None, :]
    cov = np.einsum("bn,bni,bnj->bij", counts, centred, centred) / (n_eff[:, None, None] - 1.0)
    sd = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / (sd[:, :, None] * sd[:, None, :])
    bad = (sd <= 1e-12).any(axis=1)
    idx = np.arange(values.shape[2])
    corr[:, idx, idx] = 1.0
    corr[bad] = np.nan
    return np.asarray(corr)


def _normalise(s: Array, w: Array) -> Array:
    variance = (w * (s @ w)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(w / np.sqrt(variance)[:, None, :])


def score_correlations(s: Array, w: Array) -> Array:
    c = np.swapaxes(w, 1, 2) @ (s @ w)
    sd = np.sqrt(np.diagonal(c, axis1=1, axis2=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(c / (sd[:, :, None] * sd[:, None, :]))


def inner_weights(r: Array, layout: Layout, scheme: str) -> Array:
    """Inner weights ``E[i, j]``: how construct ``i`` enters the inner proxy of ``j``."""
    adj = layout.adjacency
    both = adj + adj.T
    if scheme == "factor":
        return r * both
    if scheme == "centroid":
        return np.sign(r) * both
    # path weighting: successors enter with their correlation, predecessors with the
    # coefficients of the regression of the construct on all of its predecessors
    e = r * adj.T
    for j, preds in layout.regressions:
        e[:, preds, j] = batched_solve(r[:, preds[:, None], preds], r[:, preds, j])
    return np.asarray(e)


@dataclass
class IterationResult:
    weights: Array  # b × q × K, unit-variance scores
    iterations: npt.NDArray[np.int64]
    converged: npt.NDArray[np.bool_]


def iterate(
    s: Array,
    layout: Layout,
    scheme: str,
    *,
    max_iter: int = 300,
    tol: float = 1e-7,
) -> IterationResult:
    """Run the PLS outer/inner iteration for a stack of correlation matrices.

    Each member stops on its own once the summed absolute change of its outer weights falls
    below ``tol`` (the same rule as seminr, so the same estimates); members whose correlation
    matrix is invalid (NaN) are skipped and reported as not converged.
    """
    b, q, _ = s.shape
    mask = layout.membership
    k_count = mask.shape[1]
    weights = np.broadcast_to(mask, (b, q, k_count)).copy()
    iterations = np.zeros(b, dtype=np.int64)
    converged = np.zeros(b, dtype=bool)
    mode_b_blocks = [(k, layout.items_of(k)) for k in range(k_count) if layout.mode_b[k]]
    # Working set: members still iterating plus, until the next compaction, finished ones whose
    # weights are frozen (compacting only when most have finished avoids copying S each step).
    work = np.flatnonzero(np.isfinite(s).all(axis=(1, 2)))
    sa = s[work]
    wa = weights[work]
    sw = sa @ wa
    frozen = np.zeros(work.size, dtype=bool)
    for it in range(1, max_iter + 1):
        if work.size == 0 or frozen.all():
            break
        if frozen.mean() > 0.5:
            weights[work[frozen]] = wa[frozen]
            keep = ~frozen
            work, sa, wa, sw, frozen = work[keep], sa[keep], wa[keep], sw[keep], frozen[keep]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            cov = np.swapaxes(wa, 1, 2) @ sw
            sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
            r = cov / (sd[:, :, None] * sd[:, None, :])
            e = inner_weights(r, layout, scheme)
            item_proxy = (sw / sd[:, None, :]) @ e
            new = item_proxy * mask
            for k, items in mode_b_blocks:
                new[:, items, k] = batched_solve(sa[:, items][:, :, items], item_proxy[:, items, k])
            s_new = sa @ new
            scale = 1.0 / np.sqrt(np.einsum("bik,bik->bk", new, s_new))[:, None, :]
            new = new * scale
            s_new = s_new * scale
            diff = np.abs(new - wa).sum(axis=(1, 2))
        live = ~frozen
        wa = np.where(live[:, None, None], new, wa)
        sw = np.where(live[:, None, None], s_new, sw)
        iterations[work[live]] = it
        finite = np.isfinite(diff)
        done = live & ((diff < tol) | ~finite)
        converged[work[done & finite]] = True
        frozen |= done
    weights[work] = wa
    return IterationResult(weights, iterations, converged)


def rho_a(s: Array, w: Array, layout: Layout) -> Array:
    """Dijkstra–Henseler rho_A per construct (b × K); 1 for Mode B and single-item constructs."""
    wtw = (w**2).sum(axis=1)
    w4 = (w**4).sum(axis=1)
    wsw = (w * (s @ w)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = wtw**2 * (wsw - wtw) / (wtw**2 - w4)
    n_items = layout.membership.sum(axis=0)
    fixed = np.array(layout.mode_b) | (n_items <= 1)
    rho[:, fixed] = 1.0
    return np.asarray(rho)


@dataclass
class Estimates:
    """Batched estimates of one stage (leading axis: batch member)."""

    weights: Array  # b × q × K
    loadings: Array  # b × q × K, own-construct cells only
    construct_corr: Array  # b × K × K (disattenuated under PLSc)
    paths: Array  # b × K × K, [i, j] = path i -> j
    r2: Array  # b × K (NaN for exogenous constructs)
    rho_a: Array  # b × K
    item_construct_cov: Array  # b × q × K (cross-loadings of standardised items)


def estimate(s: Array, w: Array, layout: Layout, *, consistent: bool) -> Estimates:
    """Loadings, paths, R² (and the PLSc correction) from correlation matrices and weights."""
    mask = layout.membership
    sw = s @ w
    r = score_correlations(s, w)
    rho = rho_a(s, w, layout)
    loadings = sw * mask
    if consistent:
        reflective = np.array(layout.reflective) & ~np.array(layout.mode_b)
        factor_rho = np.where(reflective[None, :], rho, 1.0)
        with np.errstate(invalid="ignore"):
            root = np.sqrt(factor_rho)
            r = r / (root[:, :, None] * root[:, None, :])
        idx = np.arange(r.shape[1])
        r[:, idx, idx] = 1.0
        wtw = (w**2).sum(axis=1)
        corrected = w * (root / wtw)[:, None, :]
        loadings = np.where(reflective[None, None, :], corrected, loadings) * mask
    b, k_count = r.shape[0], r.shape[1]
    paths = np.zeros((b, k_count, k_count))
    r2 = np.full((b, k_count), np.nan)
    for j, preds in layout.regressions:
        beta = batched_solve(r[:, preds[:, None], preds], r[:, preds, j])
        paths[:, preds, j] = beta
        r2[:, j] = (beta * r[:, preds, j]).sum(axis=1)
    return Estimates(w, loadings, r, paths, r2, rho, sw)


def htmt(s: Array, layout: Layout) -> Array:
    """Heterotrait–monotrait ratios (b × K × K, symmetric, NaN diagonal)."""
    mask = layout.membership
    a = np.abs(s)
    block_sums = mask.T @ a @ mask
    n_items = mask.sum(axis=0)
    idx = np.arange(len(n_items))
    with np.errstate(divide="ignore", invalid="ignore"):
        mono = np.where(
            n_items > 1,
            (block_sums[:, idx, idx] - n_items) / (n_items * (n_items - 1)),
            1.0,
        )
        hetero = block_sums / np.outer(n_items, n_items)
        out = hetero / np.sqrt(mono[:, :, None] * mono[:, None, :])
    out[:, idx, idx] = np.nan
    return np.asarray(out)


def htmt2(s: Array, layout: Layout) -> Array:
    """HTMT2 (Roemer, Schuberth & Henseler 2021): HTMT with geometric instead of arithmetic
    means of the correlations (b × K × K, symmetric, NaN diagonal). It is defined for positive
    correlations only: a pair whose blocks hold a correlation ≤ 0 gets NaN. A single-item
    construct's monotrait mean is one."""
    b = s.shape[0]
    k_count = layout.membership.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(s > 0, np.log(np.where(s > 0, s, 1.0)), np.nan)
    mono = np.ones((b, k_count))
    items = [np.asarray(layout.items_of(j), dtype=np.intp) for j in range(k_count)]
    for j, block in enumerate(items):
        if block.size > 1:
            upper_i, upper_j = np.triu_indices(block.size, 1)
            mono[:, j] = np.exp(logs[:, block[upper_i], block[upper_j]].mean(axis=1))
    out = np.full((b, k_count, k_count), np.nan)
    for i in range(k_count):
        for j in range(i + 1, k_count):
            hetero = np.exp(logs[:, items[i][:, None], items[j]].mean(axis=(1, 2)))
            out[:, i, j] = out[:, j, i] = hetero / np.sqrt(mono[:, i] * mono[:, j])
    return out


def total_effects(paths: Array) -> Array:
    """Total effects ``B + B² + …`` of a recursive path matrix stack (``(I - B)^-1 - I``)."""
    k = paths.shape[-1]
    eye = np.eye(k)
    return np.asarray(np.linalg.inv(eye - paths) - eye)
