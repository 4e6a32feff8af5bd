"""Run an :class:`IndexSpec` over data and a :class:`Framework`: ``build_index(spec, data, fw)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qala.core.errors import Problem, SpecificationError, ValidationError, raise_if_problems

from . import aggregation, imputation, normalisation, treatment, weighting
from .framework import Framework
from .ranking import min_ranks
from .spec import Aggregate, Denominate, Impute, IndexSpec, Normalise, Screen, Step, Treat, Weight


def rank_desc(values: pd.DataFrame | pd.Series) -> Any:
    """Ranks where the highest score is 1; ties share the best rank (sport ranking); NaN stays."""
    arr = np.asarray(values, dtype=float)
    out = np.full(arr.shape, np.nan)
    if arr.ndim == 1:
        ok = ~np.isnan(arr)
        out[ok] = min_ranks(-arr[ok])
        return pd.Series(out, index=values.index, name=getattr(values, "name", None))
    # NaN sorts last as -inf, so it never changes another unit's rank; then it is put back
    missing = np.isnan(arr)
    ranks = min_ranks(-np.where(missing, -np.inf, arr), axis=0)
    out = np.where(missing, np.nan, ranks.astype(float))
    return pd.DataFrame(out, index=values.index, columns=values.columns)


@dataclass
class BuildState:
    """The data of a build in progress: each data step reads it and assigns new frames."""

    data: pd.DataFrame  # units × indicators
    units: pd.DataFrame  # unit information: name, groups, denominators (same index)
    history: pd.DataFrame  # earlier periods, MultiIndex (unit, time) × indicators
    framework: Framework
    imputed: pd.DataFrame
    treated: pd.DataFrame
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)
    treatment: pd.DataFrame | None = None
    screening: dict[str, Any] = field(default_factory=dict)
    normalised: bool = False
    warnings: list[str] = field(default_factory=list)

    def copy(self) -> BuildState:
        """Copy whose frames can be replaced without touching this one (steps never mutate
        frames in place, they assign new ones)."""
        return BuildState(
            data=self.data,
            units=self.units,
            history=self.history,
            framework=self.framework,
            imputed=self.imputed,
            treated=self.treated,
            datasets=dict(self.datasets),
            treatment=self.treatment,
            screening=dict(self.screening),
            normalised=self.normalised,
            warnings=list(self.warnings),
        )


@dataclass
class IndexResult:
    """A built index: every intermediate data set, flags, scores and ranks.

    Attributes
    ----------
    scores
        Units × codes: normalised indicators and every aggregate, in framework order.
    ranks
        Same shape; 1 = best.
    datasets
        Each step's output by name (``raw``, ``denominated``, ``imputed``, ``screened``,
        ``treated``, ``normalised``).
    imputed
        Boolean units × indicators: the value was imputed.
    treated
        Units × indicators: ``winhi``/``winlo``/``log`` where outlier treatment changed the value.
    unit_weights
        For aggregates built by benefit of the doubt: each unit's own (most favourable) weights.
    """

    spec: IndexSpec
    framework: Framework
    input_framework: Framework
    input_data: pd.DataFrame
    datasets: dict[str, pd.DataFrame]
    scores: pd.DataFrame
    ranks: pd.DataFrame
    imputed: pd.DataFrame
    treated: pd.DataFrame
    treatment: pd.DataFrame | None
    screening: dict[str, Any]
    units: pd.DataFrame
    warnings: list[str]
    unit_weights: dict[str, pd.DataFrame] = field(default_factory=dict)

    # --- regeneration and comparison -----------------------------------------------------------
    def regenerate(
        self, spec: IndexSpec | None = None, framework: Framework | None = None
    ) -> IndexResult:
        """Build again from the same input data with a changed spec and/or framework."""
        return build_index(spec or self.spec, self.input_data, framework or self.input_framework)

    # --- views -------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        return self.framework.root

    def level_codes(self, level: int) -> list[str]:
        return [c for c in self.framework.levels.get(level, []) if c in self.scores.columns]

    def table(
        self, *, use: str = "scores", levels: Sequence[int] | None = None, decimals: int | None = 2
    ) -> pd.DataFrame:
        """Results table sorted by the root score, highest level first (COINr ``get_results``)."""
        source = self.scores if use == "scores" else self.ranks
        lv = sorted(self.framework.levels) if levels is None else list(levels)
        cols: list[str] = []
        for level in sorted(lv, reverse=True):
            cols.extend(self.level_codes(level))
        out = source[cols].copy()
        if use == "scores" and decimals is not None:
            out = out.round(decimals)
        if self.root in self.scores.columns:
            out.insert(0, "Rank", self.ranks[self.root])
            out = out.loc[
                self.scores[self.root].sort_values(ascending=False, na_position="last").index
            ]
        return out

    def group_ranks(self, group: str, code: str | None = None) -> pd.Series:
        """Ranks within the groups of a unit column (e.g. income group)."""
        code = code or self.root
        g = self.units[group]
        return self.scores[code].groupby(g).transform(lambda s: rank_desc(s))

    def unit_summary(self, unit: str, levels: Sequence[int] | None = None) -> pd.DataFrame:
        if unit not in self.scores.index:
            raise SpecificationError(f"unit `{unit}` is not in the results")
        lv = (
            [lvl for lvl in sorted(self.framework.levels, reverse=True) if lvl > 1]
            if levels is None
            else list(levels)
        )
        rows = []
        for level in lv:
            for code in self.level_codes(level):
                rows.append(
                    {
                        "code": code,
                        "name": self.framework[code].name,
                        "level": level,
                        "score": float(self.scores.at[unit, code]),
                        "rank": self.ranks.at[unit, code],
                    }
                )
        return pd.DataFrame(rows)

    def strengths_weaknesses(
        self, unit: str, n: int = 5, *, dataset: str = "normalised"
    ) -> dict[str, pd.DataFrame]:
        """The unit's ``n`` best- and worst-ranked indicators.

        Ranks come from the normalised scores, or with ``dataset="raw"`` (or any other stored data
        set) from those values oriented by each indicator's direction (COINr ``get_str_weak``).
        Ties keep framework order.
        """
        if unit not in self.scores.index:
            raise SpecificationError(f"unit `{unit}` is not in the results")
        inds = [c for c in self.framework.indicators if c in self.ranks.columns]
        if dataset == "normalised":
            r = self.ranks.loc[unit, inds].dropna().astype(float)
        else:
            if dataset not in self.datasets:
                raise SpecificationError(f"no data set `{dataset}`; have {sorted(self.datasets)}")
            values = self.datasets[dataset]
            cols = [c for c in inds if c in values.columns]
            oriented = values[cols] * pd.Series({c: self.framework[c].direction for c in cols})
            r = rank_desc(oriented).loc[unit].dropna().astype(float)
        raw = self.datasets.get("raw")

        def frame(codes: Sequence[str]) -> pd.DataFrame:
            return pd.DataFrame(
                [
                    {
                        "code": c,
                        "name": self.framework[c].name,
                        "parent": self.framework[c].parent,
                        "rank": int(r[c]),
                        "value": None if raw is None or c not in raw else raw.at[unit, c],
                        "unit": self.framework[c].unit,
                    }
                    for c in codes
                ]
            )

        order = r.sort_values(kind="mergesort")
        return {
            "strengths": frame(list(order.index[:n])),
            "weaknesses": frame(list(order.index[::-1][:n])),
        }

    def to_json_dict(
        self, *, decimals: int | None = None, levels: Sequence[int] | None = None
    ) -> dict[str, Any]:
        """``{"scores": {unit: {code: score}}, "ranks": {unit: {code: rank}}}`` plus metadata."""
        lv = sorted(self.framework.levels) if levels is None else list(levels)
        cols = [c for level in sorted(lv, reverse=True) for c in self.level_codes(level)]

        def clean(value: Any, as_int: bool) -> Any:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                return None
            if as_int:
                return int(value)
            return float(round(value, decimals)) if decimals is not None else float(value)

        scores = {
            str(u): {c: clean(self.scores.at[u, c], False) for c in cols} for u in self.scores.index
        }
        ranks = {
            str(u): {c: clean(self.ranks.at[u, c], True) for c in cols} for u in self.ranks.index
        }
        return {
            "index": self.spec.name,
            "root": self.root,
            "levels": {str(k): v for k, v in self.framework.levels.items() if k in lv},
            "scores": scores,
            "ranks": ranks,
            "imputed": {
                str(u): [c for c in self.imputed.columns if bool(self.imputed.at[u, c])]
                for u in self.imputed.index
                if bool(self.imputed.loc[u].any())
            },
            "treated": {
                str(c): {str(u): str(v) for u, v in self.treated[c].items() if v}
                for c in self.treated.columns
                if (self.treated[c] != "").any()
            },
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------
# input preparation
# --------------------------------------------------------------------------------------------


def prepare_state(spec: IndexSpec, data: pd.DataFrame, framework: Framework) -> BuildState:
    """Check the input against the spec and framework and set up the state the steps work on."""
    problems: list[Problem] = []
    ucol = spec.unit_column
    if ucol not in data.columns:
        raise ValidationError.single(
            f"data has no unit column `{ucol}` (set data.unit_column in the spec)", column=ucol
        )
    frame = data.copy()
    frame[ucol] = frame[ucol].astype(str).str.strip()
    tcol = spec.time_column
    history = pd.DataFrame()
    if tcol in frame.columns and frame[tcol].notna().any():
        times = pd.to_numeric(frame[tcol], errors="coerce")
        period = spec.period if spec.period is not None else times.max()
        current_rows = times == period
        if not current_rows.any():
            raise ValidationError.single(f"no rows for period {period}", column=tcol, value=period)
        earlier = frame[times < period]
        frame = frame[current_rows]
    else:
        earlier = frame.iloc[0:0]
    dup = frame[ucol][frame[ucol].duplicated()]
    for idx, code in dup.items():
        problems.append(
            Problem(
                "duplicate unit code",
                row=int(str(idx)) + 2 if str(idx).isdigit() else None,
                column=ucol,
                value=code,
            )
        )
    indicators = framework.indicators
    missing = [c for c in indicators if c not in frame.columns]
    for c in missing:
        problems.append(Problem("indicator of the structure has no data column", column=c))
    raise_if_problems(problems, "invalid index data")
    values = frame[indicators].copy()
    non_numeric = [c for c, kind in values.dtypes.items() if kind.kind not in "biuf"]
    if not non_numeric:
        values = values.astype(float)
    for c in non_numeric:
        column = values[c]
        converted = pd.to_numeric(column, errors="coerce")
        bad = converted.isna() & column.notna() & (column.astype(str).str.strip() != "")
        for idx in list(values.index[bad])[:5]:
            problems.append(
                Problem(
                    "expected a number",
                    row=int(idx) + 2 if isinstance(idx, (int, np.integer)) else None,
                    column=c,
                    value=values.at[idx, c],
                )
            )
        values[c] = converted.astype(float)
    raise_if_problems(problems, "invalid index data")
    values.index = pd.Index(frame[ucol], name=ucol)
    other = [c for c in frame.columns if c not in indicators]
    units = frame[other].copy()
    units.index = values.index
    if not earlier.empty:
        hist = earlier[[ucol, tcol, *indicators]].copy()
        for c in indicators:
            hist[c] = pd.to_numeric(hist[c], errors="coerce")
        history = hist.set_index([ucol, tcol])[indicators]
    state = BuildState(
        data=values,
        units=units,
        history=history,
        framework=framework,
        imputed=pd.DataFrame(False, index=values.index, columns=indicators),
        treated=pd.DataFrame("", index=values.index, columns=indicators),
    )
    state.datasets["raw"] = values.copy()
    return state


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------


def _denominate(state: BuildState, step: Denominate) -> None:
    by = dict(step.by) or {
        c: denominator
        for c in state.data.columns
        if (denominator := state.framework[c].denominator)
    }
    problems = []
    for ind, den in by.items():
        if ind not in state.data.columns:
            problems.append(Problem("denominate: not an indicator of the data", column=ind))
        elif den not in state.units.columns:
            problems.append(
                Problem(f"denominate: denominator column `{den}` is not in the data", column=den)
            )
    raise_if_problems(problems, "cannot denominate")
    arr = state.data.to_numpy(dtype=float, copy=True)
    pos = {c: j for j, c in enumerate(state.data.columns)}
    denominators = {
        den: pd.to_numeric(state.units[den], errors="coerce").to_numpy(dtype=float)
        for den in set(by.values())
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        for ind, den in by.items():
            j = pos[ind]
            arr[:, j] = arr[:, j] / denominators[den] * float(step.scale.get(ind, 1.0))
    arr[~np.isfinite(arr)] = np.nan
    data = pd.DataFrame(arr, index=state.data.index, columns=state.data.columns)
    state.data = data
    state.datasets["denominated"] = data.copy()


def _screen(state: BuildState, step: Screen) -> None:
    data = state.data
    report: dict[str, Any] = {}
    unit_cov = data.notna().mean(axis=1)
    ind_cov = data.notna().mean(axis=0)
    report["unit_coverage"] = unit_cov
    report["indicator_coverage"] = ind_cov
    drop_units = set(step.exclude_units)
    if step.unit_min_coverage is not None:
        drop_units |= set(unit_cov.index[unit_cov < step.unit_min_coverage])
    drop_ind: set[str] = set()
    if step.indicator_min_coverage is not None:
        drop_ind |= set(ind_cov.index[ind_cov < step.indicator_min_coverage])
    sd = data.std(ddof=1)
    mean_abs = data.abs().mean().replace(0, np.nan)
    zero_var = list(sd.index[(sd == 0) | sd.isna()])
    low_var = list(sd.index[(sd / mean_abs) < step.low_variance_cv])
    report["zero_variance"] = zero_var
    report["low_variance"] = [c for c in low_var if c not in zero_var]
    if step.drop_zero_variance:
        drop_ind |= set(zero_var)
    # duplicates: identical indicator columns and identical unit rows
    seen: dict[bytes, str] = {}
    duplicates = []
    arr = data.to_numpy(dtype=float)
    for j, c in enumerate(data.columns):
        fingerprint = np.nan_to_num(arr[:, j], nan=np.inf).tobytes()
        if fingerprint in seen:
            duplicates.append((seen[fingerprint], c))
        else:
            seen[fingerprint] = c
    report["duplicate_indicators"] = duplicates
    report["duplicate_units"] = list(data.index[data.duplicated(keep="first")])
    corr = data.corr().to_numpy()
    cols = list(data.columns)
    ii, jj = np.nonzero(np.triu(np.abs(np.nan_to_num(corr)) >= step.collinearity_threshold, k=1))
    pairs = [(cols[i], cols[j], float(corr[i, j])) for i, j in zip(ii, jj, strict=True)]
    report["collinear_pairs"] = pairs
    report["dropped_units"] = sorted(drop_units & set(data.index))
    report["dropped_indicators"] = sorted(drop_ind)
    keep_units = [u for u in data.index if u not in drop_units]
    state.data = data.loc[keep_units]
    state.units = state.units.loc[keep_units]
    state.imputed = state.imputed.loc[keep_units]
    state.treated = state.treated.loc[keep_units]
    if drop_ind:
        state.framework = state.framework.without(drop_ind)
        keep = [c for c in state.data.columns if c not in drop_ind]
        state.data = state.data[keep]
        state.imputed = state.imputed[keep]
        state.treated = state.treated[keep]
    state.screening = report
    state.datasets["screened"] = state.data.copy()


def _impute(state: BuildState, step: Impute) -> None:
    data = state.data
    method = step.method
    if method in ("group_mean", "group_median"):
        if not step.group:
            raise ValidationError.single("impute: group methods need `group`", column="group")
        if step.group not in state.units.columns:
            raise ValidationError.single(
                f"impute: group column `{step.group}` is not in the data", column=step.group
            )
        out = imputation.impute_group(
            data, list(state.units[step.group]), median=method == "group_median"
        )
    elif method in ("mean", "median"):
        out = imputation.impute_mean(data, median=method == "median")
    elif method == "previous":
        hist = state.history
        if not hist.empty:
            hist = hist[hist.index.get_level_values(0).isin(data.index)]
            hist = hist[[c for c in data.columns if c in hist.columns]]
        out = imputation.impute_previous(data, hist, max_gap=step.max_gap)
    elif method == "knn":
        out = imputation.impute_knn(data, k=step.k)
    elif method == "em":
        out = imputation.impute_em(data)
    elif method == "regression":
        out = imputation.impute_regression(data)
    elif method == "row_mean":
        fw = state.framework
        groups = None
        if step.group_level is not None:
            by_ancestor: dict[str, list[str]] = {}
            for c in data.columns:
                chain = [c, *fw.ancestors(c)]
                owner = next((a for a in chain if fw.level_of(a) == step.group_level), fw.root)
                by_ancestor.setdefault(owner, []).append(c)
            groups = list(by_ancestor.values())
        out = imputation.impute_row_mean(
            data, directions=[fw[c].direction for c in data.columns], column_groups=groups
        )
    elif method == "none":
        out = data.copy()
    else:
        raise ValidationError.single(
            f"impute: unknown method `{method}`; expected mean, median, group_mean, group_median, "
            "previous, em, regression, knn, row_mean or none",
            column="method",
            value=method,
        )
    if step.fallback and out.isna().any().any():
        out = imputation.impute_mean(out, median=step.fallback == "median")
    newly = data.isna() & out.notna()
    state.imputed = state.imputed | newly
    still = int(out.isna().sum().sum())
    if still:
        state.warnings.append(f"impute ({method}): {still} value(s) remain missing")
    state.data = out
    state.datasets["imputed"] = out.copy()


def _treat(state: BuildState, step: Treat) -> None:
    data = state.data.copy()
    arr = data.to_numpy(dtype=float, copy=True)
    flags_arr = state.treated.to_numpy(dtype=object, copy=True)
    rows = []
    for j, c in enumerate(data.columns):
        opts: dict[str, Any] = {
            "method": step.method,
            "max_points": step.max_points,
            "skew_threshold": step.skew_threshold,
            "kurtosis_threshold": step.kurtosis_threshold,
            "log": step.log,
            "combine": step.combine,
        }
        opts.update(step.per_indicator.get(c, {}))
        method = opts["method"]
        if method == "none":
            continue
        if method not in ("winsorise_log", "winsorise", "log"):
            raise ValidationError.single(
                f"treat: unknown method `{method}`; expected winsorise_log, winsorise, log or none",
                column=c,
            )
        outcome = treatment.treat_indicator(
            arr[:, j],
            max_points=opts["max_points"],
            skew_threshold=opts["skew_threshold"],
            kurtosis_threshold=opts["kurtosis_threshold"],
            second=None if method == "winsorise" else opts["log"],
            combine=opts["combine"],
            winsorise_first=method != "log",
        )
        arr[:, j] = outcome.values
        new_flags = np.array(outcome.flags, dtype=object)
        flags_arr[:, j] = np.where(new_flags != "", new_flags, flags_arr[:, j])
        rows.append(
            {
                "code": c,
                "skew": outcome.skew_before,
                "kurtosis": outcome.kurtosis_before,
                "winsorised": outcome.winsorised,
                "log": outcome.log_transformed,
                "skew_after": outcome.skew_after,
                "kurtosis_after": outcome.kurtosis_after,
                "passes": outcome.passes_after,
            }
        )
        if not outcome.passes_after:
            state.warnings.append(f"treat: `{c}` still fails the skew/kurtosis rule")
    state.treatment = pd.DataFrame(rows).set_index("code") if rows else None
    data = pd.DataFrame(arr, index=data.index, columns=data.columns)
    state.treated = pd.DataFrame(flags_arr, index=data.index, columns=data.columns)
    state.data = data
    state.datasets["treated"] = data.copy()


def normalise_frame(data: pd.DataFrame, framework: Framework, step: Normalise) -> pd.DataFrame:
    """Normalise every column of ``data`` as ``step`` says (directions from ``framework``)."""
    arr = data.to_numpy(dtype=float)
    out = np.empty_like(arr)
    for j, c in enumerate(data.columns):
        node = framework[c]
        spec = step.per_indicator.get(c)
        if spec is not None:
            params = {k: v for k, v in spec.items() if k != "method"}
            method = spec.get("method", step.method)
        else:
            params, method = dict(step.params), step.method
        try:
            out[:, j] = normalisation.normalise_column(
                arr[:, j], method, node.direction, params, target=node.target
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValidationError.single(f"normalise `{c}`: {exc}", column=c) from exc
    return pd.DataFrame(out, index=data.index, columns=data.columns)


def _normalise(state: BuildState, step: Normalise) -> None:
    state.data = normalise_frame(state.data, state.framework, step)
    state.normalised = True
    state.datasets["normalised"] = state.data.copy()


def aggregate_scores(data: pd.DataFrame, framework: Framework, step: Aggregate) -> pd.DataFrame:
    """Scores of every aggregate, children before parents; returns units × aggregates."""
    values: dict[str, np.ndarray] = {c: data[c].to_numpy(dtype=float) for c in data.columns}
    out: dict[str, np.ndarray] = {}
    for code in framework.aggregates:
        kids = [k for k in framework.children(code) if k in values]
        if not kids:
            continue
        level = framework.level_of(code)
        method = step.by_level.get(level, step.method)
        x = np.column_stack([values[k] for k in kids])
        w = np.array([framework[k].weight for k in kids], dtype=float)
        if method in aggregation.MEANS:
            try:
                y = aggregation.weighted_mean(
                    x, w, method, min_coverage=step.min_coverage, missing=step.missing
                )
            except aggregation.AggregationDomainError as exc:
                units = [str(data.index[i]) for i in exc.rows[:10]]
                raise ValidationError.single(
                    f"aggregate `{code}`: {exc} but units {units} have such values among "
                    f"{kids}; normalise onto a positive range (e.g. min-max 1–100) first",
                    column=code,
                ) from exc
        elif method == "copeland":
            y = aggregation.copeland(x, w)
        elif method == "median":
            y = aggregation.weighted_median(x, w)
        elif method == "bod":
            y, _ = aggregation.benefit_of_the_doubt(
                x, min_share=step.bod_min_share, max_share=step.bod_max_share
            )
        else:
            raise ValidationError.single(
                f"aggregate: unknown method `{method}`; expected one of {aggregation.METHODS}",
                column="method",
                value=method,
            )
        values[code] = y
        out[code] = y
    return pd.DataFrame(out, index=data.index)


def _level_scores(state: BuildState, level: int) -> pd.DataFrame:
    """Scores of the nodes at ``level`` under the current weights (arithmetic if aggregates)."""
    codes = [c for c in state.framework.levels.get(level, [])]
    if level == 1:
        return state.data[[c for c in codes if c in state.data.columns]]
    agg = aggregate_scores(state.data, state.framework, Aggregate())
    return agg[[c for c in codes if c in agg.columns]]


def _weight(state: BuildState, step: Weight) -> None:
    fw = state.framework
    parents = step.parents or sorted(
        {parent for c in fw.levels.get(step.level, []) if (parent := fw[c].parent) is not None}
    )
    new: dict[str, float] = {}
    if step.method == "fixed":
        new = {k: float(v) for k, v in step.weights.items()}
        fw = fw.with_weights(new)
        state.framework = fw
        return
    scores = (
        _level_scores(state, step.level)
        if step.method in ("pca", "factor", "optimise_correlation")
        else None
    )
    for parent in parents:
        if parent not in fw:
            raise ValidationError.single(
                f"weight: `{parent}` is not in the structure", column="parents"
            )
        kids = list(fw.children(parent))
        if step.method == "equal":
            w = np.ones(len(kids)) / len(kids)
        elif step.method == "budget":
            relevant = {
                e: {k: v for k, v in a.items() if k in kids} for e, a in step.allocations.items()
            }
            relevant = {e: a for e, a in relevant.items() if a}
            if not relevant:
                continue
            shares = weighting.budget_allocation(relevant, kids)
            w = np.array([shares[k] for k in kids])
        elif scores is not None:
            x = scores[[k for k in kids]].to_numpy(dtype=float)
            if step.method == "pca":
                w = weighting.pca_weights(x)
            elif step.method == "factor":
                w = weighting.factor_weights(x)
            else:
                imp = [step.importance.get(k, 1.0) for k in kids]
                w = weighting.optimise_correlation(x, importance=imp)
        else:
            raise ValidationError.single(
                f"weight: unknown method `{step.method}`; expected fixed, equal, budget, pca, "
                "factor or optimise_correlation",
                column="method",
            )
        new.update(dict(zip(kids, (float(v) for v in w), strict=True)))
    state.framework = fw.with_weights(new)


_DATA_STEP_RUNNERS: dict[type[Any], Any] = {
    Denominate: _denominate,
    Screen: _screen,
    Impute: _impute,
    Treat: _treat,
    Normalise: _normalise,
    Weight: _weight,
}


def run_step(state: BuildState, step: Step) -> None:
    """Apply one data step (denominate, screen, impute, treat, normalise, weight) to ``state``."""
    _DATA_STEP_RUNNERS[type(step)](state, step)


def run_data_steps(
    spec: IndexSpec, data: pd.DataFrame, framework: Framework, steps: Sequence[Step] | None = None
) -> BuildState:
    """Prepare the input and run every step except aggregation (used by the uncertainty engine)."""
    state = prepare_state(spec, data, framework)
    for step in spec.steps if steps is None else steps:
        if isinstance(step, Aggregate):
            continue
        run_step(state, step)
    return state


def build_index(spec: IndexSpec, data: pd.DataFrame, framework: Framework) -> IndexResult:
    """Build a composite index.

    Parameters
    ----------
    spec
        The recipe (see :class:`IndexSpec`).
    data
        One row per unit (and period): the unit column, optional name/group/denominator columns and
        one column per indicator of ``framework``.
    framework
        The structure: indicators, aggregates, weights, directions.

    Returns
    -------
    IndexResult
        Scores and ranks at every level, each step's data set, imputation and treatment flags.
    """
    state = run_data_steps(spec, data, framework)
    if not state.normalised and spec.has_step("aggregate"):
        state.warnings.append("aggregating values that were not normalised (directions ignored)")
    scores = state.data.copy()
    if spec.has_step("aggregate"):
        step = spec.step("aggregate")
        assert isinstance(step, Aggregate)
        agg = aggregate_scores(state.data, state.framework, step)
        scores = pd.concat([scores, agg], axis=1)
        state.datasets["aggregated"] = scores.copy()
    order = [n.code for n in state.framework.nodes if n.code in scores.columns]
    scores = scores[order]
    unit_weights: dict[str, pd.DataFrame] = {}
    if spec.has_step("aggregate"):
        step = spec.step("aggregate")
        assert isinstance(step, Aggregate)
        fw = state.framework
        for code in fw.aggregates:
            if step.by_level.get(fw.level_of(code), step.method) != "bod":
                continue
            kids = [k for k in fw.children(code) if k in scores.columns]
            _, w = aggregation.benefit_of_the_doubt(
                scores[kids].to_numpy(dtype=float),
                min_share=step.bod_min_share,
                max_share=step.bod_max_share,
            )
            unit_weights[code] = pd.DataFrame(w, index=scores.index, columns=kids)
    return IndexResult(
        spec=spec,
        framework=state.framework,
        input_framework=framework,
        input_data=data,
        datasets=state.datasets,
        scores=scores,
        ranks=rank_desc(scores),
        imputed=state.imputed,
        treated=state.treated,
        treatment=state.treatment,
        screening=state.screening,
        units=state.units,
        warnings=state.warnings,
        unit_weights=unit_weights,
    )


def wide_from_long(
    records: pd.DataFrame,
    *,
    unit: str = "unit",
    indicator: str = "indicator",
    value: str = "value",
    time: str | None = None,
    unit_column: str = "uCode",
    time_column: str = "Time",
    extra: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Pivot long observations (one row per unit, indicator[, period]) into the wide table
    :func:`build_index` takes; ``extra`` (indexed by unit) adds name/group/denominator columns.
    Duplicate observations are an error naming the unit and indicator."""
    keys = [unit, indicator] + ([time] if time else [])
    dup = records.duplicated(keys, keep=False)
    if dup.any():
        first = records[dup].iloc[0]
        raise ValidationError.single(
            f"several values for unit `{first[unit]}` and indicator `{first[indicator]}`"
            + (f" in period {first[time]}" if time else ""),
            column=value,
        )
    index = [unit] + ([time] if time else [])
    wide = records.pivot(index=index, columns=indicator, values=value)
    wide.columns = [str(c) for c in wide.columns]
    renames = {unit: unit_column, **({time: time_column} if time else {})}
    wide = wide.reset_index().rename(columns=renames)
    if extra is not None:
        wide = wide.merge(extra, left_on=unit_column, right_index=True, how="left")
    return wide


def compare(
    a: IndexResult, b: IndexResult, code: str | None = None, *, use: str = "ranks"
) -> pd.DataFrame:
    """Side-by-side ranks (or scores) of two variants and the shift, largest first.

    Units present in only one variant get NaN in the other (COINr ``compare_coins``).
    """
    code = code or a.root
    for r in (a, b):
        if code not in r.scores.columns:
            raise SpecificationError(f"`{code}` is not a result of both variants")
    src_a = a.ranks if use == "ranks" else a.scores
    src_b = b.ranks if use == "ranks" else b.scores
    out = pd.concat([src_a[code].rename("a"), src_b[code].rename("b")], axis=1)
    out["diff"] = out["a"] - out["b"] if use == "ranks" else out["b"] - out["a"]
    out["abs_diff"] = out["diff"].abs()
    out.index.name = "unit"
    return out.sort_values(["abs_diff"], ascending=False, kind="mergesort", na_position="last")


def compare_many(results: Mapping[str, IndexResult], code: str | None = None) -> pd.DataFrame:
    """Ranks of several variants side by side (COINr ``compare_coins_multi``)."""
    first = next(iter(results.values()))
    code = code or first.root
    out = pd.concat({name: r.ranks[code] for name, r in results.items()}, axis=1)
    return out.sort_values(next(iter(results)))
