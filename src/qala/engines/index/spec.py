"""The index recipe: an ordered list of typed step records, kept apart from the data.

A spec is plain data: it round-trips through dicts, JSON and YAML, so the file that made an index
documents its method. Change one step with :meth:`IndexSpec.with_step` and build again to
regenerate; compare the two results with :func:`qala.engines.index.compare`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Union

import yaml

from qala.core.errors import Problem, SpecificationError, ValidationError, raise_if_problems
from qala.core.yamltext import load_yaml


@dataclass(frozen=True)
class Denominate:
    """Divide indicators by a denominator column (e.g. GDP, population, area).

    ``by`` maps indicator → denominator column; when empty the meta table's ``Denominator``
    column is used. ``scale`` multiplies the ratio (e.g. 1000 for "per thousand").
    """

    kind: ClassVar[str] = "denominate"
    by: dict[str, str] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Screen:
    """Data checks and unit/indicator screening.

    Units whose share of observed indicators is below ``unit_min_coverage`` are dropped (COINr
    ``Screen(dat_thresh=..., unit_screen="byNA")``), likewise indicators under
    ``indicator_min_coverage``. Zero-variance indicators are dropped when ``drop_zero_variance``;
    near-duplicates and collinear pairs (|r| ≥ ``collinearity_threshold``) are only reported.
    """

    kind: ClassVar[str] = "screen"
    unit_min_coverage: float | None = None
    indicator_min_coverage: float | None = None
    drop_zero_variance: bool = False
    low_variance_cv: float = 0.01
    collinearity_threshold: float = 0.9
    exclude_units: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Impute:
    """Fill missing values; ``method`` is one of mean, median, group_mean, group_median, previous,
    em, regression, knn (see :mod:`qala.engines.index.imputation`). ``group`` names a unit column
    for the group methods; ``k`` is the kNN neighbourhood; ``max_gap`` limits previous-year carry;
    ``fallback`` (``mean`` or ``median``) fills whatever the method left missing (e.g. a unit never
    observed before, under ``previous``). ``row_mean`` groups indicators by their ancestor at
    ``group_level`` (e.g. 2 = their pillar; empty = the whole row).
    """

    kind: ClassVar[str] = "impute"
    method: str = "mean"
    group: str | None = None
    k: int = 5
    max_gap: int | None = None
    fallback: str | None = None
    group_level: int | None = None


@dataclass(frozen=True)
class Treat:
    """Outlier treatment by the JRC skew/kurtosis rule.

    ``method``: ``winsorise_log`` (winsorise, then log if still failing — COINr's default),
    ``winsorise``, ``log`` or ``none``. ``per_indicator`` overrides any field for named indicators
    (``{"GDP": {"method": "none"}}``).
    """

    kind: ClassVar[str] = "treat"
    method: str = "winsorise_log"
    max_points: int | None = 5
    skew_threshold: float = 2.0
    kurtosis_threshold: float = 3.5
    log: str = "log_ct"
    combine: bool = False
    per_indicator: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Normalise:
    """Normalise every indicator with ``method`` and ``params`` (see
    :mod:`qala.engines.index.normalisation`); ``per_indicator`` gives exceptions as
    ``{code: {"method": ..., **params}}``."""

    kind: ClassVar[str] = "normalise"
    method: str = "minmax"
    params: dict[str, Any] = field(default_factory=dict)  # each method has its own defaults
    per_indicator: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Weight:
    """Set the weights of the nodes at ``level`` (1 = indicators within their parents).

    ``method``: ``fixed`` (``weights``), ``equal``, ``budget`` (``allocations`` expert → code →
    points), ``pca``, ``factor`` or ``optimise_correlation`` (``importance`` code → target).
    ``parents`` limits the change to the children of these aggregates.
    """

    kind: ClassVar[str] = "weight"
    method: str = "equal"
    level: int = 1
    parents: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    allocations: dict[str, dict[str, float]] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Aggregate:
    """Aggregate children into parents from the lowest level up.

    ``method`` applies to every level unless ``by_level`` names another for a parent level
    (``{4: "geometric"}``). Methods: arithmetic, geometric, harmonic, copeland, bod.
    """

    kind: ClassVar[str] = "aggregate"
    method: str = "arithmetic"
    by_level: dict[int, str] = field(default_factory=dict)
    min_coverage: float | None = None
    missing: str = "available"
    bod_min_share: float | None = None
    bod_max_share: float | None = None


Step = Union[Denominate, Screen, Impute, Treat, Normalise, Weight, Aggregate]  # noqa: UP007
STEP_TYPES: dict[str, type[Any]] = {
    cls.kind: cls for cls in (Denominate, Screen, Impute, Treat, Normalise, Weight, Aggregate)
}


_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("impute", "method"): (
        "mean",
        "median",
        "group_mean",
        "group_median",
        "previous",
        "em",
        "regression",
        "knn",
        "row_mean",
        "none",
    ),
    ("impute", "fallback"): ("mean", "median"),
    ("treat", "method"): ("winsorise_log", "winsorise", "log", "none"),
    ("treat", "log"): ("log_ct", "log_ct_orig", "log"),
    ("normalise", "method"): (
        "minmax",
        "zscore",
        "rank",
        "borda",
        "percentile",
        "goalposts",
        "distance_to_target",
        "distance_to_max",
        "custom",
        "none",
    ),
    ("weight", "method"): ("fixed", "equal", "budget", "pca", "factor", "optimise_correlation"),
    ("aggregate", "method"): ("arithmetic", "geometric", "harmonic", "median", "copeland", "bod"),
    ("aggregate", "missing"): ("available", "propagate"),
}


def _type_ok(value: Any, annotation: str) -> bool:
    if value is None:
        return "None" in annotation
    head = annotation.split("|")[0].strip()
    if head.startswith("dict"):
        return isinstance(value, dict)
    if head.startswith("list"):
        return isinstance(value, list | tuple)
    if head == "bool":
        return isinstance(value, bool)
    if head == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if head == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if head == "str":
        return isinstance(value, str)
    return True


def step_problems(step: Step, position: int | None = None) -> list[Problem]:
    """Type and choice problems of one step record (empty when it is valid)."""
    where = f"step {position + 1} ({step.kind})" if position is not None else step.kind
    problems = []
    for f in fields(step):
        value = getattr(step, f.name)
        annotation = str(f.type)
        if not _type_ok(value, annotation):
            problems.append(
                Problem(f"{where}: `{f.name}` must be {annotation}", column=f.name, value=value)
            )
            continue
        choices = _CHOICES.get((step.kind, f.name))
        if choices and value is not None and value not in choices:
            problems.append(
                Problem(
                    f"{where}: `{f.name}` must be one of {', '.join(choices)}",
                    column=f.name,
                    value=value,
                )
            )
    if isinstance(step, Aggregate):
        allowed = _CHOICES[("aggregate", "method")]
        for level, method in step.by_level.items():
            if method not in allowed:
                problems.append(
                    Problem(
                        f"{where}: by_level[{level}] must be one of {', '.join(allowed)}",
                        column="by_level",
                        value=method,
                    )
                )
    return problems


def step_to_dict(step: Step) -> dict[str, Any]:
    body = asdict(step)
    if isinstance(step, Aggregate):
        body["by_level"] = {int(k): v for k, v in step.by_level.items()}
    return {"step": step.kind, **body}


def step_from_dict(item: dict[str, Any], position: int | None = None) -> Step:
    where = f"step {position + 1}" if position is not None else "step"
    if not isinstance(item, dict):
        raise ValidationError.single(f"{where} must be a mapping", value=item)
    body = dict(item)
    kind = body.pop("step", None) or body.pop("kind", None)
    if kind not in STEP_TYPES:
        raise ValidationError.single(
            f"{where}: unknown step `{kind}`; expected one of {sorted(STEP_TYPES)}",
            column="step",
            value=kind,
        )
    cls = STEP_TYPES[kind]
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError.single(
            f"{where} ({kind}): unknown field(s) {unknown}; allowed: {sorted(allowed)}",
            column=unknown[0],
        )
    if cls is Aggregate and "by_level" in body and body["by_level"]:
        body["by_level"] = {int(k): v for k, v in body["by_level"].items()}
    step: Step = cls(**body)
    return step


@dataclass(frozen=True)
class IndexSpec:
    """A composite-index recipe.

    Parameters
    ----------
    steps
        Ordered step records. Aggregation must come last; weighting before it.
    name, description
        Free text documenting the index.
    unit_column, name_column, time_column
        Columns of the data table holding the unit code, its display name and the period.
    period
        Which period to build when the data hold several (default: the latest).
    """

    steps: tuple[Step, ...] = ()
    name: str = "index"
    description: str = ""
    unit_column: str = "uCode"
    name_column: str = "uName"
    time_column: str = "Time"
    period: float | None = None
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "references", tuple(self.references))
        problems = []
        kinds = [s.kind for s in self.steps]
        if kinds.count("aggregate") > 1:
            problems.append(Problem("a spec may aggregate only once", column="steps"))
        if "aggregate" in kinds and kinds[-1] != "aggregate":
            problems.append(Problem("`aggregate` must be the last step", column="steps"))
        for i, step in enumerate(self.steps):
            if type(step) not in STEP_TYPES.values():
                problems.append(Problem(f"step {i + 1} is not a step record", value=step))
            else:
                problems.extend(step_problems(step, i))
        raise_if_problems(problems, "invalid index spec")

    # --- editing (returns new specs) ---------------------------------------------------------
    def locate(self, which: int | str) -> int:
        """Position of a step given by number (negative counts from the end) or by kind."""
        if isinstance(which, int):
            if not -len(self.steps) <= which < len(self.steps):
                raise SpecificationError(f"no step number {which}")
            return which % len(self.steps)
        matches = [i for i, s in enumerate(self.steps) if s.kind == which]
        if not matches:
            raise SpecificationError(f"the spec has no `{which}` step")
        if len(matches) > 1:
            raise SpecificationError(f"the spec has several `{which}` steps; give its position")
        return matches[0]

    def step(self, which: int | str) -> Step:
        return self.steps[self.locate(which)]

    def has_step(self, kind: str) -> bool:
        return any(s.kind == kind for s in self.steps)

    def with_step(self, which: int | str, **changes: Any) -> IndexSpec:
        """A copy with one step's fields changed (``spec.with_step("normalise", method="rank")``)."""
        i = self.locate(which)
        allowed = {f.name for f in fields(self.steps[i])}
        unknown = set(changes) - allowed
        if unknown:
            raise SpecificationError(
                f"step `{self.steps[i].kind}` has no field(s) {sorted(unknown)}"
            )
        new = replace(self.steps[i], **changes)
        return replace(self, steps=(*self.steps[:i], new, *self.steps[i + 1 :]))

    def replace_step(self, which: int | str, step: Step) -> IndexSpec:
        i = self.locate(which)
        return replace(self, steps=(*self.steps[:i], step, *self.steps[i + 1 :]))

    def without_step(self, which: int | str) -> IndexSpec:
        i = self.locate(which)
        return replace(self, steps=self.steps[:i] + self.steps[i + 1 :])

    def insert_step(self, position: int, step: Step) -> IndexSpec:
        steps = list(self.steps)
        steps.insert(position, step)
        return replace(self, steps=tuple(steps))

    # --- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["data"] = {
            "unit_column": self.unit_column,
            "name_column": self.name_column,
            "time_column": self.time_column,
            "period": self.period,
        }
        if self.references:
            out["references"] = list(self.references)
        out["steps"] = [step_to_dict(s) for s in self.steps]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IndexSpec:
        if not isinstance(raw, dict):
            raise ValidationError.single(
                "an index spec must be a mapping", value=type(raw).__name__
            )
        known = {"name", "description", "data", "steps", "references", "uncertainty"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValidationError.single(
                f"unknown top-level field(s) {unknown}; allowed: {sorted(known)}", column=unknown[0]
            )
        data = raw.get("data") or {}
        steps_raw = raw.get("steps") or []
        if not isinstance(steps_raw, list):
            raise ValidationError.single("`steps` must be a list", column="steps")
        steps = tuple(step_from_dict(s, i) for i, s in enumerate(steps_raw))
        return cls(
            steps=steps,
            name=str(raw.get("name", "index")),
            description=str(raw.get("description", "") or ""),
            unit_column=str(data.get("unit_column", "uCode")),
            name_column=str(data.get("name_column", "uName")),
            time_column=str(data.get("time_column", "Time")),
            period=data.get("period"),
            references=tuple(raw.get("references") or ()),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_yaml(self) -> str:
        body = self.to_dict()
        text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
        if load_yaml(text) != body:
            # a few characters (e.g. NEL) are line breaks to YAML: escape everything instead
            text = yaml.safe_dump(body, sort_keys=False, allow_unicode=False)
        return text

    @classmethod
    def from_text(cls, text: str) -> IndexSpec:
        """Parse JSON or YAML text."""
        try:
            # JSON first: YAML 1.1 reads JSON's "1e-06" as a string and rejects some characters
            raw = json.loads(text)
        except ValueError:
            try:
                raw = load_yaml(text)
            except yaml.YAMLError as exc:
                raise ValidationError.single(f"spec is not valid YAML/JSON: {exc}") from exc
        if isinstance(raw, dict) and "index" in raw and "steps" not in raw:
            raw = raw["index"]
        return cls.from_dict(raw)


def uncertainty_section(text: str) -> dict[str, Any] | None:
    """The optional ``uncertainty:`` block of a spec file (assumptions for Monte Carlo)."""
    try:
        raw = json.loads(text)
    except ValueError:
        raw = load_yaml(text)
    if isinstance(raw, dict):
        block = raw.get("uncertainty")
        if block is None or isinstance(block, dict):
            return block
        raise ValidationError.single("`uncertainty` must be a mapping", column="uncertainty")
    return None
