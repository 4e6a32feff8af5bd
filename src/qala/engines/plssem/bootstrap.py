"""Bootstrapping of a fitted PLS model: standard errors, t and p values, percentile and BCa
intervals.

Resamples are represented by how often each observation is drawn (a counts matrix), so a whole
batch of resamples is one call of the batched kernel: their correlation matrices come from a
single matrix product and the PLS iterations run on stacks of small matrices. Batches can be
spread over processes. Resample indices come from one seeded ``numpy`` PCG64 stream drawn
replication by replication (``integers(0, n, size=n)``), the same plan as the PyPI ``seminr``
package uses for the same seed, and do not depend on the batch size or the number of processes.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from qala.core.errors import SpecificationError
from qala.engines.plssem import kernel as k
from qala.engines.plssem.distributions import normal_cdf, normal_ppf, t_sf
from qala.engines.plssem.estimation import Plan, fit_counts

if TYPE_CHECKING:
    import pandas as pd

    from qala.engines.plssem.estimates import PLSEstimates

Progress = Callable[[int, int], None]


def statistic_labels(results: PLSEstimates) -> dict[str, list[tuple[str, ...]]]:
    """Labels of every bootstrapped statistic, grouped by table."""
    layout = results.layout
    names = results.constructs
    total_matrix = k.total_effects(results.estimates.paths)[0]
    own: list[tuple[str, ...]] = [
        (names[j], layout.columns[i]) for j in range(len(names)) for i in layout.items_of(j)
    ]
    total: list[tuple[str, ...]] = [
        (names[i], names[j])
        for i in range(len(names))
        for j in range(len(names))
        if total_matrix[i, j] != 0
    ]
    labels: dict[str, list[tuple[str, ...]]] = {
        "paths": [(p.source, p.target) for p in results.plan.spec.paths],
        "total_effects": total,
        "loadings": own,
        "weights": own,
        "htmt": [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))],
        "r2": [(names[j],) for j in layout.endogenous],
    }
    return labels


def _flatten(
    results_layout: k.Layout,
    names: list[str],
    labels: dict[str, list[tuple[str, ...]]],
    fit_est: k.Estimates,
    s: np.ndarray,
) -> np.ndarray:
    idx = {n: i for i, n in enumerate(names)}
    col = {c: i for i, c in enumerate(results_layout.columns)}
    parts = []
    pi = [idx[a] for a, _ in labels["paths"]]
    pj = [idx[b] for _, b in labels["paths"]]
    parts.append(fit_est.paths[:, pi, pj])
    total = k.total_effects(fit_est.paths)
    ti = [idx[a] for a, _ in labels["total_effects"]]
    tj = [idx[b] for _, b in labels["total_effects"]]
    parts.append(total[:, ti, tj])
    li = [col[i] for _, i in labels["loadings"]]
    lj = [idx[c] for c, _ in labels["loadings"]]
    parts.append(fit_est.loadings[:, li, lj])
    parts.append(fit_est.weights[:, li, lj])
    h = k.htmt(s, results_layout)
    hi = [idx[a] for a, _ in labels["htmt"]]
    hj = [idx[b] for _, b in labels["htmt"]]
    parts.append(h[:, hi, hj])
    parts.append(fit_est.r2[:, [idx[c[0]] for c in labels["r2"]]])
    return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class _Job:
    plan: Plan
    centred: np.ndarray
    scheme: str
    consistent: bool
    max_iter: int
    tol: float
    names: list[str]
    labels: dict[str, list[tuple[str, ...]]]


def _run_counts(job: _Job, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fit = fit_counts(
        job.plan,
        job.centred,
        counts,
        scheme=job.scheme,
        consistent=job.consistent,
        max_iter=job.max_iter,
        tol=job.tol,
    )
    values = _flatten(job.plan.final, job.names, job.labels, fit.estimates, fit.s_final)
    ok = fit.converged & np.isfinite(values).all(axis=1)
    return values, ok


def counts_from_indices(indices: np.ndarray, n: int) -> np.ndarray:
    b = indices.shape[0]
    flat = (indices + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


def resample_indices(n: int, n_boot: int, seed: int | None) -> np.ndarray:
    """Row indices of each resample (n_boot × n) from a seeded PCG64 stream."""
    generator = np.random.Generator(np.random.PCG64(seed))
    # one draw of n_boot × n gives the same stream as n_boot draws of n, row after row
    return generator.integers(0, n, size=(n_boot, n), dtype=np.intp)


def _job_for(results: PLSEstimates) -> _Job:
    values = results.values
    return _Job(
        plan=results.plan,
        centred=values - values.mean(axis=0),
        scheme=results.scheme,
        consistent=results.consistent,
        max_iter=results.model.max_iter,
        tol=results.model.tol,
        names=results.constructs,
        labels=statistic_labels(results),
    )


def run_batches(
    job: _Job,
    counts: np.ndarray,
    *,
    batch_size: int,
    n_jobs: int,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit every row of ``counts``, in batches, optionally over ``n_jobs`` processes."""
    total = counts.shape[0]
    starts = list(range(0, total, batch_size))
    chunks = [counts[s : s + batch_size] for s in starts]
    outputs: list[tuple[np.ndarray, np.ndarray]] = []
    done = 0
    if n_jobs <= 1 or len(chunks) == 1:
        for chunk in chunks:
            outputs.append(_run_counts(job, chunk))
            done += chunk.shape[0]
            if progress:
                progress(done, total)
    else:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context(method)) as pool:
            futures = [pool.submit(_run_counts, job, chunk) for chunk in chunks]
            for chunk, future in zip(chunks, futures, strict=True):
                outputs.append(future.result())
                done += chunk.shape[0]
                if progress:
                    progress(done, total)
    return (
        np.concatenate([o[0] for o in outputs], axis=0),
        np.concatenate([o[1] for o in outputs], axis=0),
    )


class BootstrapResults:
    """Bootstrap distribution of a model's estimates and its summaries.

    Every table has the columns ``estimate`` (the full-sample value), ``mean``, ``sd``
    (n-1), ``t`` (estimate / sd), ``p`` (two-sided, t distribution with n_boot - 1 degrees of
    freedom), ``ci_low``/``ci_high`` (percentile) and, when computed, ``bca_low``/``bca_high``.
    """

    def __init__(
        self,
        results: PLSEstimates,
        draws: np.ndarray,
        estimate: np.ndarray,
        labels: dict[str, list[tuple[str, ...]]],
        *,
        n_requested: int,
        seed: int | None,
        alpha: float,
        jackknife: np.ndarray | None,
    ) -> None:
        self.results = results
        self.draws = draws
        self.estimate = estimate
        self.labels = labels
        self.n_boot = draws.shape[0]
        self.n_failed = n_requested - self.n_boot
        self.seed = seed
        self.alpha = alpha
        self.jackknife = jackknife

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        """The summary columns over every statistic, in the order of :attr:`row_labels`."""
        draws = self.draws
        est = self.estimate
        mean = draws.mean(axis=0)
        sd = draws.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = est / sd
        p = 2 * t_sf(np.abs(t), max(self.n_boot - 1, 1))
        ordered = np.sort(draws, axis=0)  # once, for every quantile below
        columns = draws.shape[1]
        low = column_quantiles(ordered, np.full(columns, self.alpha / 2))
        high = column_quantiles(ordered, np.full(columns, 1 - self.alpha / 2))
        frame = {
            "estimate": est,
            "mean": mean,
            "sd": sd,
            "t": t,
            "p": p,
            "ci_low": low,
            "ci_high": high,
        }
        if self.jackknife is not None:
            frame["bca_low"], frame["bca_high"] = bca_interval(
                draws, est, self.jackknife, self.alpha, ordered=ordered
            )
        return frame

    @cached_property
    def row_labels(self) -> list[tuple[str, str]]:
        """(statistic, label) of each bootstrapped value, e.g. ``("paths", "A -> B")``."""
        out: list[tuple[str, str]] = []
        for kind, labs in self.labels.items():
            for lab in labs:
                if kind in ("loadings", "weights"):
                    out.append((kind, f"{lab[1]} -> {lab[0]}"))
                elif kind == "htmt":
                    out.append((kind, f"{lab[0]} <-> {lab[1]}"))
                else:
                    out.append((kind, " -> ".join(lab)))
        return out

    def rows(self, statistic: str) -> dict[str, dict[str, float]]:
        """``{label: {column: value}}`` of one statistic as plain floats (no pandas)."""
        if statistic not in self.labels:
            raise KeyError(f"unknown statistic {statistic!r}; choose from {list(self.labels)}")
        columns = self._columns
        return {
            label: {name: float(values[i]) for name, values in columns.items()}
            for i, (kind, label) in enumerate(self.row_labels)
            if kind == statistic
        }

    @cached_property
    def _table(self) -> pd.DataFrame:
        import pandas as pd

        out = pd.DataFrame(self._columns)
        kinds = [kind for kind, _ in self.row_labels]
        rows = [label for _, label in self.row_labels]
        out.index = pd.MultiIndex.from_arrays([kinds, rows], names=["statistic", "label"])
        return out

    def table(self, statistic: str) -> pd.DataFrame:
        """One of ``paths``, ``total_effects``, ``loadings``, ``weights``, ``htmt``, ``r2``."""
        if statistic not in self.labels:
            raise KeyError(f"unknown statistic {statistic!r}; choose from {list(self.labels)}")
        return self._table.loc[statistic]

    @property
    def paths(self) -> pd.DataFrame:
        return self.table("paths")

    @property
    def total_effects(self) -> pd.DataFrame:
        return self.table("total_effects")

    @property
    def loadings(self) -> pd.DataFrame:
        return self.table("loadings")

    @property
    def weights(self) -> pd.DataFrame:
        return self.table("weights")

    @property
    def htmt(self) -> pd.DataFrame:
        return self.table("htmt")

    def to_dict(self) -> dict[str, Any]:
        """``{"From -> To": {"mean", "sd", "t", "p", "ci_low", "ci_high", ...}}`` for paths."""

        def clean(row: pd.Series) -> dict[str, float | None]:
            return {c: (None if not np.isfinite(v) else float(v)) for c, v in row.items()}

        return {
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
            "seed": self.seed,
            "alpha": self.alpha,
            "paths": {lab: clean(row) for lab, row in self.paths.iterrows()},
            "total_effects": {lab: clean(row) for lab, row in self.total_effects.iterrows()},
            "loadings": {lab: clean(row) for lab, row in self.loadings.iterrows()},
            "htmt": {lab: clean(row) for lab, row in self.htmt.iterrows()},
        }

    def summary(self, digits: int = 3) -> str:
        fmt = f"{{:.{digits}f}}".format
        head = (
            f"Bootstrap: {self.n_boot} resamples ({self.n_failed} failed), seed {self.seed}, "
            f"{100 * (1 - self.alpha):.0f}% intervals"
        )
        cols = [
            c
            for c in (
                "estimate",
                "mean",
                "sd",
                "t",
                "p",
                "ci_low",
                "ci_high",
                "bca_low",
                "bca_high",
            )
            if c in self.paths.columns
        ]
        return "\n".join(
            [
                head,
                "-" * len(head),
                self.paths[cols].to_string(float_format=fmt),
                "",
                "Total effects",
                self.total_effects[cols].to_string(float_format=fmt),
            ]
        )


def column_quantiles(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantile ``levels[j]`` of column ``j`` of the column-sorted, NaN-free ``ordered``.

    The same arithmetic as ``np.quantile(column, level)`` (its default "linear" method), so the
    same numbers, for all columns at once: the BCa levels differ per column, and a call per
    column cost more than the rest of the summaries together.
    """
    n = ordered.shape[0]
    virtual = (n - 1) * np.asarray(levels, dtype=float)
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = n - 1
    following[above] = n - 1
    below = virtual < 0
    previous[below] = 0
    following[below] = 0
    gamma = virtual - previous  # where clipped, both neighbours are the same value
    cols = np.arange(ordered.shape[1])
    a = ordered[previous.astype(np.intp), cols]
    b = ordered[following.astype(np.intp), cols]
    diff = b - a
    out = a + diff * gamma
    upper = gamma >= 0.5
    out[upper] = b[upper] - diff[upper] * (1 - gamma[upper])
    return np.asarray(out)


def bca_interval(
    draws: np.ndarray,
    estimate: np.ndarray,
    jackknife: np.ndarray,
    alpha: float,
    *,
    ordered: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected and accelerated intervals (Efron 1987), column by column.

    ``ordered`` is ``draws`` sorted along axis 0, when the caller has it already.
    """
    if ordered is None:
        ordered = np.sort(draws, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        below = (draws < estimate).mean(axis=0)
        z0 = normal_ppf(below)
        centred = jackknife.mean(axis=0) - jackknife
        accel = (centred**3).sum(axis=0) / (6 * ((centred**2).sum(axis=0)) ** 1.5)
        accel = np.where(np.isfinite(accel), accel, 0.0)
        bounds = []
        for z_alpha in (normal_ppf(alpha / 2), normal_ppf(1 - alpha / 2)):
            level = normal_cdf(z0 + (z0 + z_alpha) / (1 - accel * (z0 + z_alpha)))
            finite = np.isfinite(level)
            out = column_quantiles(ordered, np.where(finite, level, 0.0))
            out[~finite] = np.nan
            bounds.append(out)
    return bounds[0], bounds[1]


def bootstrap(
    results: PLSEstimates,
    n_boot: int = 5000,
    *,
    seed: int | None = None,
    alpha: float = 0.05,
    n_jobs: int = 1,
    batch_size: int = 1000,
    bca: bool = True,
    indices: np.ndarray | None = None,
    progress: Progress | None = None,
) -> BootstrapResults:
    """Bootstrap a fitted model.

    Parameters
    ----------
    results
        A fitted model.
    n_boot
        Number of resamples.
    seed
        Seed of the resampling stream; the same seed gives the same resamples and results,
        whatever ``n_jobs`` and ``batch_size``.
    alpha
        Two-sided level of the intervals (0.05 → 95% intervals).
    n_jobs
        Processes to spread the batches over.
    batch_size
        Resamples estimated together in one batched call.
    bca
        Also compute bias-corrected and accelerated intervals (needs one jackknife pass).
    indices
        Explicit resample row indices (n_boot × n), e.g. to reproduce another tool's draws.
    progress
        Called as ``progress(done, total)`` after each batch.

    Resamples where PLS does not converge or a column is constant are dropped and counted in
    ``n_failed``.
    """
    if n_boot < 2 and indices is None:
        raise SpecificationError("`n_boot` must be at least 2")
    if not 0 < alpha < 1:
        raise SpecificationError(f"`alpha` must be between 0 and 1; got {alpha}")
    n = results.n_obs
    if indices is None:
        indices = resample_indices(n, n_boot, seed)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != n or indices.min() < 0 or indices.max() >= n:
        raise SpecificationError(f"`indices` must be an (n_boot × {n}) array of row numbers")
    job = _job_for(results)
    counts = counts_from_indices(indices, n)
    with k.single_threaded_blas():  # forked workers inherit the limit
        values, ok = run_batches(
            job, counts, batch_size=max(1, batch_size), n_jobs=n_jobs, progress=progress
        )
        estimate = _run_counts(job, np.ones((1, n)))[0][0]
        jack = None
        if bca:
            leave_one_out = 1.0 - np.eye(n)
            jack_values, jack_ok = run_batches(
                job, leave_one_out, batch_size=max(1, batch_size), n_jobs=1
            )
            jack = jack_values[jack_ok]
    return BootstrapResults(
        results,
        values[ok],
        estimate,
        job.labels,
        n_requested=indices.shape[0],
        seed=seed,
        alpha=alpha,
        jackknife=jack,
    )
