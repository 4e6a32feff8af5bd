"""Matplotlib figures for uncertainty and sensitivity results (returned, never saved here)."""

from __future__ import annotations

from typing import Any

from .uncertainty import UncertaintyResult


def rank_interval_figure(result: UncertaintyResult, *, highlight: str | None = None) -> Any:
    """Units ordered by nominal rank: nominal rank, median rank and the 5–95% interval."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stats = result.rank_stats.sort_values("nominal")
    n = len(stats)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * n + 2), 4.5))
    x = range(n)
    ax.vlines(x, stats["q05"], stats["q95"], color="#8fb3d9", linewidth=4, label="5–95% interval")
    ax.scatter(x, stats["median"], color="#1f4e79", s=14, zorder=3, label="median rank")
    ax.scatter(
        x, stats["nominal"], color="#d9534f", marker="_", s=60, zorder=4, label="nominal rank"
    )
    if highlight is not None and highlight in stats.index:
        i = list(stats.index).index(highlight)
        ax.axvspan(i - 0.5, i + 0.5, color="#f0ad4e", alpha=0.3)
    ax.set_xticks(list(x))
    ax.set_xticklabels([str(u) for u in stats.index], rotation=90, fontsize=7)
    ax.invert_yaxis()
    ax.set_ylabel(f"rank of {result.target} (1 = best)")
    ax.set_title(f"Rank uncertainty over {result.runs - result.failed} replications")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def sobol_figure(result: UncertaintyResult) -> Any:
    """Bar chart of first-order and total Sobol indices with their confidence half-widths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    if result.sensitivity is None:
        raise ValueError("no sensitivity indices: run with method='sobol'")
    s = result.sensitivity
    pos = np.arange(len(s))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.bar(
        pos - 0.2,
        s["S1"],
        0.4,
        yerr=s["S1_conf"],
        label="first order S1",
        color="#8fb3d9",
        capsize=3,
    )
    ax.bar(pos + 0.2, s["ST"], 0.4, yerr=s["ST_conf"], label="total ST", color="#1f4e79", capsize=3)
    ax.set_xticks(pos)
    ax.set_xticklabels(list(s.index))
    ax.set_ylabel("Sobol index of mean |rank shift|")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title(f"Sensitivity of {result.target} ranks ({result.runs} runs)")
    fig.tight_layout()
    return fig
