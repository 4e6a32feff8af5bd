"""Path diagram of a fitted model, drawn with matplotlib (no Graphviz needed).

Constructs are placed in columns by their depth in the structural model (exogenous on the
left), drawn as ellipses with R² under endogenous ones; arrows carry the path coefficients, with
significance stars when bootstrap results are given. Indicators are listed with their loadings
(reflective) or weights (formative) beside each construct.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyArrowPatch

if TYPE_CHECKING:
    from qala.engines.plssem.bootstrap import BootstrapResults
    from qala.engines.plssem.results import PLSResults


def _depths(names: list[str], adjacency: np.ndarray) -> dict[str, int]:
    depth = dict.fromkeys(names, 0)
    for _ in range(len(names)):
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if adjacency[i, j] and depth[b] < depth[a] + 1:
                    depth[b] = depth[a] + 1
    return depth


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def path_diagram(results: PLSResults, boot: BootstrapResults | None = None) -> Figure:
    """Return a matplotlib :class:`~matplotlib.figure.Figure` of the structural model."""
    layout = results.layout
    names = list(layout.constructs)
    depth = _depths(names, layout.adjacency)
    columns: dict[int, list[str]] = {}
    for name in names:
        columns.setdefault(depth[name], []).append(name)
    n_cols = max(columns) + 1
    n_rows = max(len(v) for v in columns.values())
    step = 3.6
    width = step * n_cols + 0.6
    height = max(1.7 * n_rows, 5.0) + 2.0
    fig = Figure(figsize=(width, height), dpi=110)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, name in enumerate(members):
            x = 1.45 + col * step
            if len(members) == 1:
                # zig-zag lone constructs so that long paths do not run through them
                y = height / 2 + (0.9 if col % 2 else -0.9) * (n_rows == 1)
            else:
                y = height - (row + 0.5) * height / len(members)
            pos[name] = (x, y)
    ew, eh = 2.0, 0.8
    r2 = results.r2
    loadings = results.loadings
    weights = results.weights
    for j, name in enumerate(names):
        x, y = pos[name]
        ax.add_patch(Ellipse((x, y), ew, eh, facecolor="#e8f1fb", edgecolor="#1f4e79", lw=1.4))
        ax.text(x, y + 0.08, name, ha="center", va="center", fontsize=9, weight="bold")
        if name in r2.index:
            ax.text(x, y - 0.2, f"R² = {r2[name]:.3f}", ha="center", va="center", fontsize=7.5)
        block = weights if layout.mode_b[j] else loadings
        items = [(i, v) for i, v in block[name].items() if v != 0]
        label = "\n".join(f"{i} {v:.2f}" for i, v in items[:8])
        if len(items) > 8:
            label += f"\n… {len(items) - 8} more"
        ax.text(x, y - eh / 2 - 0.08, label, ha="center", va="top", fontsize=6, color="#555555")
    for p in results.plan.spec.paths:
        (x1, y1), (x2, y2) = pos[p.source], pos[p.target]
        span = abs(depth[p.target] - depth[p.source])
        bend = min(0.7 + 0.3 * span, 2.0) / max(abs(x2 - x1), 1e-9) * 2
        upper = (y1 + y2) / 2 >= height / 2 - 1e-9
        rad = 0.0 if span <= 1 else (-bend if upper else bend)
        start = (
            (x1 + ew / 2 * 0.9, y1) if span <= 1 else (x1, y1 + (eh / 2 if rad < 0 else -eh / 2))
        )
        end = (x2 - ew / 2 * 0.95, y2) if span <= 1 else (x2, y2 + (eh / 2 if rad < 0 else -eh / 2))
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="-|>",
                mutation_scale=12,
                color="#333333",
                lw=1.0,
                connectionstyle=f"arc3,rad={rad}",
            )
        )
        # label at the arc's midpoint: chord midpoint pushed out along the chord's normal
        # straight arrows: label 40% of the way, where converging arrows are still apart
        share = 0.5 if rad else 0.4
        mx = start[0] + share * (end[0] - start[0])
        my = start[1] + share * (end[1] - start[1])
        dx, dy = end[0] - start[0], end[1] - start[1]
        mx, my = mx + 0.5 * rad * dy, my - 0.5 * rad * dx
        text = f"{results.paths[p.label]:.3f}"
        if boot is not None:
            text += _stars(float(boot.paths.loc[p.label, "p"]))
        ax.text(
            mx,
            my,
            text,
            ha="center",
            va="center",
            fontsize=7.5,
            color="#8b0000",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
        )
    return fig


def path_diagram_png(results: PLSResults, boot: BootstrapResults | None = None) -> bytes:
    """The path diagram as PNG bytes (the caller decides where to write them)."""
    fig = path_diagram(results, boot)
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_figure(buffer, format="png")  # print_png: same bytes, untyped
    return buffer.getvalue()
