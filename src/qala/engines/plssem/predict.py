"""PLSpredict (Shmueli et al. 2016, 2019): out-of-sample prediction of endogenous indicators.

For every k-fold split the model is re-estimated on the training folds (all folds in one
batched call). Holdout indicators of the exogenous constructs are standardised with the
training means and standard deviations and weighted with the training weights; the endogenous
construct scores follow through the structural model (the "earliest antecedents" route: total
effects of the exogenous constructs), and each endogenous indicator is predicted as its loading
times its construct's predicted score, brought back to the data scale.

Benchmarks: Q²_predict compares the squared errors with those of the training-sample mean; the
linear model (LM) regresses each endogenous indicator (with intercept) on the indicators of the
exogenous constructs that affect its construct. RMSE and MAE are reported for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qala.core.errors import SpecificationError
from qala.engines.plssem import kernel as k
from qala.engines.plssem.estimation import fit_counts

if TYPE_CHECKING:
    import pandas as pd

    from qala.engines.plssem.estimates import PLSEstimates


@dataclass
class PredictResults:
    """Per-indicator prediction metrics (averaged over repeats) and the PLS predictions."""

    table: pd.DataFrame
    predictions: pd.DataFrame
    folds: int
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "folds": self.folds,
            "repeats": self.repeats,
            "indicators": {
                str(item): {c: (v if isinstance(v, str) else float(v)) for c, v in row.items()}
                for item, row in self.table.iterrows()
            },
        }


def fold_assignments(n: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    order = rng.permutation(n)
    assignment = np.empty(n, dtype=np.int64)
    assignment[order] = np.arange(n) % folds
    return assignment


@dataclass(frozen=True)
class _Targets:
    """What the predictions of one model need, worked out once."""

    values: np.ndarray
    centred: np.ndarray
    endo: list[int]
    exo: list[int]
    target_items: list[tuple[int, int]]
    lm_sources: dict[int, list[int]]


def _targets(results: PLSEstimates) -> _Targets:
    plan = results.plan
    if plan.first is not None:
        raise SpecificationError(
            "PLSpredict and CVPAT support models without higher-order constructs or interaction "
            "terms"
        )
    layout = plan.final
    values = results.values
    endo = layout.endogenous
    exo = [j for j in range(len(layout.constructs)) if j not in endo]
    target_items = [(j, i) for j in endo for i in layout.items_of(j)]
    exo_items = {j: layout.items_of(j) for j in exo}
    total = k.total_effects(results.estimates.paths)[0]
    lm_sources = {j: [x for e in exo if total[e, j] != 0 for x in exo_items[e]] for j in endo}
    centred = values - values.mean(axis=0)
    return _Targets(values, centred, endo, exo, target_items, lm_sources)


def cross_validated_predictions(
    results: PLSEstimates, assignment: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-sample predictions of every endogenous indicator for one fold assignment:
    (actual, PLS, linear model, training mean), each n × (endogenous indicators)."""
    t = _targets(results)
    values, endo, exo, target_items = t.values, t.endo, t.exo, t.target_items
    folds = int(assignment.max()) + 1
    n, n_targets = len(values), len(target_items)
    train = np.stack([(assignment != f).astype(float) for f in range(folds)])
    fit = fit_counts(
        results.plan,
        t.centred,
        train,
        scheme=results.scheme,
        consistent=results.consistent,
        max_iter=results.model.max_iter,
        tol=results.model.tol,
    )
    if not fit.converged.all():
        raise SpecificationError("PLS did not converge on a training sample; fewer folds?")
    pls_pred = np.zeros((n, n_targets))
    lm_pred = np.zeros((n, n_targets))
    naive = np.zeros((n, n_targets))
    for f in range(folds):
        tr = assignment != f
        te = ~tr
        mean = values[tr].mean(axis=0)
        sd = values[tr].std(axis=0, ddof=1)
        z_test = (values[te] - mean) / sd
        scores = z_test @ fit.estimates.weights[f]
        total_f = k.total_effects(fit.estimates.paths[f : f + 1])[0]
        endo_scores = scores[:, exo] @ total_f[np.ix_(exo, endo)]
        loads = fit.estimates.loadings[f]
        for c, (j, i) in enumerate(target_items):
            col = endo_scores[:, endo.index(j)] * loads[i, j]
            pls_pred[te, c] = col * sd[i] + mean[i]
            naive[te, c] = mean[i]
        # LM benchmark: one least-squares solve per endogenous construct and fold
        ones_tr, ones_te = np.ones((tr.sum(), 1)), np.ones((te.sum(), 1))
        for j in endo:
            sources = t.lm_sources[j]
            cols = [c for c, (jj, _) in enumerate(target_items) if jj == j]
            targets = [target_items[c][1] for c in cols]
            design = np.hstack([ones_tr, values[tr][:, sources]])
            coef, *_ = np.linalg.lstsq(design, values[tr][:, targets], rcond=None)
            lm_pred[np.ix_(te, cols)] = np.hstack([ones_te, values[te][:, sources]]) @ coef
    actual = values[:, [i for _, i in target_items]]
    return actual, pls_pred, lm_pred, naive


def pls_predict(
    results: PLSEstimates, *, folds: int = 10, repeats: int = 1, seed: int | None = 0
) -> PredictResults:
    """Run PLSpredict on a fitted model.

    Parameters
    ----------
    results
        A fitted model without higher-order constructs or interaction terms.
    folds
        Number of cross-validation folds (each observation is predicted once per repeat).
    repeats
        Number of random k-fold splits; metrics are averaged over them.
    seed
        Seed of the fold assignment.
    """
    import pandas as pd

    t = _targets(results)
    n = results.n_obs
    if not 2 <= folds <= n:
        raise SpecificationError(f"`folds` must be between 2 and the sample size {n}")
    layout = results.plan.final
    names = list(layout.constructs)
    target_items = t.target_items
    rng = np.random.default_rng(seed)
    n_targets = len(target_items)
    sums: dict[str, np.ndarray] = {
        key: np.zeros(n_targets) for key in ("pls_sse", "pls_sae", "lm_sse", "lm_sae", "naive_sse")
    }
    last_predictions = np.zeros((n, n_targets))
    for _ in range(repeats):
        assignment = fold_assignments(n, folds, rng)
        actual, pls_pred, lm_pred, naive = cross_validated_predictions(results, assignment)
        sums["pls_sse"] += ((actual - pls_pred) ** 2).sum(axis=0)
        sums["pls_sae"] += np.abs(actual - pls_pred).sum(axis=0)
        sums["lm_sse"] += ((actual - lm_pred) ** 2).sum(axis=0)
        sums["lm_sae"] += np.abs(actual - lm_pred).sum(axis=0)
        sums["naive_sse"] += ((actual - naive) ** 2).sum(axis=0)
        last_predictions = pls_pred
    count = n * repeats
    table = pd.DataFrame(
        {
            "construct": [names[j] for j, _ in target_items],
            "q2_predict": 1 - sums["pls_sse"] / sums["naive_sse"],
            "pls_rmse": np.sqrt(sums["pls_sse"] / count),
            "pls_mae": sums["pls_sae"] / count,
            "lm_rmse": np.sqrt(sums["lm_sse"] / count),
            "lm_mae": sums["lm_sae"] / count,
        },
        index=[layout.columns[i] for _, i in target_items],
    )
    table.index.name = "indicator"
    predictions = pd.DataFrame(
        last_predictions, index=results.indicators.rows, columns=list(table.index)
    )
    return PredictResults(table, predictions, folds, repeats)
