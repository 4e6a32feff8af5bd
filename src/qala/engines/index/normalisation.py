"""Normalisation: bring indicators onto a common scale where higher is better.

Every function takes the raw column ``x`` and the indicator's ``direction`` (1 higher is better,
-1 lower is better) and returns values oriented so that higher is better. Definitions follow the
OECD/JRC Handbook (2008, section 5) and COINr's ``n_*`` functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .ranking import min_ranks

FloatArray = npt.NDArray[np.float64]
Normaliser = Callable[..., FloatArray]

_CUSTOM: dict[str, Normaliser] = {}


def register_normaliser(name: str, function: Normaliser) -> None:
    """Make ``function(x, direction, **params)`` available as ``method: custom, function: name``.

    The spec stays serialisable: it names the function, and the program that loads the spec
    registers it first.
    """
    _CUSTOM[name] = function


def minmax(x: FloatArray, direction: int = 1, low: float = 0.0, high: float = 100.0) -> FloatArray:
    """``(x - min) / (max - min)`` scaled onto ``[low, high]`` (after orienting by direction)."""
    y = x * direction
    lo, hi = np.nanmin(y), np.nanmax(y)
    if hi == lo:
        return np.full_like(y, np.nan)
    return np.asarray((y - lo) / (hi - lo) * (high - low) + low, dtype=float)


def zscore(x: FloatArray, direction: int = 1, mean: float = 0.0, sd: float = 1.0) -> FloatArray:
    """Standardise to the given mean and standard deviation (sample sd, n - 1)."""
    y = x * direction
    s = np.nanstd(y, ddof=1)
    if s == 0 or np.isnan(s):
        return np.full_like(y, np.nan)
    return np.asarray((y - np.nanmean(y)) / s * sd + mean, dtype=float)


def rank(x: FloatArray, direction: int = 1) -> FloatArray:
    """Sport ranks (ties share the lowest rank), 1 = worst, n = best; NaN stays NaN."""
    y = x * direction
    out = np.full_like(y, np.nan)
    ok = ~np.isnan(y)
    out[ok] = min_ranks(y[ok])
    return out


def borda(x: FloatArray, direction: int = 1) -> FloatArray:
    """Borda score: ``rank - 1`` (the number of units a unit beats; ties share)."""
    return np.asarray(rank(x, direction) - 1, dtype=float)


def percentile(
    x: FloatArray, direction: int = 1, low: float = 0.0, high: float = 100.0
) -> FloatArray:
    """Percentile rank ``(rank - 1) / (n - 1)`` scaled onto ``[low, high]`` (COINr ``n_prank``)."""
    r = rank(x, direction)
    n = np.sum(~np.isnan(r))
    if n < 2:
        return np.full_like(r, np.nan)
    return np.asarray((r - 1) / (n - 1) * (high - low) + low, dtype=float)


def goalposts(
    x: FloatArray,
    direction: int = 1,
    lower: float = 0.0,
    upper: float = 1.0,
    scale: float = 100.0,
    truncate: bool = True,
) -> FloatArray:
    """Share of the way from the worst goalpost to the best (``lower``/``upper`` in raw units)."""
    if upper == lower:
        raise ValueError("goalposts need lower != upper")
    y = (x - lower) / (upper - lower) if direction == 1 else (upper - x) / (upper - lower)
    if truncate:
        y = np.clip(y, 0.0, 1.0)
    return np.asarray(y * scale, dtype=float)


def distance_to_target(
    x: FloatArray,
    direction: int = 1,
    target: float | None = None,
    scale: float = 100.0,
    cap: bool = True,
) -> FloatArray:
    """Progress from the worst observed value to ``target`` (1 = target reached), times scale.

    Higher-is-better: ``(x - min) / (target - min)``; lower-is-better: ``(max - x) / (max - target)``.
    """
    if target is None or np.isnan(target):
        raise ValueError("distance to target needs a target (the meta table's Target column)")
    if direction == 1:
        worst = np.nanmin(x)
        y = (x - worst) / (target - worst)
    else:
        worst = np.nanmax(x)
        y = (worst - x) / (worst - target)
    if cap:
        y = np.minimum(y, 1.0)
    return np.asarray(y * scale, dtype=float)


def distance_to_max(x: FloatArray, direction: int = 1, scale: float = 100.0) -> FloatArray:
    """``1 - (best - x) / (best - worst)``: the same shape as min-max on ``[0, scale]``."""
    return minmax(x, direction, 0.0, scale)


def piecewise(
    x: FloatArray,
    direction: int = 1,
    points: Sequence[Sequence[float]] = ((0.0, 0.0), (1.0, 100.0)),
    steps: bool = False,
) -> FloatArray:
    """A user-defined scoring curve given as ``[[x0, y0], [x1, y1], ...]`` (raw units).

    With ``steps=True`` a value scores ``y_i`` of the highest breakpoint ``x_i`` it reaches (bands,
    e.g. the national rating's 1–5 points in 20% bands); otherwise it is linear between points and
    flat outside. ``direction`` is ignored: the curve already says what is better.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 1:
        raise ValueError("points must be a list of [x, y] pairs")
    order = np.argsort(pts[:, 0])
    px, py = pts[order, 0], pts[order, 1]
    if steps:
        idx = np.searchsorted(px, x, side="right") - 1
        out = np.where(idx >= 0, py[np.clip(idx, 0, None)], py[0])
        return np.where(np.isnan(x), np.nan, out).astype(float)
    return np.asarray(np.interp(x, px, py), dtype=float) + np.where(np.isnan(x), np.nan, 0.0)


METHODS: dict[str, Normaliser] = {
    "minmax": minmax,
    "zscore": zscore,
    "rank": rank,
    "borda": borda,
    "percentile": percentile,
    "goalposts": goalposts,
    "distance_to_target": distance_to_target,
    "distance_to_max": distance_to_max,
    "custom": piecewise,
}


def normalise_column(
    x: FloatArray,
    method: str,
    direction: int,
    params: Mapping[str, Any],
    *,
    target: float | None = None,
) -> FloatArray:
    """Apply one named method with its parameters to one column."""
    params = dict(params)
    if method == "none":
        return np.asarray(x * direction, dtype=float)
    if method == "custom" and "function" in params:
        name = params.pop("function")
        if name not in _CUSTOM:
            raise KeyError(f"custom normaliser `{name}` is not registered")
        return np.asarray(_CUSTOM[name](x, direction, **params), dtype=float)
    if method == "distance_to_target" and "target" not in params:
        params["target"] = target
    try:
        fn = METHODS[method]
    except KeyError:
        raise KeyError(
            f"unknown normalisation `{method}`; expected one of {sorted([*METHODS, 'none'])}"
        ) from None
    return np.asarray(fn(x, direction, **params), dtype=float)
