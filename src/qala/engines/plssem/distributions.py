"""The normal and Student t functions the bootstrap summaries need, in NumPy and the standard
library: SciPy's special-function module takes longer to import (about 0.1–0.2 s) than a whole
5,000-resample bootstrap's summaries take to compute.

``normal_cdf`` uses ``erfc``, ``normal_ppf`` Wichura's AS 241 (``statistics.NormalDist``) and
``t_sf`` the regularised incomplete beta function by its continued fraction (Lentz's method);
all agree with ``scipy.special`` (``ndtr``, ``ndtri``, ``stdtr``) to about 1e-15.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_STANDARD_NORMAL = NormalDist()


def normal_cdf(x: npt.ArrayLike) -> FloatArray:
    """Standard normal distribution function, element-wise (NaN stays NaN)."""
    values = np.asarray(x, dtype=float)
    out = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in values.ravel()], dtype=float)
    return out.reshape(values.shape)


def normal_ppf(p: npt.ArrayLike) -> FloatArray:
    """Standard normal quantile function, element-wise; -inf at 0, inf at 1, NaN outside."""
    values = np.asarray(p, dtype=float)
    out = np.array([_ppf(v) for v in values.ravel()], dtype=float)
    return out.reshape(values.shape)


def _ppf(p: float) -> float:
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if not 0.0 < p < 1.0:  # NaN included
        return math.nan
    return _STANDARD_NORMAL.inv_cdf(p)


def t_sf(t: npt.ArrayLike, df: float) -> FloatArray:
    """Survival function ``P(T > t)`` of Student's t with ``df`` degrees of freedom."""
    values = np.asarray(t, dtype=float)
    out = np.array([_t_sf(v, float(df)) for v in values.ravel()], dtype=float)
    return out.reshape(values.shape)


def _t_sf(t: float, df: float) -> float:
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    # P(|T| > |t|) = I_x(df/2, 1/2) with x = df / (df + t²); x and 1 - x and their logarithms
    # are formed separately so that neither loses digits when the other is near 1
    t2 = t * t
    total = df + t2
    x, y = df / total, t2 / total
    log_x = -math.log1p(t2 / df)
    log_y = math.log(t2) - math.log(total) if t2 > 0 else -math.inf
    tail = 0.5 * _regularised_beta(df / 2.0, 0.5, x, y, log_x, log_y)
    return tail if t >= 0 else 1.0 - tail


def _regularised_beta(a: float, b: float, x: float, y: float, log_x: float, log_y: float) -> float:
    """``I_x(a, b)`` with ``y = 1 - x``; the continued fraction converges fast below
    (a+1)/(a+b+2), so above it the symmetry ``I_x(a, b) = 1 - I_y(b, a)`` is used."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = a * log_x + b * log_y - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def _log_beta(a: float, b: float) -> float:
    """``ln B(a, b)``; for large ``a`` the difference ``ln Γ(a+b) - ln Γ(a)`` comes from
    Stirling's series, as the two log-gammas themselves are large and their difference would
    keep only their absolute precision (1e-11 at a = 2,500)."""
    if a < 50.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    difference = (
        b * math.log(a)
        + (a - 0.5 + b) * math.log1p(b / a)
        - b
        + _stirling_correction(a + b)
        - _stirling_correction(a)
    )
    return math.lgamma(b) - difference


def _stirling_correction(x: float) -> float:
    """``ln Γ(x) - ((x - 1/2) ln x - x + ln(2π)/2)`` for x ≥ 50 (error below 1e-18)."""
    inv = 1.0 / x
    inv2 = inv * inv
    return inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))


def _beta_fraction(a: float, b: float, x: float, max_terms: int = 10_000) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_terms + 1):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return h
