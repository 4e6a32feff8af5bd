"""Matplotlib figures for uncertainty and sensitivity results and the analysis views (sunburst,
distribution, correlation heat map, rank changes); returned, never saved here."""

from __future__ import annotations

from typing import Any

from .framework import Framework
from .uncertainty import UncertaintyResult
from .views import Distribution, sunburst_arcs


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


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def sunburst_figure(framework: Framework, *, title: str | None = None) -> Any:
    """The framework as rings (root inside); each arc's angle is the node's effective weight."""
    import numpy as np

    plt = _pyplot()
    arcs = sunburst_arcs(framework)
    depth = max(a.depth for a in arcs)
    fig, ax = plt.subplots(figsize=(7, 7), subplot_kw={"projection": "polar"})
    cmap = plt.get_cmap("tab20")
    # colour by the second ring when there is one (pillars), so neighbouring groups differ
    band = 2 if depth >= 3 and sum(1 for a in arcs if a.depth == 1) < 4 else 1
    top = {a.code: i for i, a in enumerate(x for x in arcs if x.depth == band)}
    owner: dict[str, str] = {}
    for a in arcs:
        owner[a.code] = a.code if a.depth <= band else owner[a.parent or ""]
    for a in arcs:
        if a.depth == 0:
            continue
        width = 2 * np.pi * (a.end - a.start)
        colour = cmap(top.get(owner[a.code], 0) % 20)
        ax.bar(
            2 * np.pi * a.start,
            1.0,
            width=width,
            bottom=a.depth,
            align="edge",
            color=colour,
            alpha=1.0 - 0.18 * (a.depth - 1),
            edgecolor="white",
            linewidth=0.5,
        )
        if a.depth == 1 or (a.depth < depth and width > 0.25):
            angle = 2 * np.pi * (a.start + a.end) / 2
            ax.text(angle, a.depth + 0.5, a.name[:18], ha="center", va="center", fontsize=7)
    ax.set_axis_off()
    ax.set_ylim(0, depth + 1)
    ax.set_title(title or framework[framework.root].name or framework.root)
    fig.tight_layout()
    return fig


def distribution_figure(dist: Distribution) -> Any:
    """Values before and after treatment as dots; outliers ringed, treated values marked."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    rng = np.random.default_rng(0)
    for row, series in enumerate((dist.raw, dist.treated)):
        values = series.dropna()
        jitter = rng.uniform(-0.15, 0.15, len(values))
        ax.scatter(values, row + jitter, s=14, color="#1f4e79", alpha=0.7, label=None)
        if row == 0 and dist.outliers:
            out = values[values.index.astype(str).isin(dist.outliers)]
            ax.scatter(
                out,
                np.zeros(len(out)),
                s=60,
                facecolors="none",
                edgecolors="#d9534f",
                label="outlier (1.5 × IQR)",
            )
        if row == 1:
            changed = values[dist.flags.reindex(values.index).fillna("") != ""]
            if len(changed):
                ax.scatter(
                    changed,
                    np.ones(len(changed)),
                    s=40,
                    marker="x",
                    color="#f0ad4e",
                    label="changed by treatment",
                )
        ax.boxplot(values, positions=[row], orientation="horizontal", widths=0.5, showfliers=False)
    ax.set_yticks([0, 1])
    ax.set_yticklabels(["before treatment", "after treatment"])
    applied = dist.treatment
    note = (
        f"skew {applied.get('skew', float('nan')):.2f} → {applied.get('skew_after', float('nan')):.2f}, "
        f"winsorised {applied.get('winsorised', 0)}, log {bool(applied.get('log', False))}"
        if applied
        else "no treatment"
    )
    ax.set_title(f"{dist.name} ({dist.code}): {note}", fontsize=9)
    if dist.outliers or (dist.flags != "").any():
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def correlation_figure(corr: Any, *, title: str = "Pearson correlation") -> Any:
    """Heat map of a correlation table (rows × columns), values written in the cells."""
    import numpy as np

    plt = _pyplot()
    rows, cols = corr.shape
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * cols + 3), max(4.0, 0.35 * rows + 2)))
    image = ax.imshow(corr.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(cols))
    ax.set_xticklabels([str(c).rsplit(".", 1)[-1] for c in corr.columns], rotation=90, fontsize=7)
    ax.set_yticks(range(rows))
    ax.set_yticklabels([str(c).rsplit(".", 1)[-1] for c in corr.index], fontsize=7)
    if rows * cols <= 400:
        values = corr.to_numpy(dtype=float)
        for i in range(rows):
            for j in range(cols):
                if not np.isnan(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def bump_figure(table: Any, *, title: str = "Rank changes") -> Any:
    """Each unit's rank under each labelled ranking, joined by lines (rank 1 on top)."""
    plt = _pyplot()
    labels = list(table.columns)
    n = len(table)
    fig, ax = plt.subplots(figsize=(2.2 * len(labels) + 3, max(4.0, 0.18 * n + 1.5)))
    cmap = plt.get_cmap("tab20")
    for i, (unit, row) in enumerate(table.iterrows()):
        ax.plot(
            range(len(labels)),
            row.to_numpy(dtype=float),
            marker="o",
            ms=3,
            lw=1.2,
            color=cmap(i % 20),
        )
        first, last = row.iloc[0], row.iloc[-1]
        if first == first:
            ax.text(-0.08, first, str(unit), ha="right", va="center", fontsize=6)
        if last == last:
            ax.text(len(labels) - 1 + 0.08, last, str(unit), ha="left", va="center", fontsize=6)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.invert_yaxis()
    ax.set_ylabel("rank (1 = best)")
    ax.set_title(title)
    fig.tight_layout()
    return fig
