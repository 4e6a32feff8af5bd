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
import pandas as pd

from qala.core.errors import SpecificationError
from qala.engines.plssem import kernel as k
from qala.engines.plssem.estimation import fit_counts

if TYPE_CHECKING:
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


def _fold_assignments(n: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    order = rng.permutation(n)
    assignment = np.empty(n, dtype=np.int64)
    assignment[order] = np.arange(n) % folds
    return assignment


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
    plan = results.plan
    if plan.first is not None:
        raise SpecificationError(
            "PLSpredict supports models without higher-order constructs or interaction terms"
        )
    n = results.n_obs
    if not 2 <= folds <= n:
        raise SpecificationError(f"`folds` must be between 2 and the sample size {n}")
    layout = plan.final
    values = results.data.to_numpy()
    names = list(layout.constructs)
    endo = layout.endogenous
    exo = [j for j in range(len(names)) if j not in endo]
    target_items = [(j, i) for j in endo for i in layout.items_of(j)]
    exo_items = {j: layout.items_of(j) for j in exo}
    total = k.total_effects(results.estimates.paths)[0]

    lm_sources = {j: [x for e in exo if total[e, j] != 0 for x in exo_items[e]] for j in endo}
    rng = np.random.default_rng(seed)
    n_targets = len(target_items)
    sums: dict[str, np.ndarray] = {
        key: np.zeros(n_targets) for key in ("pls_sse", "pls_sae", "lm_sse", "lm_sae", "naive_sse")
    }
    last_predictions = np.zeros((n, n_targets))
    centred = values - values.mean(axis=0)
    for _ in range(repeats):
        assignment = _fold_assignments(n, folds, rng)
        train = np.stack([(assignment != f).astype(float) for f in range(folds)])
        fit = fit_counts(
            plan,
            centred,
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
            w = fit.estimates.weights[f]
            scores = z_test @ w
            total_f = k.total_effects(fit.estimates.paths[f : f + 1])[0]
            endo_scores = scores[:, exo] @ total_f[np.ix_(exo, endo)]
            loads = fit.estimates.loadings[f]
            for t, (j, i) in enumerate(target_items):
                col = endo_scores[:, endo.index(j)] * loads[i, j]
                pls_pred[te, t] = col * sd[i] + mean[i]
                naive[te, t] = mean[i]
            # LM benchmark: one least-squares solve per endogenous construct and fold
            ones_tr, ones_te = np.ones((tr.sum(), 1)), np.ones((te.sum(), 1))
            for j in endo:
                sources = lm_sources[j]
                cols = [t for t, (jj, _) in enumerate(target_items) if jj == j]
                targets = [target_items[t][1] for t in cols]
                design = np.hstack([ones_tr, values[tr][:, sources]])
                coef, *_ = np.linalg.lstsq(design, values[tr][:, targets], rcond=None)
                lm_pred[np.ix_(te, cols)] = np.hstack([ones_te, values[te][:, sources]]) @ coef
        actual = values[:, [i for _, i in target_items]]
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
        last_predictions, index=results.data.index, columns=list(table.index)
    )
    return PredictResults(table, predictions, folds, repeats)
