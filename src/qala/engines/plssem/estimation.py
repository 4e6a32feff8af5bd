"""Model plans and batched fitting: the layer every PLS-SEM estimation goes through.

A fit runs in one stage, or in two when the model has higher-order constructs or interaction
terms: stage one estimates the first-order model (dimensions take the place of their
higher-order construct; interaction terms are left out), and its construct scores become the
indicators of the higher-order constructs and the product indicators of the interactions in
stage two. Every fit, single or batched (bootstrap, jackknife, folds, groups), goes through
:func:`fit_counts`, so all of them share one code path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from qala.core.errors import Problem, SpecificationError, ValidationError
from qala.engines.plssem import kernel as k
from qala.engines.plssem.spec import INTERACTION_SEPARATOR, Construct, ModelSpec

if TYPE_CHECKING:
    import pandas as pd

Missing = Literal["error", "mean", "drop"]


class FitSettings(Protocol):
    """What a fitted model keeps of its estimator (a :class:`~qala.engines.plssem.model.PLSSEM`):
    the follow-up analyses refit with the same plan and settings."""

    @property
    def plan_(self) -> Plan: ...
    @property
    def scheme(self) -> str: ...
    @property
    def consistent(self) -> bool: ...
    @property
    def max_iter(self) -> int: ...
    @property
    def tol(self) -> float: ...


@dataclass(frozen=True)
class Derived:
    """A stage-two column computed from stage-one construct scores."""

    name: str
    kind: Literal["score", "product"]
    sources: tuple[int, ...]  # construct indices in the stage-one layout


@dataclass(frozen=True)
class Plan:
    """Index form of a whole model: the optional first stage and the final stage."""

    spec: ModelSpec
    observed: tuple[str, ...]
    first: k.Layout | None
    final: k.Layout
    final_observed: tuple[int, ...]  # indices into ``observed`` of the final stage's data columns
    derived: tuple[Derived, ...] = field(default=())


def _layout(
    constructs: list[Construct], paths: list[tuple[str, str]], columns: list[str]
) -> k.Layout:
    names = [c.name for c in constructs]
    membership = np.zeros((len(columns), len(names)))
    col_index = {c: i for i, c in enumerate(columns)}
    for j, c in enumerate(constructs):
        for item in c.items:
            membership[col_index[item], j] = 1.0
    adjacency = np.zeros((len(names), len(names)))
    for source, target in paths:
        adjacency[names.index(source), names.index(target)] = 1.0
    return k.Layout(
        columns=tuple(columns),
        constructs=tuple(names),
        membership=membership,
        mode_b=tuple(c.mode == "B" and len(c.items) > 1 for c in constructs),
        reflective=tuple(c.reflective for c in constructs),
        adjacency=adjacency,
    )


def build_plan(spec: ModelSpec) -> Plan:
    """Turn a validated specification into stage layouts."""
    observed = spec.observed_items()
    hocs = spec.higher_order
    interactions = spec.interactions
    structural = spec.structural_constructs()
    by_name = {c.name: c for c in spec.constructs}

    def final_construct(name: str) -> Construct:
        if INTERACTION_SEPARATOR in name:
            return Construct(name, (name,), "A", reflective=False)
        return by_name[name]

    final_constructs = [final_construct(n) for n in structural]
    spec_paths = [(p.source, p.target) for p in spec.paths]
    if not hocs and not interactions:
        layout = _layout(final_constructs, spec_paths, list(observed))
        return Plan(spec, tuple(observed), None, layout, tuple(range(len(observed))))

    # stage one: drop interaction paths, then rewire each higher-order construct to its dimensions
    first_paths = [(s, t) for s, t in spec_paths if INTERACTION_SEPARATOR not in s]
    for hoc in hocs:
        antecedents = [s for s, t in first_paths if t == hoc.name]
        outcomes = [t for s, t in first_paths if s == hoc.name]
        first_paths = [(s, t) for s, t in first_paths if hoc.name not in (s, t)]
        first_paths += [(a, d) for d in hoc.items for a in antecedents]
        first_paths += [(d, o) for d in hoc.items for o in outcomes]
    hoc_names = {h.name for h in hocs}
    in_first = {s for s, _ in first_paths} | {t for _, t in first_paths}
    first_constructs = [
        c for c in spec.constructs if c.name in in_first and c.name not in hoc_names
    ]
    for name in {n for i in interactions for n in i.split(INTERACTION_SEPARATOR)}:
        if name not in in_first:
            raise SpecificationError(
                f"interaction term uses `{name}`, which has no main-effect path; add one"
            )
    first = _layout(first_constructs, first_paths, list(observed))
    first_names = list(first.constructs)

    derived: list[Derived] = []
    final_columns: list[str] = []
    final_observed: list[int] = []
    for c in final_constructs:
        if c.name in hoc_names:
            for dim in c.items:
                if dim not in final_columns:
                    derived.append(Derived(dim, "score", (first_names.index(dim),)))
                    final_columns.append(dim)
        elif INTERACTION_SEPARATOR in c.name:
            a, b = c.name.split(INTERACTION_SEPARATOR)
            derived.append(Derived(c.name, "product", (first_names.index(a), first_names.index(b))))
            final_columns.append(c.name)
        else:
            for item in c.items:
                final_columns.append(item)
                final_observed.append(observed.index(item))
    # observed columns first, then derived ones, as fit_counts assembles them
    observed_cols = [observed[i] for i in final_observed]
    ordered_columns = observed_cols + [d.name for d in derived]
    final = _layout(final_constructs, spec_paths, ordered_columns)
    return Plan(spec, tuple(observed), first, final, tuple(final_observed), tuple(derived))


# -- data preparation ---------------------------------------------------------------------------
# The cells pandas' CSV reader takes as missing by default: a CSV read without pandas (the CLI's
# fast path) treats the same cells as missing, so both readings give the same data.
NA_CELLS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)

#: Indicator data as plain columns: name → cells (numbers, or text as read from a CSV).
ColumnData = Mapping[str, Sequence[object]]


@dataclass(frozen=True)
class Indicators:
    """Indicator data ready for estimation: complete, numeric, no constant column.

    ``values`` is n × p in the order of ``names``; ``rows`` labels each row (the DataFrame's
    index, or 0-based data row numbers for plain columns) so dropped rows stay traceable.
    """

    names: tuple[str, ...]
    values: k.Array
    rows: Any

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.values, index=self.rows, columns=list(self.names))


def _unknown_columns(present: Sequence[object], columns: tuple[str, ...]) -> None:
    known = set(present)
    problems = [
        Problem(
            "the model names this indicator but the data has no such column "
            f"(columns: {', '.join(map(str, list(present)[:30]))})",
            column=c,
            code="unknown_column",
        )
        for c in columns
        if c not in known
    ]
    if problems:
        raise ValidationError(problems, "data does not match the model")


def _cell_number(cell: object) -> float | None:
    """A cell as a number: NaN when missing, None when it is not a number."""
    if cell is None:
        return math.nan
    if isinstance(cell, str):
        text = cell.strip()
        if text in NA_CELLS:
            return math.nan
        try:
            return float(text)
        except ValueError:
            return None
    try:
        return float(cell)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _numeric_columns(data: ColumnData, columns: tuple[str, ...]) -> k.Array:
    """Columns of plain cells as an n × p float array (NaN where missing); every non-numeric
    cell reported, up to five per column."""
    lengths = {len(data[c]) for c in columns}
    if len(lengths) > 1:
        raise ValidationError.single("the data's columns differ in length", code="ragged")
    n = lengths.pop() if lengths else 0
    out = np.empty((n, len(columns)))
    problems: list[Problem] = []
    for j, c in enumerate(columns):
        bad = 0
        for i, cell in enumerate(data[c]):
            number = _cell_number(cell)
            if number is None:
                number = math.nan
                if bad < 5:
                    problems.append(
                        Problem(
                            "expected a number", row=i + 2, column=c, value=cell, code="not_numeric"
                        )
                    )
                bad += 1
            out[i, j] = number
    if problems:
        raise ValidationError(problems, "data has non-numeric indicator values")
    return out


def _frame_columns(data: pd.DataFrame, columns: tuple[str, ...]) -> k.Array:
    import pandas as pd

    frame = data.loc[:, list(columns)]
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    problems: list[Problem] = []
    for c in columns:
        bad = numeric[c].isna() & frame[c].notna()
        for pos in np.flatnonzero(bad.to_numpy())[:5]:
            problems.append(
                Problem(
                    "expected a number",
                    row=int(pos) + 2,
                    column=c,
                    value=frame[c].iloc[pos],
                    code="not_numeric",
                )
            )
    if problems:
        raise ValidationError(problems, "data has non-numeric indicator values")
    return np.asarray(numeric.to_numpy(dtype=float), dtype=np.float64)


def prepare_indicators(
    data: pd.DataFrame | ColumnData, columns: tuple[str, ...], missing: Missing = "error"
) -> Indicators:
    """Select, check and clean the indicator columns; every problem is reported together.

    ``data`` is a DataFrame or plain columns (name → cells, e.g. the text of a CSV); both are
    checked by the same rules and give the same numbers.
    """
    if isinstance(data, Mapping):
        _unknown_columns(list(data), columns)
        values = _numeric_columns(data, columns)
        rows: Any = np.arange(values.shape[0])
    else:
        _unknown_columns(list(data.columns), columns)
        values = _frame_columns(data, columns)
        rows = data.index
    holes = np.isnan(values)
    problems: list[Problem] = []
    if holes.any():
        if missing == "error":
            for j, c in enumerate(columns):
                at = np.flatnonzero(holes[:, j])
                if at.size:
                    problems.append(
                        Problem(
                            f"{at.size} missing value(s), first at data row {int(at[0]) + 2}; "
                            "fill them or choose missing='mean' or 'drop'",
                            column=c,
                            code="missing",
                        )
                    )
            raise ValidationError(problems, "data has missing indicator values")
        if missing == "mean":
            present = (~holes).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(holes, 0.0, values).sum(axis=0) / present
            values = np.where(holes, means[None, :], values)
        else:
            complete = ~holes.any(axis=1)
            values = values[complete]
            rows = rows[complete]
    if len(values) < 3:
        raise ValidationError.single(
            f"need at least 3 complete observations, got {len(values)}", code="too_few_rows"
        )
    spread = values.std(axis=0, ddof=1)
    centre = values.mean(axis=0)
    for j, c in enumerate(columns):
        if not np.isfinite(spread[j]) or spread[j] <= 1e-12 * (1 + abs(centre[j])):
            problems.append(
                Problem(
                    "indicator is constant; it carries no information",
                    column=c,
                    value=float(values[0, j]),
                    code="constant",
                )
            )
    if problems:
        raise ValidationError(problems, "data has unusable indicators")
    return Indicators(tuple(columns), np.ascontiguousarray(values, dtype=np.float64), rows)


def prepare_data(
    data: pd.DataFrame | ColumnData, columns: tuple[str, ...], missing: Missing = "error"
) -> pd.DataFrame:
    """:func:`prepare_indicators` as a DataFrame (rows keep their labels)."""
    return prepare_indicators(data, columns, missing).frame()


# -- batched fitting ----------------------------------------------------------------------------
@dataclass
class BatchFit:
    """Estimates of one fit per batch member (leading axis)."""

    estimates: k.Estimates
    s_final: k.Array
    iterations: np.ndarray
    converged: np.ndarray
    first_weights: k.Array | None = None
    first_loadings: k.Array | None = None


def _stage_two_correlations(
    plan: Plan, centred: k.Array, counts: k.Array, w1: k.Array, chunk: int = 128
) -> k.Array:
    n_eff = counts.sum(axis=1)
    means = counts @ centred / n_eff[:, None]
    out = np.empty((counts.shape[0], len(plan.final.columns), len(plan.final.columns)))
    obs = list(plan.final_observed)
    for start in range(0, counts.shape[0], chunk):
        stop = min(start + chunk, counts.shape[0])
        c = counts[start:stop]
        dev = centred[None, :, :] - means[start:stop, None, :]
        var = np.einsum("bn,bnp->bp", c, dev**2) / (n_eff[start:stop, None] - 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = dev / np.sqrt(var)[:, None, :]
        scores = z @ w1[start:stop]
        cols = [z[:, :, obs]]
        for d in plan.derived:
            if d.kind == "score":
                cols.append(scores[:, :, d.sources[0] : d.sources[0] + 1])
            else:
                a, b = d.sources
                cols.append((scores[:, :, a] * scores[:, :, b])[:, :, None])
        out[start:stop] = k.weighted_correlations_of_stack(np.concatenate(cols, axis=2), c)
    return out


def fit_counts(
    plan: Plan,
    centred: k.Array,
    counts: k.Array,
    *,
    scheme: str,
    consistent: bool,
    max_iter: int = 300,
    tol: float = 1e-7,
) -> BatchFit:
    """Fit the model once per row of ``counts`` (observation multiplicities, b × n)."""
    s_obs = k.correlations_from_counts(centred, counts)
    first_w = first_l = None
    if plan.first is None:
        s_final = s_obs
        it1 = None
    else:
        it1 = k.iterate(s_obs, plan.first, scheme, max_iter=max_iter, tol=tol)
        first_w = it1.weights
        first_l = (s_obs @ first_w) * plan.first.membership
        s_final = _stage_two_correlations(plan, centred, counts, first_w)
    it2 = k.iterate(s_final, plan.final, scheme, max_iter=max_iter, tol=tol)
    est = k.estimate(s_final, it2.weights, plan.final, consistent=consistent)
    converged = it2.converged if it1 is None else it2.converged & it1.converged
    iterations = it2.iterations if it1 is None else np.maximum(it1.iterations, it2.iterations)
    return BatchFit(est, s_final, iterations, converged, first_w, first_l)
