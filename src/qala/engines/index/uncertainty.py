"""Uncertainty and sensitivity analysis: "sample the assumptions, rebuild, look at the ranks".

Each :class:`Assumption` maps a uniform number in [0, 1) to one choice: a value of a step field
(discrete alternatives or a continuous range), a perturbed weight set (COINr's
``get_noisy_weights``: every weight at a level times ``1 + U(-f, f)``), or a set of indicators to
drop. Monte Carlo (``method="mc"``) draws ``n`` independent points and reports each unit's median
rank and 5–95% interval; ``method="sobol"`` uses Saltelli's design from SALib (``n·(d+2)`` runs)
and estimates first-order and total Sobol indices of the mean absolute rank shift against the
nominal ranking (COINr's target, Saisana et al. 2005).

Speed comes from never rebuilding what did not change: the data steps (denominate … normalise)
run once per distinct combination of their parameters (cached by prefix), and aggregation with
per-replication weights runs for all replications of a combination at once as batched weighted
means (arrays of units × replications × children).
"""

from __future__ import annotations

import json
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from qala.core.errors import SpecificationError, ValidationError

from . import aggregation
from .build import BuildState, build_index, prepare_state, run_step
from .framework import Framework
from .ranking import min_ranks
from .spec import Aggregate, IndexSpec, step_to_dict

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int, int], None]

_DATA_STEP_KINDS = {"denominate", "screen", "impute", "treat", "normalise"}


@dataclass(frozen=True)
class Assumption:
    """One uncertain input.

    Exactly one of these forms:

    * ``step`` + ``values`` (+ ``parameter``): discrete alternatives for one field of a step, or,
      without ``parameter``, alternatives given as dicts of field changes (e.g. method + params);
    * ``step`` + ``parameter`` + ``low``/``high``: a continuous uniform range;
    * ``weights_noise``: ``{level: factor}`` perturbing every weight at the level by ±factor
      (``weight_sets`` perturbed sets are drawn once; by default one per replication);
    * ``drop``: alternatives, each a list of indicator codes to leave out (``[]`` = keep all).
    """

    name: str
    step: str | int | None = None
    parameter: str | None = None
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    weights_noise: Mapping[int, float] | None = None
    weight_sets: int | None = None  # default: one fresh set per replication (n)
    drop: tuple[tuple[str, ...], ...] = ()

    @property
    def kind(self) -> str:
        if self.weights_noise:
            return "weights"
        if self.drop:
            return "drop"
        if self.step is None:
            raise SpecificationError(
                f"assumption `{self.name}` needs a step, weights_noise or drop"
            )
        return "step"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Assumption:
        allowed = {
            "name",
            "step",
            "parameter",
            "values",
            "range",
            "low",
            "high",
            "weights_noise",
            "weight_sets",
            "drop",
        }
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ValidationError.single(
                f"assumption `{raw.get('name')}`: unknown field(s) {unknown}; allowed {sorted(allowed)}",
                column=unknown[0],
            )
        low, high = raw.get("low"), raw.get("high")
        if "range" in raw:
            low, high = raw["range"]
        noise = raw.get("weights_noise")
        return cls(
            name=str(raw.get("name") or raw.get("parameter") or raw.get("step") or "assumption"),
            step=raw.get("step"),
            parameter=raw.get("parameter"),
            values=tuple(raw.get("values") or ()),
            low=None if low is None else float(low),
            high=None if high is None else float(high),
            weights_noise=None if not noise else {int(k): float(v) for k, v in noise.items()},
            weight_sets=None if raw.get("weight_sets") is None else int(raw["weight_sets"]),
            drop=tuple(tuple(d) for d in raw.get("drop") or ()),
        )

    def n_choices(self) -> int | None:
        if self.kind == "drop":
            return len(self.drop)
        if self.kind == "weights":
            return self.weight_sets or 100
        if self.values:
            return len(self.values)
        return None

    def decode(self, u: float) -> Any:
        """Map u in [0, 1) to the choice (an index for discrete forms, a value for ranges)."""
        n = self.n_choices()
        if n is not None:
            return min(int(u * n), n - 1)
        if self.low is None or self.high is None or self.parameter is None:
            raise SpecificationError(
                f"assumption `{self.name}` needs `values` or `parameter` with `low`/`high`"
            )
        return self.low + u * (self.high - self.low)


def assumptions_from_config(block: Mapping[str, Any]) -> list[Assumption]:
    items = block.get("assumptions") or []
    if not isinstance(items, list) or not items:
        raise ValidationError.single("`uncertainty.assumptions` must be a non-empty list")
    return [Assumption.from_dict(a) for a in items]


@dataclass
class UncertaintyResult:
    """Distribution of ranks over the replications.

    Attributes
    ----------
    rank_stats
        Per unit: ``nominal`` rank, ``mean``, ``median``, ``q05``, ``q95`` ranks.
    ranks, scores
        Units × replications for the target code (NaN where a replication failed or a unit was
        screened out).
    samples
        The choice each replication made for each assumption.
    sensitivity
        For ``method="sobol"``: first-order ``S1`` and total ``ST`` Sobol indices (and 95%
        confidence half-widths) of the mean absolute rank shift, per assumption.
    """

    target: str
    method: str
    rank_stats: pd.DataFrame
    ranks: pd.DataFrame
    scores: pd.DataFrame
    samples: pd.DataFrame
    sensitivity: pd.DataFrame | None
    runs: int
    failed: int
    seconds: float
    data_variants: int
    warnings: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        stats = {
            str(u): {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
            for u, row in self.rank_stats.iterrows()
        }
        out: dict[str, Any] = {
            "target": self.target,
            "method": self.method,
            "runs": self.runs,
            "failed": self.failed,
            "seconds": round(self.seconds, 4),
            "rank_stats": stats,
        }
        if self.sensitivity is not None:
            out["sensitivity"] = {
                str(a): {k: float(v) for k, v in row.items()}
                for a, row in self.sensitivity.iterrows()
            }
        out["warnings"] = self.warnings
        return out


# --------------------------------------------------------------------------------------------


def _ranks_matrix(scores: FloatArray) -> FloatArray:
    """Rank each column (replication) of units × reps; 1 = highest; NaN kept."""
    out = np.full(scores.shape, np.nan)
    filled = np.where(np.isnan(scores), -np.inf, scores)
    r = min_ranks(-filled, axis=0).astype(float)
    out = np.where(np.isnan(scores), np.nan, r)
    return out


def _apply_choices(
    spec: IndexSpec, assumptions: Sequence[Assumption], choice: Sequence[Any]
) -> IndexSpec:
    out = spec
    for a, c in zip(assumptions, choice, strict=True):
        if a.kind != "step":
            continue
        assert a.step is not None
        i = out.locate(a.step)
        if a.values:
            value = a.values[c]
            if a.parameter is None:
                if not isinstance(value, Mapping):
                    raise SpecificationError(
                        f"assumption `{a.name}`: without `parameter`, values must be mappings"
                    )
                out = out.with_step(i, **dict(value))
            else:
                out = out.with_step(i, **{a.parameter: value})
        else:
            assert a.parameter is not None
            current = getattr(out.steps[i], a.parameter)
            value = round(c) if isinstance(current, int) and not isinstance(current, bool) else c
            out = out.with_step(i, **{a.parameter: value})
    return out


def _noise_multipliers(
    framework: Framework, assumption: Assumption, rng: np.random.Generator
) -> tuple[list[str], FloatArray]:
    assert assumption.weights_noise is not None
    codes = [n.code for n in framework.nodes]
    sets = assumption.n_choices() or 100
    mult = np.ones((sets, len(codes)))
    for level, factor in assumption.weights_noise.items():
        cols = [i for i, c in enumerate(codes) if framework.level_of(c) == level]
        if not cols:
            raise SpecificationError(f"assumption `{assumption.name}`: no weights at level {level}")
        mult[:, cols] = 1.0 + (rng.random((sets, len(cols))) * 2 - 1) * factor
    return codes, mult


class _DataCache:
    """Runs data steps once per distinct parameter prefix.

    States are kept without their intermediate data sets, and at most ``limit`` of them (least
    recently used go first), so continuous assumptions on data steps cannot exhaust memory; an
    evicted prefix is simply recomputed when needed.
    """

    def __init__(self, spec: IndexSpec, data: pd.DataFrame, limit: int = 64) -> None:
        self.spec = spec
        self.data = data
        self.limit = limit
        self.cache: OrderedDict[str, BuildState] = OrderedDict()
        self.seen: set[str] = set()

    @property
    def variants(self) -> int:
        return len(self.seen)

    def _get(self, key: str) -> BuildState | None:
        state = self.cache.get(key)
        if state is not None:
            self.cache.move_to_end(key)
        return state

    def _put(self, key: str, state: BuildState) -> None:
        state.datasets = {}
        self.cache[key] = state
        while len(self.cache) > self.limit:
            self.cache.popitem(last=False)

    def state(self, spec: IndexSpec, framework: Framework, drop_key: str) -> BuildState:
        data_steps = [s for s in spec.steps if s.kind in _DATA_STEP_KINDS or s.kind == "weight"]
        key = drop_key
        state = self._get(key)
        if state is None:
            state = prepare_state(spec, self.data, framework)
            self._put(key, state)
        for step in data_steps:
            key = key + "|" + json.dumps(step_to_dict(step), sort_keys=True, default=str)
            cached = self._get(key)
            if cached is None:
                cached = state.copy()
                run_step(cached, step)
                self._put(key, cached)
            state = cached
        self.seen.add(key)
        return state


def aggregate_batch(
    indicator_values: Mapping[str, FloatArray],
    framework: Framework,
    node_weights: FloatArray,
    node_codes: Sequence[str],
    step: Aggregate,
) -> tuple[dict[str, FloatArray], FloatArray]:
    """Aggregate for R weight sets at once; returns {code: units × R} and a failed-rep mask."""
    col = {c: i for i, c in enumerate(node_codes)}
    r = node_weights.shape[0]
    values: dict[str, FloatArray] = {c: v[:, None] for c, v in indicator_values.items()}
    n_units = next(iter(indicator_values.values())).shape[0]
    failed = np.zeros(r, dtype=bool)
    for code in framework.aggregates:
        kids = [k for k in framework.children(code) if k in values]
        if not kids:
            continue
        method = step.by_level.get(framework.level_of(code), step.method)
        w = node_weights[:, [col[k] for k in kids]]  # R × k
        if all(values[k].shape[1] == 1 for k in kids):
            x = np.stack([values[k] for k in kids], axis=-1)  # units × 1 × k: shared by all reps
        else:
            x = np.stack([np.broadcast_to(values[k], (n_units, r)) for k in kids], axis=-1)
        if method in aggregation.MEANS:
            y = aggregation.mean_batch(
                x, w, method, min_coverage=step.min_coverage, missing=step.missing, strict=False
            )
            if method != "arithmetic":
                bad = (x <= 0) if method == "geometric" else (x == 0)
                failed |= np.broadcast_to(bad.any(axis=(0, 2)), (r,))
        else:
            y = np.empty((n_units, r))
            for j in range(r):
                xj = x[:, j, :]
                if method == "copeland":
                    y[:, j] = aggregation.copeland(xj, w[j])
                elif method == "median":
                    y[:, j] = aggregation.weighted_median(xj, w[j])
                else:
                    y[:, j] = aggregation.benefit_of_the_doubt(
                        xj, min_share=step.bod_min_share, max_share=step.bod_max_share
                    )[0]
        values[code] = y
    return values, failed


def run_uncertainty(
    spec: IndexSpec,
    data: pd.DataFrame,
    framework: Framework,
    assumptions: Sequence[Assumption],
    *,
    n: int = 1000,
    method: str = "mc",
    target: str | None = None,
    seed: int | None = 0,
    chunk: int = 200,
    bootstrap: int = 100,
    progress: Progress | None = None,
) -> UncertaintyResult:
    """Monte Carlo uncertainty (``method="mc"``) or Sobol sensitivity (``"sobol"``) analysis.

    Parameters
    ----------
    spec, data, framework
        The nominal index, as for :func:`build_index`.
    assumptions
        The uncertain inputs.
    n
        Replications for ``mc``; base sample size N for ``sobol`` (runs = N·(d+2); a power of
        two suits the Sobol sequence best).
    target
        Code whose ranks are studied (default: the root).
    chunk
        Replications aggregated together (bounds memory: units × chunk × children floats).
    progress
        Called as ``progress(done, total)`` after each chunk.
    """
    t0 = time.perf_counter()
    if not assumptions:
        raise SpecificationError("uncertainty analysis needs at least one assumption")
    if not spec.has_step("aggregate"):
        raise SpecificationError("uncertainty analysis needs an `aggregate` step in the spec")
    names = [a.name for a in assumptions]
    if len(set(names)) != len(names):
        raise SpecificationError(f"assumption names must be unique: {names}")
    for a in assumptions:
        if a.kind == "step":
            spec.step(a.step)  # type: ignore[arg-type]  # raises if absent
    if sum(a.kind == "weights" for a in assumptions) > 1:
        raise SpecificationError("give at most one weights_noise assumption (it may list levels)")
    # without an explicit count, draw as many weight sets as replications (COINr draws 100)
    assumptions = [
        replace(a, weight_sets=max(n, 2)) if a.kind == "weights" and a.weight_sets is None else a
        for a in assumptions
    ]
    rng = np.random.default_rng(seed)
    nominal = build_index(spec, data, framework)
    target = target or framework.root
    if target not in nominal.scores.columns:
        raise SpecificationError(f"target `{target}` is not a result of the index")
    units = list(nominal.scores.index)
    nominal_rank = nominal.ranks[target].to_numpy(dtype=float)
    d = len(assumptions)
    problem = {"num_vars": d, "names": names, "bounds": [[0.0, 1.0]] * d}
    if method == "mc":
        u = rng.random((n, d))
    elif method == "sobol":
        if d < 2:
            raise SpecificationError("Sobol indices need at least two assumptions")
        from SALib.sample import sobol as sobol_sample

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            u = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
        u = np.clip(u, 0.0, np.nextafter(1.0, 0.0))
    else:
        raise SpecificationError("method must be `mc` or `sobol`")
    runs = u.shape[0]
    choices = [[a.decode(float(u[i, j])) for j, a in enumerate(assumptions)] for i in range(runs)]

    weight_assumption = next((j for j, a in enumerate(assumptions) if a.kind == "weights"), None)
    drop_assumption = next((j for j, a in enumerate(assumptions) if a.kind == "drop"), None)
    if weight_assumption is not None:
        noise_codes, multipliers = _noise_multipliers(
            framework, assumptions[weight_assumption], rng
        )
    # group replications by everything except the weight set
    groups: dict[str, list[int]] = {}
    group_spec: dict[str, tuple[IndexSpec, tuple[str, ...]]] = {}
    for i, choice in enumerate(choices):
        key = json.dumps([c for j, c in enumerate(choice) if j != weight_assumption])
        if key not in groups:
            variant = _apply_choices(spec, assumptions, choice)
            dropped = (
                tuple(assumptions[drop_assumption].drop[choice[drop_assumption]])
                if drop_assumption is not None
                else ()
            )
            group_spec[key] = (variant, dropped)
        groups.setdefault(key, []).append(i)

    cache = _DataCache(spec, data)
    scores = np.full((len(units), runs), np.nan)
    failed = np.zeros(runs, dtype=bool)
    unit_pos = {u_: k for k, u_ in enumerate(units)}
    done = 0
    notes: list[str] = []
    for key, reps in groups.items():
        variant, dropped = group_spec[key]
        fw = framework.without(dropped) if dropped else framework
        state = cache.state(variant, fw, json.dumps(list(dropped)))
        gfw = state.framework
        agg_step = variant.step("aggregate")
        assert isinstance(agg_step, Aggregate)
        node_codes = [nd.code for nd in gfw.nodes]
        base_w = np.array([nd.weight for nd in gfw.nodes], dtype=float)
        ind_values = {c: state.data[c].to_numpy(dtype=float) for c in state.data.columns}
        rows = [unit_pos.get(u_) for u_ in state.data.index]
        row_idx = np.array([r for r in rows if r is not None], dtype=int)
        keep_rows = np.array([r is not None for r in rows])
        if not keep_rows.all():
            ind_values = {c: v[keep_rows] for c, v in ind_values.items()}
        for start in range(0, len(reps), chunk):
            part = reps[start : start + chunk]
            w = np.tile(base_w, (len(part), 1))
            if weight_assumption is not None:
                sets = [choices[i][weight_assumption] for i in part]
                pos = {c: k for k, c in enumerate(noise_codes)}
                cols = [pos[c] for c in node_codes]
                w = w * multipliers[np.ix_(sets, cols)]
            vals, bad = aggregate_batch(ind_values, gfw, w, node_codes, agg_step)
            if target not in vals:
                raise SpecificationError(
                    f"target `{target}` vanished in a variant (all children dropped?)"
                )
            block = np.broadcast_to(vals[target], (len(row_idx), len(part)))
            part_idx = np.array(part)
            scores[np.ix_(row_idx, part_idx)] = block
            failed[part_idx] |= bad
            done += len(part)
            if progress is not None:
                progress(done, runs)
    if failed.any():
        scores[:, failed] = np.nan
        notes.append(
            f"{int(failed.sum())} of {runs} replications failed (values outside the domain of the "
            "geometric/harmonic mean) and were left out, as COINr does"
        )
    ranks = _ranks_matrix(scores)
    ok = ~failed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # Sobol: SALib lays Saltelli's design out in blocks of d + 2 rows (A_i, AB_i1..AB_id,
        # B_i); the A and B rows alone are a plain random sample for the rank statistics
        plain = np.ones(runs, dtype=bool)
        if method == "sobol":
            plain[:] = False
            plain[0 :: d + 2] = True
            plain[d + 1 :: d + 2] = True
        base = ranks[:, ok & plain]
        q = np.nanquantile if np.isnan(base).any() else np.quantile
        stats = pd.DataFrame(
            {
                "nominal": nominal_rank,
                "mean": np.nanmean(base, axis=1),
                "median": q(base, 0.5, axis=1),
                "q05": q(base, 0.05, axis=1),
                "q95": q(base, 0.95, axis=1),
            },
            index=pd.Index(units, name="unit"),
        )
    samples = pd.DataFrame(
        [[_describe(a, c) for a, c in zip(assumptions, ch, strict=True)] for ch in choices],
        columns=names,
    )
    sensitivity = None
    if method == "sobol":
        from SALib.analyze import sobol as sobol_analyze

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # failed runs are all-NaN columns
            shift = np.nanmean(np.abs(ranks - nominal_rank[:, None]), axis=0)
        if np.isnan(shift).any():
            shift = np.where(np.isnan(shift), np.nanmean(shift), shift)
            notes.append("failed replications enter the Sobol estimate at the mean output")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sobol_analyze.analyze(
                problem, shift, calc_second_order=False, num_resamples=bootstrap, seed=seed
            )
        sensitivity = pd.DataFrame(
            {
                "S1": res["S1"],
                "S1_conf": res["S1_conf"],
                "ST": res["ST"],
                "ST_conf": res["ST_conf"],
            },
            index=pd.Index(names, name="assumption"),
        )
    return UncertaintyResult(
        target=target,
        method=method,
        rank_stats=stats,
        ranks=pd.DataFrame(ranks, index=units),
        scores=pd.DataFrame(scores, index=units),
        samples=samples,
        sensitivity=sensitivity,
        runs=runs,
        failed=int(failed.sum()),
        seconds=time.perf_counter() - t0,
        data_variants=cache.variants,
        warnings=notes,
    )


def _describe(a: Assumption, choice: Any) -> Any:
    if a.kind == "weights":
        return f"set {choice}"
    if a.kind == "drop":
        return ",".join(a.drop[choice]) or "none"
    if a.values:
        v = a.values[choice]
        return json.dumps(v, sort_keys=True) if isinstance(v, Mapping) else v
    return choice


# convenience for the bench and docs: COINr's sensitivity-vignette assumptions
def coinr_vignette_assumptions(weight_sets: int = 100) -> list[Assumption]:
    """The four assumptions of COINr's sensitivity vignette (winmax, normalisation, weights,
    aggregation)."""
    return [
        Assumption("Winmax", step="treat", parameter="max_points", values=(1, 2, 3, 4, 5)),
        Assumption(
            "Normalisation",
            step="normalise",
            values=(
                {"method": "minmax", "params": {"low": 1.0, "high": 100.0}},
                {"method": "zscore", "params": {"mean": 10.0, "sd": 2.0}},
            ),
        ),
        Assumption("Weights", weights_noise={2: 0.25, 3: 0.25}, weight_sets=weight_sets),
        Assumption(
            "Aggregation", step="aggregate", parameter="method", values=("arithmetic", "geometric")
        ),
    ]


__all__ = [
    "Assumption",
    "UncertaintyResult",
    "assumptions_from_config",
    "coinr_vignette_assumptions",
    "run_uncertainty",
]
