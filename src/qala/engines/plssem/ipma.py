"""Importance–performance map analysis (IPMA; Ringle & Sarstedt 2016).

Performance is the mean construct score on a 0–100 scale: indicators are rescaled to 0–100 with
the answer scale's bounds (or the observed minimum and maximum), and each construct is the
weighted sum of its rescaled indicators with the unstandardised outer weights normalised to sum
to one. Importance is the unstandardised total effect of a construct on the target, from OLS
regressions (with intercept) of the rescaled scores along the structural model. At indicator
level, importance is the normalised weight times its construct's total effect on the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qala.core.errors import SpecificationError
from qala.engines.plssem import kernel as k

if TYPE_CHECKING:
    from qala.engines.plssem.estimates import PLSEstimates


@dataclass
class IPMAResults:
    """Importance and performance of the target's antecedents and their indicators."""

    target: str
    constructs: pd.DataFrame
    indicators: pd.DataFrame
    target_performance: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_performance": self.target_performance,
            "constructs": {
                str(c): {
                    "importance": float(r["importance"]),
                    "performance": float(r["performance"]),
                }
                for c, r in self.constructs.iterrows()
            },
            "indicators": {
                str(i): {
                    "construct": r["construct"],
                    "importance": float(r["importance"]),
                    "performance": float(r["performance"]),
                }
                for i, r in self.indicators.iterrows()
            },
            "warnings": self.warnings,
        }


def ipma(
    results: PLSEstimates,
    target: str,
    *,
    scale: tuple[float, float] | dict[str, tuple[float, float]] | None = None,
) -> IPMAResults:
    """Importance–performance map for ``target``.

    Parameters
    ----------
    results
        A fitted model without higher-order constructs or interaction terms.
    target
        An endogenous construct.
    scale
        Answer-scale bounds, ``(low, high)`` for every indicator or a dict per indicator;
        by default the observed minimum and maximum of each indicator.
    """
    plan = results.plan
    if plan.first is not None:
        raise SpecificationError(
            "IPMA supports models without higher-order constructs or interaction terms"
        )
    layout = plan.final
    names = list(layout.constructs)
    if target not in names or names.index(target) not in layout.endogenous:
        raise SpecificationError(
            f"IPMA target `{target}` must be an endogenous construct "
            f"({', '.join(names[j] for j in layout.endogenous)})"
        )
    values = results.data.to_numpy()
    columns = list(layout.columns)
    low = values.min(axis=0)
    high = values.max(axis=0)
    if isinstance(scale, tuple):
        low = np.full(len(columns), float(scale[0]))
        high = np.full(len(columns), float(scale[1]))
    elif isinstance(scale, dict):
        for item, (lo, hi) in scale.items():
            if item not in columns:
                raise SpecificationError(f"`scale` names `{item}`, which is not in the model")
            low[columns.index(item)], high[columns.index(item)] = lo, hi
    if np.any(high <= low):
        raise SpecificationError("every indicator needs a scale maximum above its minimum")
    if np.any(values < low - 1e-9) or np.any(values > high + 1e-9):
        raise SpecificationError("some answers lie outside the given scale bounds")
    rescaled = (values - low) / (high - low) * 100
    sd = values.std(axis=0, ddof=1)
    weights = results.estimates.weights[0] * layout.membership
    unstd = weights / sd[:, None]
    norm = unstd / unstd.sum(axis=0, keepdims=True)
    warnings = [
        f"indicator `{columns[i]}` of `{names[j]}` has a negative weight; its IPMA values are "
        "hard to interpret"
        for j in range(len(names))
        for i in layout.items_of(j)
        if norm[i, j] < 0
    ]
    scores = rescaled @ norm
    paths = np.zeros((len(names), len(names)))
    for j in layout.endogenous:
        preds = layout.predecessors(j)
        design = np.column_stack([np.ones(len(scores)), scores[:, preds]])
        coef, *_ = np.linalg.lstsq(design, scores[:, j], rcond=None)
        paths[preds, j] = coef[1:]
    total = k.total_effects(paths[None])[0]
    t = names.index(target)
    antecedents = [j for j in range(len(names)) if total[j, t] != 0]
    constructs = pd.DataFrame(
        {
            "importance": [total[j, t] for j in antecedents],
            "performance": [scores[:, j].mean() for j in antecedents],
        },
        index=[names[j] for j in antecedents],
    )
    rows = [
        (columns[i], names[j], norm[i, j] * total[j, t], rescaled[:, i].mean())
        for j in antecedents
        for i in layout.items_of(j)
    ]
    indicators = pd.DataFrame(
        rows, columns=["indicator", "construct", "importance", "performance"]
    ).set_index("indicator")
    return IPMAResults(target, constructs, indicators, float(scores[:, t].mean()), warnings)
