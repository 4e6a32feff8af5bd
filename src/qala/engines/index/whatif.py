"""What if the weights, the normalisation, the aggregation or the imputation were different?

A :class:`WhatIfModel` answers that question fast enough to follow a slider: the data steps
(screen, impute, treat, normalise) run once per distinct imputation × normalisation choice and are
kept; a change of weights or of the mean only re-aggregates the normalised indicators. Rank
intervals come from a fixed set of perturbed weight sets (every weight at the noisy levels times
``1 + U(-f, f)``, drawn once with a seed, as the uncertainty engine's ``weights_noise``) applied
around the chosen weights and aggregated all at once, so a slider move changes the intervals
only through the settings, never through fresh random draws.

Each result is compared with the official settings (the spec's own steps and the framework's
weights): rank shift, and the indicators that drive it. For a weighted arithmetic mean a unit's
root score is ``Σ_i E_i x_i`` (``E_i`` the effective weight of indicator ``i``), so the change of
a unit's distance from the average unit splits exactly into one term per indicator,
``E'_i (x'_i − mean x'_i) − E_i (x_i − mean x_i)``; for the other means the same terms are a
first-order reading of the change and are labelled so.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from qala.core.errors import ValidationError

from .aggregation import MEANS
from .build import BuildState, aggregate_scores, run_data_steps
from .framework import Framework
from .ranking import min_ranks
from .spec import Aggregate, Impute, IndexSpec, Normalise, step_to_dict
from .uncertainty import aggregate_batch

FloatArray = npt.NDArray[np.float64]

NORMALISATIONS: dict[str, dict[str, Any]] = {
    "minmax": {"method": "minmax", "params": {"low": 0.0, "high": 100.0}},
    "minmax_1_100": {"method": "minmax", "params": {"low": 1.0, "high": 100.0}},
    "zscore": {"method": "zscore", "params": {"mean": 10.0, "sd": 2.0}},
    "rank": {"method": "rank", "params": {}},
}
"""Normalisations offered (the uncertainty assumptions of the national spec, plus 0–100)."""

IMPUTATIONS: dict[str, dict[str, Any]] = {
    "previous": {"method": "previous", "max_gap": 2, "fallback": "median"},
    "median": {"method": "median", "max_gap": None, "fallback": None},
    "mean": {"method": "mean", "max_gap": None, "fallback": None},
    "none": {"method": "none", "max_gap": None, "fallback": None},
}
"""Imputations offered: last value carried forward (else the median), median, mean, none."""

AGGREGATIONS = MEANS
SPEC_CHOICE = "spec"
"""The key of a spec's own step when it matches none of the offered choices."""


@dataclass(frozen=True)
class WhatIfSettings:
    """One point of the what-if space: weights of aggregates (absent = the framework's) and the
    keys of the normalisation, aggregation and imputation."""

    weights: Mapping[str, float] = field(default_factory=dict)
    normalisation: str = SPEC_CHOICE
    aggregation: str = SPEC_CHOICE
    imputation: str = SPEC_CHOICE


@dataclass
class WhatIfResult:
    """Scores, ranks and rank intervals under some settings, beside the official ones."""

    settings: WhatIfSettings
    table: pd.DataFrame
    """Per unit, best first: score, rank, q05, q95, official_score, official_rank, shift."""
    drivers: dict[str, list[tuple[str, float]]]
    """Unit → the indicators that moved it most: (code, change of its distance from the mean)."""
    area_scores: pd.DataFrame
    """Units × the root's children."""
    weights: dict[str, float]
    """Each aggregate's weight share within its parent (percent) under these settings."""
    exact_drivers: bool
    replications: int
    milliseconds: float

    def to_json_dict(self, *, decimals: int = 3) -> dict[str, Any]:
        def num(value: Any) -> float | None:
            return None if pd.isna(value) else round(float(value), decimals)

        rows = []
        for unit, row in self.table.iterrows():
            rows.append(
                {
                    "unit": str(unit),
                    "score": num(row["score"]),
                    "rank": None if pd.isna(row["rank"]) else int(row["rank"]),
                    "q05": num(row["q05"]),
                    "q95": num(row["q95"]),
                    "official_score": num(row["official_score"]),
                    "official_rank": (
                        None if pd.isna(row["official_rank"]) else int(row["official_rank"])
                    ),
                    "shift": None if pd.isna(row["shift"]) else int(row["shift"]),
                    "drivers": [[c, num(v)] for c, v in self.drivers.get(str(unit), [])],
                }
            )
        return {
            "settings": {
                "weights": dict(self.settings.weights),
                "normalisation": self.settings.normalisation,
                "aggregation": self.settings.aggregation,
                "imputation": self.settings.imputation,
            },
            "weights": {k: round(v, 2) for k, v in self.weights.items()},
            "rows": rows,
            "exact_drivers": self.exact_drivers,
            "replications": self.replications,
            "milliseconds": round(self.milliseconds, 1),
        }


@dataclass
class _Prepared:
    state: BuildState
    codes: list[str]
    values: FloatArray  # units × indicators (normalised)


class WhatIfModel:
    """Fast re-evaluation of an index under changed weights and step choices.

    Parameters
    ----------
    spec, data, framework
        As :func:`~qala.engines.index.build_index` takes them.
    noise
        ``{level: factor}`` of the weight perturbation behind the rank intervals (default ±25 %
        at every aggregate level below the root).
    replications
        Perturbed weight sets (drawn once).
    seed
        Seed of those draws.
    """

    def __init__(
        self,
        spec: IndexSpec,
        data: pd.DataFrame,
        framework: Framework,
        *,
        noise: Mapping[int, float] | None = None,
        replications: int = 200,
        seed: int = 0,
        cache_size: int = 12,
    ) -> None:
        if not spec.has_step("normalise") or not spec.has_step("aggregate"):
            raise ValidationError.single(
                "a what-if needs a spec with `normalise` and `aggregate` steps", column="steps"
            )
        self.spec = spec
        self.data = data
        self.framework = framework
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], _Prepared] = OrderedDict()
        self.official = WhatIfSettings(
            normalisation=self._match("normalise", NORMALISATIONS),
            aggregation=self._official_aggregation(),
            imputation=self._match("impute", IMPUTATIONS) if spec.has_step("impute") else "none",
        )
        top = max(framework.levels)
        levels = noise or {lvl: 0.25 for lvl in framework.levels if 1 < lvl < top}
        self.node_codes = [n.code for n in framework.nodes]
        self._node_position = {c: i for i, c in enumerate(self.node_codes)}
        rng = np.random.default_rng(seed)
        mult = np.ones((replications, len(self.node_codes)))
        for level, factor in levels.items():
            cols = [i for i, c in enumerate(self.node_codes) if framework.level_of(c) == level]
            mult[:, cols] = 1.0 + (rng.random((replications, len(cols))) * 2 - 1) * float(factor)
        self.multipliers = mult
        self._official_result: WhatIfResult | None = None
        self._official_dev: FloatArray | None = None
        self._official_result = self.evaluate(self.official)

    # --- choices --------------------------------------------------------------------------
    def _match(self, kind: str, options: Mapping[str, Mapping[str, Any]]) -> str:
        current = step_to_dict(self.spec.step(kind))
        for key, fields in options.items():
            if all(current.get(k) == v for k, v in fields.items()):
                return key
        return SPEC_CHOICE

    def _official_aggregation(self) -> str:
        step = self.spec.step("aggregate")
        assert isinstance(step, Aggregate)
        return step.method if step.method in AGGREGATIONS and not step.by_level else SPEC_CHOICE

    def choices(self) -> dict[str, list[str]]:
        """The keys each setting accepts (the spec's own step first when it is not one)."""

        def keys(offered: Sequence[str], official: str) -> list[str]:
            return ([SPEC_CHOICE] if official == SPEC_CHOICE else []) + list(offered)

        return {
            "normalisation": keys(list(NORMALISATIONS), self.official.normalisation),
            "aggregation": keys(AGGREGATIONS, self.official.aggregation),
            "imputation": (
                keys(list(IMPUTATIONS), self.official.imputation)
                if self.spec.has_step("impute")
                else ["none"]
            ),
        }

    def adjustable(self) -> list[str]:
        """Codes whose weight the what-if may change: every aggregate below the root."""
        return [c for c in self.framework.aggregates if c != self.framework.root]

    def check(self, settings: WhatIfSettings) -> WhatIfSettings:
        """``settings`` with the spec's choices filled in; bad values raise naming the field."""
        options = self.choices()
        resolved = {}
        for name in ("normalisation", "aggregation", "imputation"):
            value = getattr(settings, name)
            if value == SPEC_CHOICE:
                value = getattr(self.official, name)
            if value not in options[name]:
                raise ValidationError.single(
                    f"unknown {name} `{value}`; expected one of {', '.join(options[name])}",
                    column=name,
                    value=value,
                )
            resolved[name] = value
        allowed = set(self.adjustable())
        weights = {}
        for code, w in settings.weights.items():
            if code not in allowed:
                raise ValidationError.single(
                    f"`{code}` is not an area or indicator group of the index", column="weights"
                )
            if not np.isfinite(w) or w < 0 or w > 1000:
                raise ValidationError.single(
                    f"weight of `{code}` must be between 0 and 1000", column=code, value=w
                )
            if w != self.framework[code].weight:
                weights[code] = float(w)
        return WhatIfSettings(weights=weights, **resolved)

    # --- data steps (cached) ------------------------------------------------------------
    def _spec_for(self, imputation: str, normalisation: str) -> IndexSpec:
        spec = self.spec
        if imputation != SPEC_CHOICE and spec.has_step("impute"):
            fields = dict(IMPUTATIONS[imputation])
            spec = spec.replace_step("impute", _impute_like(spec, fields))
        if normalisation != SPEC_CHOICE:
            spec = spec.replace_step("normalise", Normalise(**NORMALISATIONS[normalisation]))
        return spec

    def prepared(self, imputation: str, normalisation: str) -> _Prepared:
        key = (imputation, normalisation)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        spec = self._spec_for(imputation, normalisation)
        state = run_data_steps(spec, self.data, self.framework)
        state.datasets = {}
        codes = list(state.data.columns)
        item = _Prepared(state, codes, state.data.to_numpy(dtype=float))
        self._cache[key] = item
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return item

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self, settings: WhatIfSettings) -> WhatIfResult:
        """Scores, ranks, 5–95 % rank intervals and drivers of change under ``settings``."""
        started = time.perf_counter()
        settings = self.check(settings)
        prepared = self.prepared(settings.imputation, settings.normalisation)
        fw = prepared.state.framework.with_weights(
            {k: v for k, v in settings.weights.items() if k in prepared.state.framework}
        )
        base_step = self.spec.step("aggregate")
        assert isinstance(base_step, Aggregate)
        step = (
            base_step
            if settings.aggregation == self.official.aggregation
            else Aggregate(
                method=settings.aggregation,
                min_coverage=base_step.min_coverage,
                missing=base_step.missing,
            )
        )
        root = fw.root
        # the chosen weights (column 0) and the perturbed sets around them, all at once
        codes = [c for c in self.node_codes if c in fw]
        base = np.array([fw[c].weight for c in codes])
        cols = [self._node_position[c] for c in codes]
        node_weights = np.vstack([base, base[None, :] * self.multipliers[:, cols]])
        ind_values = {c: prepared.values[:, j] for j, c in enumerate(prepared.codes)}
        values, failed = aggregate_batch(ind_values, fw, node_weights, codes, step)
        if failed[0]:  # the chosen settings are outside a mean's domain: say where, as a build
            frame = pd.DataFrame(
                prepared.values, index=prepared.state.data.index, columns=prepared.codes
            )
            try:
                aggregate_scores(frame, fw, step)
            except ValidationError as exc:
                raise ValidationError(
                    exc.problems, f"{settings.aggregation} mean: {exc.summary}"
                ) from None
        units = prepared.state.data.index
        score = values[root][:, 0]
        filled = np.where(np.isnan(score), -np.inf, score)
        rank = np.where(np.isnan(score), np.nan, min_ranks(-filled).astype(float))
        ok = np.logical_not(np.asarray(failed[1:], dtype=bool))
        reps = values[root][:, 1:][:, ok] if ok.any() else values[root][:, 1:]
        filled = np.where(np.isnan(reps), -np.inf, reps)
        rep_ranks = np.where(np.isnan(reps), np.nan, min_ranks(-filled, axis=0).astype(float))
        with np.errstate(all="ignore"):
            # nanquantile works row by row; the plain one is vectorised, so use it when it can
            quantile = np.nanquantile if np.isnan(rep_ranks).any() else np.quantile
            q05, q95 = (
                quantile(rep_ranks, [0.05, 0.95], axis=1) if rep_ranks.size else (np.nan, np.nan)
            )
        areas = [c for c in fw.children(root) if c in values]
        agg = pd.DataFrame({c: values[c][:, 0] for c in areas}, index=units)
        table = pd.DataFrame({"score": score, "rank": rank, "q05": q05, "q95": q95}, index=units)
        official = self._official_result
        if official is None:  # the official result itself
            table["official_score"] = table["score"]
            table["official_rank"] = table["rank"]
            drivers: dict[str, list[tuple[str, float]]] = {}
        else:
            table["official_score"] = official.table["score"].reindex(table.index)
            table["official_rank"] = official.table["rank"].reindex(table.index)
            drivers = self._drivers(prepared, fw)
        table["shift"] = table["official_rank"] - table["rank"]
        table = table.sort_values(["rank", "score"], ascending=[True, False], kind="mergesort")
        shares = {}
        aggregates = set(fw.aggregates)
        for code in aggregates:
            kids = fw.children(code)
            total = sum(fw[k].weight for k in kids)
            for k in kids:
                if k in aggregates:
                    shares[k] = 100.0 * fw[k].weight / total if total > 0 else 0.0
        return WhatIfResult(
            settings=settings,
            table=table,
            drivers=drivers,
            area_scores=agg,
            weights=shares,
            exact_drivers=settings.aggregation == "arithmetic"
            and self.official.aggregation == "arithmetic",
            replications=int(ok.sum()),
            milliseconds=1000.0 * (time.perf_counter() - started),
        )

    def _change(self, prepared: _Prepared, fw: Framework) -> FloatArray:
        """Units × indicators of ``prepared``: the change of (effective weight × distance from
        the mean) from the official settings."""
        base = self.prepared(self.official.imputation, self.official.normalisation)
        if self._official_dev is None:
            self._official_dev = _weighted_deviation(
                base.values, base.state.framework.effective_weights(), base.codes
            )
        old = pd.DataFrame(self._official_dev, index=base.state.data.index, columns=base.codes)
        units = prepared.state.data.index
        old_values = old.reindex(index=units, columns=prepared.codes).fillna(0.0).to_numpy()
        new = _weighted_deviation(prepared.values, fw.effective_weights(), prepared.codes)
        change: FloatArray = new - old_values
        return change

    def _drivers(
        self, prepared: _Prepared, fw: Framework, top: int = 3
    ) -> dict[str, list[tuple[str, float]]]:
        """Per unit: the ``top`` indicators whose term changed most, signed (positive = pushed
        the unit up)."""
        change = self._change(prepared, fw)
        order = np.argsort(-np.abs(change), axis=1, kind="stable")[:, :top]
        out: dict[str, list[tuple[str, float]]] = {}
        for i, unit in enumerate(prepared.state.data.index):
            out[str(unit)] = [
                (prepared.codes[j], float(change[i, j]))
                for j in order[i]
                if abs(change[i, j]) > 1e-9
            ]
        return out

    def contributions(self, settings: WhatIfSettings) -> pd.DataFrame:
        """Units × indicators: every indicator's term of the change from the official settings
        (for arithmetic means of complete data a unit's terms add up to the change of its
        distance from the mean score)."""
        settings = self.check(settings)
        prepared = self.prepared(settings.imputation, settings.normalisation)
        fw = prepared.state.framework.with_weights(
            {k: v for k, v in settings.weights.items() if k in prepared.state.framework}
        )
        return pd.DataFrame(
            self._change(prepared, fw), index=prepared.state.data.index, columns=prepared.codes
        )

    def official_result(self) -> WhatIfResult:
        assert self._official_result is not None
        return self._official_result

    def variant_spec(self, settings: WhatIfSettings) -> IndexSpec:
        """The spec that builds the index under ``settings``: its steps changed as chosen and a
        ``weight`` step (fixed) carrying the changed weights before the aggregation."""
        from .spec import Weight

        settings = self.check(settings)
        spec = self._spec_for(
            settings.imputation if settings.imputation != self.official.imputation else SPEC_CHOICE,
            settings.normalisation
            if settings.normalisation != self.official.normalisation
            else SPEC_CHOICE,
        )
        if settings.aggregation != self.official.aggregation:
            spec = spec.with_step("aggregate", method=settings.aggregation, by_level={})
        if settings.weights:
            at = spec.locate("aggregate")
            spec = spec.insert_step(at, Weight(method="fixed", weights=dict(settings.weights)))
        return spec


def _impute_like(spec: IndexSpec, fields: Mapping[str, Any]) -> Impute:
    current = spec.step("impute")
    assert isinstance(current, Impute)
    return Impute(
        method=str(fields["method"]),
        group=current.group,
        k=current.k,
        max_gap=fields.get("max_gap"),
        fallback=fields.get("fallback"),
        group_level=current.group_level,
    )


def _weighted_deviation(
    values: FloatArray, effective: Mapping[str, float], codes: Sequence[str]
) -> FloatArray:
    """Each indicator's distance from its mean times its effective weight (0 where missing)."""
    with np.errstate(all="ignore"):
        dev = values - np.nanmean(values, axis=0)
    weights = np.array([effective.get(c, 0.0) for c in codes])
    out: FloatArray = np.nan_to_num(dev * weights, nan=0.0)
    return out
