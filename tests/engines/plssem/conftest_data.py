"""Synthetic survey data from a known population model, shared by the PLS-SEM tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

SMALL_MODEL = """
X =~ x1 + x2 + x3
M =~ m1 + m2 + m3
Y =~ y1 + y2 + y3
M ~ X
Y ~ X + M
"""


def simulate(n: int = 300, seed: int = 0, loading: float = 0.8) -> pd.DataFrame:
    """X -> M (0.5), X -> Y (0.3), M -> Y (0.4); three items per construct, loading ``loading``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    m = 0.5 * x + np.sqrt(1 - 0.25) * rng.standard_normal(n)
    # var(0.3x + 0.4m) = 0.09 + 0.16 + 2*0.3*0.4*0.5 = 0.37
    y = 0.3 * x + 0.4 * m + np.sqrt(1 - 0.37) * rng.standard_normal(n)
    noise = np.sqrt(1 - loading**2)
    cols = {}
    for name, latent in (("x", x), ("m", m), ("y", y)):
        for i in range(1, 4):
            cols[f"{name}{i}"] = loading * latent + noise * rng.standard_normal(n)
    return pd.DataFrame(cols)
