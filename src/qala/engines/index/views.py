"""The numbers behind COINr's analysis plots, apart from any drawing.

* :func:`sunburst_arcs` — the framework as rings: each node an arc whose angle is its effective
  weight in the index (COINr ``plot_framework``);
* :func:`indicator_distribution` — one indicator's values before and after outlier treatment,
  the units flagged as outliers (1.5 × IQR beyond the quartiles) and the treatment applied
  (COINr ``plot_dist`` / ``plot_dot`` with the ``Treated`` data set);
* :func:`correlations` — Pearson correlations within a level or across two levels, optionally
  only under one parent (COINr ``plot_corr`` with ``withparent``);
* :func:`bump_table` — ranks of the same units under several runs, variants or years
  (COINr ``compare_coins_multi`` drawn as a bump chart).

The web dashboard (SVG) and the CLI (matplotlib, PNG or SVG) draw from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qala.core.errors import SpecificationError

from .build import IndexResult
from .framework import Framework


@dataclass(frozen=True)
class Arc:
    code: str
    name: str
    depth: int  # 0 = root
    start: float  # share of the full turn, 0–1
    end: float
    parent: str | None


def sunburst_arcs(framework: Framework) -> list[Arc]:
    """Every node as an arc: root the full turn, children share their parent's angle in
    proportion to their weights (so each arc's angle is the node's effective weight)."""
    root = framework.root
    arcs = [Arc(root, framework[root].name or root, 0, 0.0, 1.0, None)]

    def walk(code: str, start: float, end: float, depth: int) -> None:
        kids = list(framework.children(code))
        total = sum(max(framework[k].weight, 0.0) for k in kids)
        at = start
        for k in kids:
            share = (max(framework[k].weight, 0.0) / total) if total > 0 else 1.0 / len(kids)
            stop = at + share * (end - start)
            arcs.append(Arc(k, framework[k].name or k, depth + 1, at, stop, code))
            walk(k, at, stop, depth + 1)
            at = stop

    walk(root, 0.0, 1.0, 0)
    return arcs


@dataclass(frozen=True)
class Distribution:
    code: str
    name: str
    unit: str | None
    raw: pd.Series
    """Values as they entered the build (after denomination when there is one)."""
    treated: pd.Series
    """Values after outlier treatment (equal to ``raw`` when none was applied)."""
    flags: pd.Series
    """Per unit: ``winhi``/``winlo``/``log`` where the treatment changed the value, else ``""``."""
    outliers: list[str]
    """Units beyond 1.5 × IQR of the quartiles of ``raw``."""
    treatment: dict[str, Any]
    """Skew and kurtosis before and after, points winsorised, log applied (empty if untreated)."""
    imputed: list[str]


def indicator_distribution(result: IndexResult, code: str) -> Distribution:
    """One indicator's distribution before and after treatment, with its outliers."""
    if code not in result.framework.indicators:
        raise SpecificationError(f"`{code}` is not an indicator of the built index")
    sets = result.datasets
    order = [k for k in sets if k not in ("normalised", "aggregated")]
    # the data set the treatment read: the step before it (raw when there was no treatment)
    before_name = order[order.index("treated") - 1] if "treated" in order else order[-1]
    if code not in sets[before_name].columns:
        raise SpecificationError(f"`{code}` was screened out of the built index")
    raw = sets[before_name][code].astype(float)
    treated = sets["treated"][code].astype(float) if "treated" in sets else raw
    flags = result.treated[code] if code in result.treated.columns else pd.Series("", raw.index)
    values = raw.dropna()
    outliers: list[str] = []
    if len(values) >= 4:
        q1, q3 = np.percentile(values, [25, 75])
        fence = 1.5 * (q3 - q1)
        outliers = [str(u) for u, v in values.items() if v < q1 - fence or v > q3 + fence]
    info: dict[str, Any] = {}
    if result.treatment is not None and code in result.treatment.index:
        row = result.treatment.loc[code]
        info = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    imputed = (
        [str(u) for u, v in result.imputed[code].items() if bool(v)]
        if code in result.imputed.columns
        else []
    )
    node = result.framework[code]
    return Distribution(
        code=code,
        name=node.name or code,
        unit=node.unit,
        raw=raw,
        treated=treated,
        flags=flags.astype(str),
        outliers=outliers,
        treatment=info,
        imputed=imputed,
    )


def correlations(
    result: IndexResult,
    level: int = 1,
    other: int | None = None,
    *,
    parent: str | None = None,
    dataset: str = "scores",
) -> pd.DataFrame:
    """Pearson correlations (pairwise complete) of the codes at ``level`` with those at ``other``
    (default: the same level); ``parent`` keeps only the row codes under that aggregate (and,
    within one level, the column codes too). Rows are ``level``'s codes, columns ``other``'s."""
    fw = result.framework
    if level not in fw.levels or (other is not None and other not in fw.levels):
        raise SpecificationError(
            f"no level {other if level in fw.levels else level}; the index has levels "
            f"{sorted(fw.levels)}"
        )
    frame = result.scores if dataset == "scores" else result.datasets[dataset]

    def codes(lvl: int, restrict: bool = True) -> list[str]:
        out = [c for c in fw.levels[lvl] if c in frame.columns]
        if parent is not None and restrict:
            if parent not in fw:
                raise SpecificationError(f"`{parent}` is not in the structure")
            under = set(fw.leaves_under(parent)) | {
                c for c in fw.aggregates if parent in fw.ancestors(c) or c == parent
            }
            out = [c for c in out if c in under]
        return out

    rows = codes(level)
    cols = rows if other is None or other == level else codes(other, restrict=False)
    if not rows or not cols:
        raise SpecificationError("no codes to correlate at these levels")
    both = list(dict.fromkeys(rows + cols))
    corr = frame[both].astype(float).corr(method="pearson", min_periods=3)
    return corr.loc[rows, cols]


def bump_table(ranks: Mapping[str, pd.Series], *, top: int | None = None) -> pd.DataFrame:
    """Units × labels of ranks, ordered by the first label's rank; ``top`` keeps the units within
    the top ``top`` in any of them."""
    if len(ranks) < 2:
        raise SpecificationError("a rank-change chart needs at least two rankings")
    table = pd.concat({str(k): v.astype(float) for k, v in ranks.items()}, axis=1)
    first = next(iter(table.columns))
    table = table.sort_values(first, na_position="last", kind="mergesort")
    if top is not None:
        table = table[(table <= top).any(axis=1)]
    table.index = table.index.astype(str)
    return table
