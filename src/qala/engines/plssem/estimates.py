"""Estimates of a PLS-SEM fit and their quality measures as DataFrames, text and dicts.

:class:`PLSEstimates` is what the follow-up analyses (bootstrap, PLSpredict, IPMA) read;
:class:`~qala.engines.plssem.results.PLSResults` adds those analyses as methods.

The numbers are computed with NumPy; pandas is imported only when a table is asked for, so a
command that prints a few figures (``qala sem fit``) does not pay for importing it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from qala.engines.plssem import kernel as k

if TYPE_CHECKING:
    import pandas as pd

    from qala.engines.plssem.estimation import BatchFit, FitSettings, Indicators


def _clean(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _nested(frame: pd.DataFrame, *, skip_zero: bool = False) -> dict[str, dict[str, float | None]]:
    """``{column: {row: value}}`` — e.g. ``{"Construct": {"item": loading}}``."""
    out: dict[str, dict[str, float | None]] = {}
    for col in frame.columns:
        inner: dict[str, float | None] = {}
        for row, value in frame[col].items():
            if skip_zero and value == 0:
                continue
            if not skip_zero and row == col:
                continue
            inner[str(row)] = _clean(float(value))
        out[str(col)] = inner
    return out


class PLSEstimates:
    """Estimates of a fitted :class:`~qala.engines.plssem.model.PLSSEM` model.

    Tables are pandas objects computed on first use. Construct order follows the model text.
    """

    def __init__(self, model: FitSettings, data: Indicators, fit: BatchFit) -> None:
        self.model = model
        self.plan = model.plan_
        self.indicators = data
        self.values = data.values  # n × p, in the order of ``plan.observed``
        self.n_obs = len(data.values)
        self.scheme = model.scheme
        self.consistent = model.consistent
        self._fit = fit
        self.estimates = fit.estimates
        self.layout = self.plan.final
        self.constructs: list[str] = list(self.layout.constructs)
        self.iterations = int(fit.iterations[0])

    @cached_property
    def data(self) -> pd.DataFrame:
        """The indicator data the model was fitted on (rows keep their labels)."""
        return self.indicators.frame()

    # -- core estimates -------------------------------------------------------------------------
    @cached_property
    def _dimension_blocks(self) -> tuple[list[str], list[str]]:
        """Items and constructs that only the first stage estimates (higher-order dimensions)."""
        first = self.plan.first
        if first is None:
            return [], []
        dims = [d.name for d in self.plan.derived if d.kind == "score"]
        dim_idx = [first.constructs.index(d) for d in dims]
        items = [first.columns[i] for j in dim_idx for i in first.items_of(j)]
        return items, dims

    def _combined(self, final: np.ndarray, first: np.ndarray | None) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame(final, index=list(self.layout.columns), columns=self.constructs)
        items, dims = self._dimension_blocks
        if not dims or first is None or self.plan.first is None:
            return frame
        fl = self.plan.first
        extra = pd.DataFrame(first, index=list(fl.columns), columns=list(fl.constructs))
        extra = extra.loc[items, dims]
        return pd.concat([frame, extra], axis=0).fillna(0.0)

    @cached_property
    def weights(self) -> pd.DataFrame:
        """Outer weights (items × constructs; zero where an item does not measure a construct)."""
        w = self.estimates.weights[0] * self.layout.membership
        first = None if self._fit.first_weights is None else self._fit.first_weights[0]
        if first is not None and self.plan.first is not None:
            first = first * self.plan.first.membership
        return self._combined(w, first)

    @cached_property
    def loadings(self) -> pd.DataFrame:
        """Outer loadings (items × constructs); PLSc-corrected for reflective constructs."""
        first = None if self._fit.first_loadings is None else self._fit.first_loadings[0]
        return self._combined(self.estimates.loadings[0], first)

    @cached_property
    def path_matrix(self) -> pd.DataFrame:
        """Path coefficients, rows = from, columns = to."""
        import pandas as pd

        return pd.DataFrame(self.estimates.paths[0], index=self.constructs, columns=self.constructs)

    @cached_property
    def coefficients(self) -> dict[str, float]:
        """Path coefficients by ``"From -> To"`` in model order (plain floats)."""
        index = {name: j for j, name in enumerate(self.constructs)}
        paths = self.estimates.paths[0]
        return {
            p.label: float(paths[index[p.source], index[p.target]]) for p in self.plan.spec.paths
        }

    @cached_property
    def paths(self) -> pd.Series:
        """Path coefficients indexed ``"From -> To"`` in model order."""
        import pandas as pd

        return pd.Series(self.coefficients, name="coefficient", dtype=float)

    @cached_property
    def r2_values(self) -> dict[str, tuple[float, float]]:
        """(R², adjusted R²) of each endogenous construct; adjusted is
        ``1 - (1 - R²)(n - 1)/(n - p - 1)`` with p predictors."""
        n = self.n_obs
        out: dict[str, tuple[float, float]] = {}
        for j in self.layout.endogenous:
            r2 = float(self.estimates.r2[0, j])
            p = len(self.layout.predecessors(j))
            out[self.constructs[j]] = (r2, 1 - (1 - r2) * (n - 1) / (n - p - 1))
        return out

    @cached_property
    def r2(self) -> pd.Series:
        """R² of each endogenous construct."""
        import pandas as pd

        values = {c: v[0] for c, v in self.r2_values.items()}
        return pd.Series(values, name="r2", dtype=float)

    @cached_property
    def r2_adj(self) -> pd.Series:
        """Adjusted R²: ``1 - (1 - R²)(n - 1)/(n - p - 1)`` with p predictors."""
        import pandas as pd

        values = {c: v[1] for c, v in self.r2_values.items()}
        return pd.Series(values, name="r2_adj", dtype=float)

    @cached_property
    def construct_correlations(self) -> pd.DataFrame:
        """Construct correlations (disattenuated under PLSc)."""
        import pandas as pd

        return pd.DataFrame(
            self.estimates.construct_corr[0], index=self.constructs, columns=self.constructs
        )

    @cached_property
    def scores(self) -> pd.DataFrame:
        """Construct scores (standardised, one row per observation)."""
        import pandas as pd

        values = self.values
        z = (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
        obs = list(self.plan.final_observed)
        cols = [z[:, obs]]
        if self.plan.first is not None and self._fit.first_weights is not None:
            s1 = z @ self._fit.first_weights[0]
            for d in self.plan.derived:
                if d.kind == "score":
                    cols.append(s1[:, d.sources[0] : d.sources[0] + 1])
                else:
                    cols.append((s1[:, d.sources[0]] * s1[:, d.sources[1]])[:, None])
        f = np.concatenate(cols, axis=1)
        f = (f - f.mean(axis=0)) / f.std(axis=0, ddof=1)
        return pd.DataFrame(
            f @ self.estimates.weights[0], index=self.indicators.rows, columns=self.constructs
        )

    # -- measurement model quality --------------------------------------------------------------
    @cached_property
    def _s(self) -> np.ndarray:
        return np.asarray(self._fit.s_final[0])

    @property
    def indicator_correlations(self) -> np.ndarray:
        """Correlation matrix of the (final stage's) indicators, in the layout's column order."""
        return self._s

    def _items_of(self, j: int) -> list[int]:
        return self.layout.items_of(j)

    @cached_property
    def reliability_values(self) -> dict[str, dict[str, float]]:
        """``{construct: {"alpha", "rho_a", "rho_c", "ave"}}`` (plain floats)."""
        rows = []
        loadings = self.estimates.loadings[0]
        for j, name in enumerate(self.constructs):
            items = self._items_of(j)
            m = len(items)
            if m <= 1:
                rows.append((name, 1.0, 1.0, 1.0, 1.0))
                continue
            block = self._s[np.ix_(items, items)]
            alpha = (m / (m - 1)) * (1 - m / block.sum())
            lam = loadings[items, j]
            total = lam.sum()
            rho_c = total**2 / (total**2 + (1 - lam**2).sum())
            ave = float((lam**2).mean())
            rows.append((name, alpha, float(self.estimates.rho_a[0, j]), rho_c, ave))
        return {
            name: {"alpha": float(a), "rho_a": float(ra), "rho_c": float(rc), "ave": float(v)}
            for name, a, ra, rc, v in rows
        }

    @cached_property
    def reliability(self) -> pd.DataFrame:
        """Cronbach's alpha, rho_A, composite reliability rho_C and AVE per construct."""
        import pandas as pd

        frame = pd.DataFrame.from_dict(self.reliability_values, orient="index")
        frame.index.name = "construct"
        return frame[["alpha", "rho_a", "rho_c", "ave"]]

    @cached_property
    def htmt(self) -> pd.DataFrame:
        """Heterotrait–monotrait ratios (symmetric; NaN on the diagonal)."""
        import pandas as pd

        h = k.htmt(self._fit.s_final, self.layout)[0]
        return pd.DataFrame(h, index=self.constructs, columns=self.constructs)

    @cached_property
    def htmt2(self) -> pd.DataFrame:
        """HTMT2: HTMT with geometric means (symmetric; NaN on the diagonal and where a
        correlation between the blocks is not positive)."""
        import pandas as pd

        h = k.htmt2(self._fit.s_final, self.layout)[0]
        return pd.DataFrame(h, index=self.constructs, columns=self.constructs)

    @cached_property
    def fornell_larcker(self) -> pd.DataFrame:
        """Construct score correlations with sqrt(AVE) on the diagonal (lower triangle)."""
        import pandas as pd

        r = k.score_correlations(self._fit.s_final, self.estimates.weights)[0].copy()
        r[np.triu_indices_from(r, 1)] = np.nan
        np.fill_diagonal(r, np.sqrt(self.reliability["ave"].to_numpy()))
        return pd.DataFrame(r, index=self.constructs, columns=self.constructs)

    @cached_property
    def cross_loadings(self) -> pd.DataFrame:
        """Correlation of every indicator with every construct score."""
        import pandas as pd

        return pd.DataFrame(
            self.estimates.item_construct_cov[0],
            index=list(self.layout.columns),
            columns=self.constructs,
        )

    @cached_property
    def item_vif(self) -> pd.Series:
        """Indicator VIF within its construct (index: construct, item)."""
        import pandas as pd

        out: dict[tuple[str, str], float] = {}
        for j, name in enumerate(self.constructs):
            items = self._items_of(j)
            if len(items) == 1:
                out[(name, self.layout.columns[items[0]])] = 1.0
                continue
            inv = np.linalg.inv(self._s[np.ix_(items, items)])
            for pos, i in enumerate(items):
                out[(name, self.layout.columns[i])] = float(inv[pos, pos])
        return pd.Series(out, name="vif")

    # -- structural model quality ---------------------------------------------------------------
    @cached_property
    def inner_vif(self) -> pd.Series:
        """VIF of each predictor of each endogenous construct (index: predictor -> outcome)."""
        import pandas as pd

        r = self.estimates.construct_corr[0]
        out: dict[str, float] = {}
        for j in self.layout.endogenous:
            preds = self.layout.predecessors(j)
            inv = np.linalg.inv(r[np.ix_(preds, preds)])
            for pos, i in enumerate(preds):
                out[f"{self.constructs[i]} -> {self.constructs[j]}"] = float(inv[pos, pos])
        return pd.Series(out, name="vif")

    @cached_property
    def f_squared(self) -> pd.Series:
        """Cohen's f² of each path: ``(R²_incl - R²_excl) / (1 - R²_incl)``."""
        import pandas as pd

        r = self.estimates.construct_corr[0]
        out: dict[str, float] = {}
        for j in self.layout.endogenous:
            preds = self.layout.predecessors(j)
            r2_in = float(self.estimates.r2[0, j])
            for i in preds:
                rest = [p for p in preds if p != i]
                if rest:
                    beta = np.linalg.solve(r[np.ix_(rest, rest)], r[rest, j])
                    r2_out = float(beta @ r[rest, j])
                else:
                    r2_out = 0.0
                out[f"{self.constructs[i]} -> {self.constructs[j]}"] = (r2_in - r2_out) / (
                    1 - r2_in
                )
        return pd.Series(out, name="f2")

    @cached_property
    def total_effects(self) -> pd.DataFrame:
        """Total effects (rows = from, columns = to)."""
        import pandas as pd

        t = k.total_effects(self.estimates.paths)[0]
        return pd.DataFrame(t, index=self.constructs, columns=self.constructs)

    @cached_property
    def indirect_effects(self) -> pd.DataFrame:
        """Total minus direct effects."""
        return self.total_effects - self.path_matrix

    @cached_property
    def warnings(self) -> list[str]:
        """Points a reader should check, using the usual rules of thumb (Hair et al. 2019)."""
        out: list[str] = []
        rel = self.reliability
        for j, name in enumerate(self.constructs):
            items = self._items_of(j)
            if len(items) < 2 or self.layout.mode_b[j]:
                continue
            for i in items:
                value = self.loadings.loc[self.layout.columns[i], name]
                if value < 0.4:
                    out.append(
                        f"indicator `{self.layout.columns[i]}` loads {value:.3f} on `{name}` "
                        "(below 0.4: consider removing it)"
                    )
            if rel.loc[name, "ave"] < 0.5:
                out.append(f"`{name}` has AVE {rel.loc[name, 'ave']:.3f} (below 0.5)")
        h = self.htmt.to_numpy()
        for i in range(len(self.constructs)):
            for j in range(i + 1, len(self.constructs)):
                if h[i, j] > 0.9:
                    out.append(
                        f"HTMT of `{self.constructs[i]}` and `{self.constructs[j]}` is "
                        f"{h[i, j]:.3f} (above 0.90: discriminant validity is doubtful)"
                    )
        for label, value in self.inner_vif.items():
            if value > 5:
                out.append(f"inner VIF of {label} is {value:.2f} (above 5: collinearity)")
        return out

    # -- output ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (NaN becomes ``None``)."""
        rel = self.reliability
        return {
            "n": self.n_obs,
            "scheme": self.scheme,
            "consistent": self.consistent,
            "iterations": self.iterations,
            "paths": {lab: _clean(v) for lab, v in self.paths.items()},
            "loadings": _nested(self.loadings, skip_zero=True),
            "weights": _nested(self.weights, skip_zero=True),
            "r2": {c: _clean(v) for c, v in self.r2.items()},
            "r2_adj": {c: _clean(v) for c, v in self.r2_adj.items()},
            "reliability": {
                c: {m: _clean(rel.loc[c, m]) for m in ("alpha", "rho_a", "rho_c", "ave")}
                for c in rel.index
            },
            "htmt": _nested(self.htmt),
            "htmt2": _nested(self.htmt2),
            "f_squared": {p: _clean(v) for p, v in self.f_squared.items()},
            "inner_vif": {p: _clean(v) for p, v in self.inner_vif.items()},
            "warnings": self.warnings,
            "total_effects": {
                f"{a} -> {b}": _clean(self.total_effects.loc[a, b])
                for a in self.constructs
                for b in self.constructs
                if self.total_effects.loc[a, b] != 0
            },
        }

    def summary(self, digits: int = 3) -> str:
        """A plain-text report of the estimates and the usual quality criteria."""
        fmt = f"{{:.{digits}f}}".format
        lines = [
            "PLS-SEM results",
            "=" * 60,
            f"observations: {self.n_obs}    scheme: {self.scheme}    "
            f"consistent (PLSc): {'yes' if self.consistent else 'no'}    "
            f"iterations: {self.iterations}",
            "",
            "Path coefficients",
            "-" * 60,
        ]
        f2 = self.f_squared
        vif = self.inner_vif
        for label, value in self.paths.items():
            lines.append(
                f"  {label:<40} {fmt(value):>8}   f² {fmt(f2.get(label, np.nan)):>7}"
                f"   VIF {fmt(vif.get(label, np.nan)):>6}"
            )
        lines += ["", "R²", "-" * 60]
        for c in self.r2.index:
            lines.append(f"  {c:<28} R² {fmt(self.r2[c]):>8}   adj. {fmt(self.r2_adj[c]):>8}")
        lines += ["", "Reliability and convergent validity", "-" * 60]
        lines.append(self.reliability.to_string(float_format=fmt))
        lines += ["", "Outer loadings", "-" * 60]
        for c in self.loadings.columns:
            col = self.loadings[c]
            items = ", ".join(f"{i} {fmt(v)}" for i, v in col.items() if v != 0)
            lines.append(f"  {c}: {items}")
        lines += ["", "HTMT", "-" * 60]
        lines.append(self.htmt.to_string(float_format=fmt, na_rep=""))
        lines += ["", "HTMT2 (geometric means)", "-" * 60]
        lines.append(self.htmt2.to_string(float_format=fmt, na_rep=""))
        lines += ["", "Fornell–Larcker (diagonal: sqrt(AVE))", "-" * 60]
        lines.append(self.fornell_larcker.to_string(float_format=fmt, na_rep=""))
        if self.warnings:
            lines += ["", "Warnings", "-" * 60]
            lines += [f"  [{i}] {w}" for i, w in enumerate(self.warnings, start=1)]
        return "\n".join(lines)
