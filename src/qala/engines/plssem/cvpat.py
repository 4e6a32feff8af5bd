"""CVPAT, the cross-validated predictive ability test (Liengaard et al. 2021).

Each observation's loss is its squared out-of-sample prediction error averaged over every
indicator of the endogenous constructs, predicted by k-fold cross-validation (the PLSpredict
route of :mod:`qala.engines.plssem.predict`) and averaged over repeated random splits. The PLS
model's losses are compared with two benchmarks on the same folds: the indicator average (IA,
the training-sample mean of each indicator) and the linear model (LM, each endogenous indicator
regressed on the indicators of the exogenous constructs that affect its construct).

The test is Liengaard et al.'s paired t-test on the loss differences ``D_i = L_PLS,i -
L_bench,i``: ``T = mean(D) / (sd(D) / √n)`` with n - 1 degrees of freedom, one-sided against the
alternative that the PLS model predicts better (a negative mean difference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qala.core.errors import SpecificationError
from qala.engines.plssem.distributions import t_sf
from qala.engines.plssem.predict import cross_validated_predictions, fold_assignments

if TYPE_CHECKING:
    from qala.engines.plssem.estimates import PLSEstimates

BENCHMARKS: tuple[str, ...] = ("IA", "LM")


@dataclass(frozen=True)
class PairedLossTest:
    """One benchmark's comparison: average losses, their difference, T and the p value."""

    pls_loss: float
    benchmark_loss: float
    difference: float  # PLS minus benchmark: negative when the PLS model predicts better
    t: float
    p: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            name: (float(value) if math.isfinite(value) else None)
            for name, value in (
                ("pls_loss", self.pls_loss),
                ("benchmark_loss", self.benchmark_loss),
                ("difference", self.difference),
                ("t", self.t),
                ("p", self.p),
            )
        }


def paired_loss_test(pls_losses: np.ndarray, benchmark_losses: np.ndarray) -> PairedLossTest:
    """Liengaard et al.'s one-sided paired t-test of per-observation losses."""
    d = np.asarray(pls_losses, dtype=float) - np.asarray(benchmark_losses, dtype=float)
    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    t = (
        mean / (sd / math.sqrt(n))
        if sd > 0
        else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    )
    p = float(t_sf(np.array([-t]), n - 1)[0])  # P(T ≤ t) under the null of equal losses
    return PairedLossTest(float(pls_losses.mean()), float(benchmark_losses.mean()), mean, t, p)


@dataclass
class CVPATResults:
    """CVPAT against the indicator average (``tests["IA"]``) and the linear model
    (``tests["LM"]``); ``losses`` holds each observation's average loss per model
    (columns PLS, IA, LM), averaged over the repeats."""

    tests: dict[str, PairedLossTest]
    losses: np.ndarray
    folds: int
    repeats: int
    seed: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "folds": self.folds,
            "repeats": self.repeats,
            "seed": self.seed,
            "against": {name: test.to_dict() for name, test in self.tests.items()},
        }

    def summary(self, digits: int = 3) -> str:
        fmt = f"{{:.{digits}f}}".format
        lines = [
            f"CVPAT ({self.folds} folds × {self.repeats} repeats, seed {self.seed})",
            "-" * 60,
            f"  {'against':<10}{'PLS loss':>10}{'bench loss':>12}{'diff':>9}{'t':>8}{'p':>8}",
        ]
        for name, test in self.tests.items():
            lines.append(
                f"  {name:<10}{fmt(test.pls_loss):>10}{fmt(test.benchmark_loss):>12}"
                f"{fmt(test.difference):>9}{test.t:>8.2f}{fmt(test.p):>8}"
            )
        lines.append("  p: one-sided, the PLS model predicts better than the benchmark")
        return "\n".join(lines)


def cvpat(
    results: PLSEstimates, *, folds: int = 10, repeats: int = 10, seed: int | None = 0
) -> CVPATResults:
    """Run CVPAT on a fitted model (without higher-order constructs or interaction terms).

    Parameters
    ----------
    folds
        Cross-validation folds; each observation is predicted once per repeat.
    repeats
        Random k-fold splits; each observation's losses are averaged over them.
    seed
        Seed of the fold assignments.
    """
    n = results.n_obs
    if not 2 <= folds <= n:
        raise SpecificationError(f"`folds` must be between 2 and the sample size {n}")
    if repeats < 1:
        raise SpecificationError("`repeats` must be at least 1")
    rng = np.random.default_rng(seed)
    losses = np.zeros((n, 3))
    for _ in range(repeats):
        actual, pls_pred, lm_pred, naive = cross_validated_predictions(
            results, fold_assignments(n, folds, rng)
        )
        for column, predicted in enumerate((pls_pred, naive, lm_pred)):
            losses[:, column] += ((actual - predicted) ** 2).mean(axis=1)
    losses /= repeats
    tests = {
        "IA": paired_loss_test(losses[:, 0], losses[:, 1]),
        "LM": paired_loss_test(losses[:, 0], losses[:, 2]),
    }
    return CVPATResults(tests, losses, folds, repeats, seed)
