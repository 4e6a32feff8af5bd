"""Statistical audit of a built index (OECD/JRC Handbook 2008, sections 4 and 7).

* correlations of every node with its parent and with the root (across levels) and among the
  children of each aggregate (within levels);
* Cronbach's alpha of each aggregate's children (internal consistency; ≥ 0.7 is the usual bar);
* PCA per aggregate: share of variance of the first component and how many components have an
  eigenvalue above one (one suggests a single underlying dimension);
* influence of each indicator: the mean absolute rank shift of the root when it is left out
  (weight set to zero, everything else unchanged) and its correlation with the root — indicators
  that barely move the index (a shift below ``min_shift`` ranks and |r| below ``min_corr``) are
  flagged "silent";
* flagged pairs: negative correlations inside an aggregate (they cancel each other out) and
  near-collinear ones (|r| ≥ 0.92, double counting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .build import IndexResult, aggregate_scores, rank_desc
from .spec import Aggregate


def cronbach_alpha(x: np.ndarray) -> float:
    """Cronbach's alpha ``k² · mean off-diagonal covariance / sum of all covariances``.

    Identical to ``k/(k-1) · (1 - Σ var_i / var(Σ x_i))`` on complete data; with gaps the
    covariances use pairwise-complete observations (as COINr's ``get_cronbach``).
    """
    cov = pd.DataFrame(np.asarray(x, dtype=float)).cov().to_numpy()
    k = cov.shape[0]
    if k < 2:
        return float("nan")
    total = float(np.nansum(cov))
    if total == 0:
        return float("nan")
    mean_off = (total - float(np.nansum(np.diag(cov)))) / (k * (k - 1))
    return float(k * k * mean_off / total)


def pca_summary(x: np.ndarray) -> dict[str, Any]:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x).any(axis=1)]
    if x.shape[1] < 2:
        return {"pc1_share": 1.0, "components_over_1": 1, "loadings": [1.0]}
    sd = x.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    z = (x - x.mean(axis=0)) / sd
    vals, vecs = np.linalg.eigh(np.corrcoef(z, rowvar=False))
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    first = vecs[:, 0] * np.sign(vecs[:, 0].sum() or 1.0)
    return {
        "pc1_share": float(vals[0] / vals.sum()),
        "components_over_1": int(np.sum(vals > 1.0)),
        "loadings": (first * np.sqrt(max(vals[0], 0.0))).tolist(),
    }


@dataclass
class AuditReport:
    """Tables of the audit; see module docstring."""

    node_correlations: pd.DataFrame  # code, parent, r_parent, r_root
    within: dict[str, pd.DataFrame]  # aggregate -> children correlation matrix
    consistency: pd.DataFrame  # aggregate -> alpha, pc1_share, components_over_1
    influence: pd.DataFrame  # indicator -> mean_rank_shift, max_rank_shift, r_root, silent
    flagged_pairs: pd.DataFrame  # aggregate, a, b, r, issue

    def to_json_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                for row in df.reset_index().to_dict("records")
            ]

        return {
            "node_correlations": records(self.node_correlations),
            "consistency": records(self.consistency),
            "influence": records(self.influence),
            "flagged_pairs": records(self.flagged_pairs),
        }


def audit(
    result: IndexResult,
    *,
    min_shift: float = 0.5,
    min_corr: float = 0.3,
    collinear: float = 0.92,
) -> AuditReport:
    """Audit a built index (see module docstring)."""
    fw = result.framework
    scores = result.scores
    root = fw.root
    rows = []
    for node in fw.nodes:
        if node.code == root or node.code not in scores.columns:
            continue
        r_parent = scores[node.code].corr(scores[node.parent]) if node.parent in scores else np.nan
        rows.append(
            {
                "code": node.code,
                "level": fw.level_of(node.code),
                "parent": node.parent,
                "r_parent": r_parent,
                "r_root": scores[node.code].corr(scores[root]) if root in scores else np.nan,
            }
        )
    node_corr = pd.DataFrame(rows).set_index("code")
    within: dict[str, pd.DataFrame] = {}
    cons_rows = []
    pair_rows = []
    for code in fw.aggregates:
        kids = [k for k in fw.children(code) if k in scores.columns]
        x = scores[kids]
        corr = x.corr()
        within[code] = corr
        pca = pca_summary(x.to_numpy())
        cons_rows.append(
            {
                "code": code,
                "children": len(kids),
                "alpha": cronbach_alpha(x.to_numpy()),
                "pc1_share": pca["pc1_share"],
                "components_over_1": pca["components_over_1"],
            }
        )
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                r = corr.at[a, b]
                if np.isnan(r):
                    continue
                if r < 0:
                    pair_rows.append(
                        {"aggregate": code, "a": a, "b": b, "r": r, "issue": "negative"}
                    )
                elif r >= collinear:
                    pair_rows.append(
                        {"aggregate": code, "a": a, "b": b, "r": r, "issue": "collinear"}
                    )
    consistency = pd.DataFrame(cons_rows).set_index("code")
    flagged = pd.DataFrame(pair_rows, columns=["aggregate", "a", "b", "r", "issue"])

    # influence: drop each indicator (zero weight) and re-aggregate the normalised data
    infl_rows = []
    agg_step = result.spec.step("aggregate") if result.spec.has_step("aggregate") else Aggregate()
    assert isinstance(agg_step, Aggregate)
    normalised = scores[[c for c in fw.indicators if c in scores.columns]]
    if root in scores.columns:
        base_rank = result.ranks[root]
        for code in normalised.columns:
            siblings = [k for k in fw.children(fw[code].parent) if k != code]  # type: ignore[arg-type]
            if not siblings:
                continue
            variant = fw.with_weights({code: 0.0})
            agg = aggregate_scores(normalised, variant, agg_step)
            shift = (rank_desc(agg[root]) - base_rank).abs()
            infl_rows.append(
                {
                    "code": code,
                    "mean_rank_shift": float(shift.mean()),
                    "max_rank_shift": float(shift.max()),
                    "r_root": float(normalised[code].corr(scores[root])),
                }
            )
    influence = pd.DataFrame(
        infl_rows, columns=["code", "mean_rank_shift", "max_rank_shift", "r_root"]
    )
    if not influence.empty:
        influence["silent"] = (influence["mean_rank_shift"] < min_shift) & (
            influence["r_root"].abs() < min_corr
        )
        influence = influence.set_index("code").sort_values("mean_rank_shift")
    return AuditReport(node_corr, within, consistency, influence, flagged)
