"""Two-group analysis: permutation test of path differences and the MICOM invariance check.

Multigroup analysis by permutation (Chin & Dibbern 2010): the model is estimated in each group;
group labels are then shuffled many times and the model re-estimated in both pseudo-groups (all
permutations in one batched call); the p value of a path difference is the share of permuted
absolute differences at least as large as the observed one.

MICOM (Henseler, Ringle & Sarstedt 2016): step 1, configural invariance, holds by construction
(same model, same data treatment, same algorithm). Step 2, compositional invariance: the
correlation ``c`` between the pooled-data scores built with the first group's weights and with
the second group's weights must not fall below the 5% quantile of its permutation
distribution. Step 3, equal composite means and variances: with the pooled estimation, the group
difference in mean scores and in log variances must fall inside the permutation 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qala.core.errors import SpecificationError, ValidationError
from qala.engines.plssem import kernel as k
from qala.engines.plssem.estimation import Missing, fit_counts, prepare_data
from qala.engines.plssem.model import PLSSEM
from qala.engines.plssem.spec import ModelSpec


@dataclass
class MGAResults:
    """Group estimates, path differences with permutation p values, and MICOM tables."""

    groups: tuple[str, str]
    sizes: tuple[int, int]
    paths: pd.DataFrame
    micom_composition: pd.DataFrame
    micom_means_variances: pd.DataFrame
    permutations: int
    failed: int

    def to_dict(self) -> dict[str, Any]:
        def clean(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
            return {
                str(i): {
                    c: (
                        v
                        if isinstance(v, bool | str)
                        else (None if not np.isfinite(v) else float(v))
                    )
                    for c, v in row.items()
                }
                for i, row in frame.iterrows()
            }

        return {
            "groups": list(self.groups),
            "sizes": list(self.sizes),
            "permutations": self.permutations,
            "failed_permutations": self.failed,
            "paths": clean(self.paths),
            "micom_step2": clean(self.micom_composition),
            "micom_step3": clean(self.micom_means_variances),
        }

    def summary(self, digits: int = 3) -> str:
        fmt = f"{{:.{digits}f}}".format
        a, b = self.groups
        return "\n".join(
            [
                f"Multigroup analysis: {a} (n={self.sizes[0]}) vs {b} (n={self.sizes[1]}), "
                f"{self.permutations} permutations ({self.failed} failed)",
                "",
                self.paths.to_string(float_format=fmt),
                "",
                "MICOM step 2 (compositional invariance)",
                self.micom_composition.to_string(float_format=fmt),
                "",
                "MICOM step 3 (equal means and variances)",
                self.micom_means_variances.to_string(float_format=fmt),
            ]
        )


def multigroup(
    spec: ModelSpec | str,
    data: pd.DataFrame,
    group_column: str,
    *,
    groups: tuple[Any, Any] | None = None,
    permutations: int = 1000,
    seed: int | None = 0,
    scheme: str = "path",
    consistent: bool = False,
    missing: Missing = "error",
    max_iter: int = 300,
    tol: float = 1e-7,
) -> MGAResults:
    """Compare two groups of observations (rows) by permutation, with MICOM.

    Parameters
    ----------
    spec
        Model specification or its text.
    data
        Indicators plus ``group_column``.
    group_column
        Column whose values name each row's group.
    groups
        The two group values to compare; required when the column has more than two.
    permutations
        Number of label permutations.
    """
    model = PLSSEM(
        spec, scheme=scheme, consistent=consistent, max_iter=max_iter, tol=tol, missing=missing
    )
    plan = model.plan_
    if plan.first is not None:
        raise SpecificationError(
            "multigroup analysis supports models without higher-order constructs or interactions"
        )
    if group_column not in data.columns:
        raise ValidationError.single(
            "no such column to split groups by", column=group_column, code="unknown_column"
        )
    labels = data[group_column]
    present = [v for v in pd.unique(labels.dropna())]
    if groups is None:
        if len(present) != 2:
            raise ValidationError.single(
                f"expected exactly two groups, found {len(present)}: {present[:10]}; "
                "pass `groups=(a, b)`",
                column=group_column,
                code="groups",
            )
        groups = (present[0], present[1])
    keep = labels.isin(list(groups))
    frame = prepare_data(data.loc[keep], plan.observed, missing)
    in_first = (labels.loc[frame.index] == groups[0]).to_numpy()
    sizes = (int(in_first.sum()), int((~in_first).sum()))
    if min(sizes) < 3:
        raise ValidationError.single(
            f"each group needs at least 3 complete rows; got {sizes}", column=group_column
        )
    values = frame.to_numpy()
    centred = values - values.mean(axis=0)
    n = len(values)
    layout = plan.final

    def fit(masks: np.ndarray) -> Any:
        return fit_counts(
            plan, centred, masks, scheme=scheme, consistent=consistent, max_iter=max_iter, tol=tol
        )

    observed = fit(np.stack([in_first, ~in_first, np.ones(n, bool)]).astype(float))
    if not observed.converged.all():
        raise SpecificationError("PLS did not converge in one of the groups")
    rng = np.random.default_rng(seed)
    perm_masks = np.empty((2 * permutations, n))
    for p in range(permutations):
        shuffled = rng.permutation(in_first)
        perm_masks[2 * p] = shuffled
        perm_masks[2 * p + 1] = ~shuffled
    perm = fit(perm_masks)

    ok = perm.converged[0::2] & perm.converged[1::2]
    spec_paths = [
        (layout.constructs.index(p.source), layout.constructs.index(p.target))
        for p in plan.spec.paths
    ]
    pi = [i for i, _ in spec_paths]
    pj = [j for _, j in spec_paths]
    est = observed.estimates.paths
    diff = est[0, pi, pj] - est[1, pi, pj]
    perm_diff = (perm.estimates.paths[0::2][:, pi, pj] - perm.estimates.paths[1::2][:, pi, pj])[ok]
    p_values = (np.abs(perm_diff) >= np.abs(diff) - 1e-12).mean(axis=0)
    a, b = (str(g) for g in groups)
    paths = pd.DataFrame(
        {
            f"coef_{a}": est[0, pi, pj],
            f"coef_{b}": est[1, pi, pj],
            "difference": diff,
            "p_permutation": p_values,
        },
        index=[p.label for p in plan.spec.paths],
    )

    # MICOM step 2: scores from each group's weights, on the pooled standardised data
    s_pooled = observed.s_final[2]

    def composition(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
        cross = np.einsum("bqk,qr,brk->bk", w1, s_pooled, w2)
        v1 = np.einsum("bqk,qr,brk->bk", w1, s_pooled, w1)
        v2 = np.einsum("bqk,qr,brk->bk", w2, s_pooled, w2)
        return np.asarray(cross / np.sqrt(v1 * v2))

    w = observed.estimates.weights
    c_obs = composition(w[0:1], w[1:2])[0]
    c_perm = composition(perm.estimates.weights[0::2][ok], perm.estimates.weights[1::2][ok])
    q05 = np.quantile(c_perm, 0.05, axis=0)
    names = list(layout.constructs)
    step2 = pd.DataFrame(
        {
            "c": c_obs,
            "c_q05": q05,
            "p": (c_perm <= c_obs + 1e-12).mean(axis=0),
            "invariant": c_obs >= q05 - 1e-12,
        },
        index=names,
    )

    # MICOM step 3: pooled weights, group differences of score means and log variances
    z = (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
    scores = z @ w[2]

    def mean_var(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s1, s2 = scores[mask], scores[~mask]
        return (
            s1.mean(axis=0) - s2.mean(axis=0),
            np.log(s1.var(axis=0, ddof=1)) - np.log(s2.var(axis=0, ddof=1)),
        )

    mean_diff, logvar_diff = mean_var(in_first)
    perm_mean = np.empty((permutations, len(names)))
    perm_var = np.empty((permutations, len(names)))
    for p in range(permutations):
        perm_mean[p], perm_var[p] = mean_var(perm_masks[2 * p].astype(bool))
    lo_m, hi_m = np.quantile(perm_mean, [0.025, 0.975], axis=0)
    lo_v, hi_v = np.quantile(perm_var, [0.025, 0.975], axis=0)
    step3 = pd.DataFrame(
        {
            "mean_diff": mean_diff,
            "mean_low": lo_m,
            "mean_high": hi_m,
            "mean_equal": (mean_diff >= lo_m) & (mean_diff <= hi_m),
            "logvar_diff": logvar_diff,
            "var_low": lo_v,
            "var_high": hi_v,
            "var_equal": (logvar_diff >= lo_v) & (logvar_diff <= hi_v),
        },
        index=names,
    )
    _ = k  # kernel types used through fit_counts
    return MGAResults(
        (a, b), sizes, paths, step2, step3, permutations, int(permutations - ok.sum())
    )
