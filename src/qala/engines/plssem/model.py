"""The PLS-SEM estimator: ``PLSSEM(spec, scheme=..., consistent=...).fit(data)``.

The plan of the model and the batched fitting live in :mod:`qala.engines.plssem.estimation`;
the fitted model is a :class:`~qala.engines.plssem.results.PLSResults`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qala.core.errors import ConvergenceError, SpecificationError
from qala.engines.plssem import kernel as k
from qala.engines.plssem.estimation import (
    ColumnData,
    Missing,
    build_plan,
    fit_counts,
    prepare_indicators,
)
from qala.engines.plssem.results import PLSResults
from qala.engines.plssem.spec import ModelSpec, parse_model

if TYPE_CHECKING:
    import pandas as pd


class PLSSEM:
    """Partial least squares structural equation model (PLS path modelling).

    Parameters
    ----------
    spec
        A :class:`ModelSpec` or its lavaan-like text (see :func:`parse_model`).
    scheme
        Inner weighting scheme: ``"path"`` (default), ``"factor"`` (factorial) or
        ``"centroid"``.
    consistent
        Apply consistent PLS (PLSc; Dijkstra & Henseler 2015) to reflective (``=~``)
        constructs: correlations are disattenuated with rho_A and loadings corrected.
    max_iter, tol
        Stop when the summed absolute change of the outer weights is below ``tol``; raise
        :class:`ConvergenceError` when ``max_iter`` iterations do not get there.
    missing
        ``"error"`` (default) reports every missing value; ``"mean"`` replaces it by the
        column mean; ``"drop"`` removes incomplete rows.

    Examples
    --------
    >>> results = PLSSEM("Y =~ y1 + y2\\nX =~ x1 + x2\\nY ~ X").fit(frame)  # doctest: +SKIP
    >>> print(results.summary())  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: ModelSpec | str,
        *,
        scheme: str = "path",
        consistent: bool = False,
        max_iter: int = 300,
        tol: float = 1e-7,
        missing: Missing = "error",
    ) -> None:
        if scheme not in k.SCHEMES:
            raise SpecificationError(
                f"`scheme` must be one of {', '.join(k.SCHEMES)}; got {scheme!r}"
            )
        if missing not in ("error", "mean", "drop"):
            raise SpecificationError(f"`missing` must be error, mean or drop; got {missing!r}")
        if max_iter < 1 or not tol > 0:
            raise SpecificationError("`max_iter` must be ≥ 1 and `tol` > 0")
        self.spec = parse_model(spec) if isinstance(spec, str) else spec
        if not isinstance(spec, str):
            self.spec.validate()
        self.scheme = scheme
        self.consistent = consistent
        self.max_iter = max_iter
        self.tol = tol
        self.missing: Missing = missing
        self.plan_ = build_plan(self.spec)

    def fit(self, data: pd.DataFrame | ColumnData) -> PLSResults:
        """Estimate the model on ``data`` (one row per respondent, one column per indicator):
        a DataFrame, or plain columns (name → cells, as read from a CSV without pandas)."""
        indicators = prepare_indicators(data, self.plan_.observed, self.missing)
        values = indicators.values
        centred = values - values.mean(axis=0)
        fit = fit_counts(
            self.plan_,
            centred,
            np.ones((1, len(values))),
            scheme=self.scheme,
            consistent=self.consistent,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        if not fit.converged[0]:
            if not np.isfinite(fit.estimates.weights).all():
                raise SpecificationError(
                    "the model is not identified: construct scores became perfectly collinear "
                    "(duplicate constructs or indicators?) so a regression has no unique solution"
                )
            if not np.isfinite(fit.s_final).all():
                raise SpecificationError(
                    "the stage-two indicators are degenerate (a construct score is constant); "
                    "check the first-stage model"
                )
            raise ConvergenceError(
                f"PLS did not converge within {self.max_iter} iterations (scheme "
                f"{self.scheme!r}, tolerance {self.tol:g}); raise `max_iter`, try another scheme, "
                "or check for near-duplicate or inconsistent indicators"
            )
        est = fit.estimates
        if not np.isfinite(est.paths).all():
            raise SpecificationError(
                "the structural model is not identified: construct scores are perfectly "
                "collinear among the predictors of an endogenous construct"
            )
        self.results_ = PLSResults(self, indicators, fit)
        return self.results_
