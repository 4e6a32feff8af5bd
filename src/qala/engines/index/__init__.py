"""Composite-index builder (OECD/JRC Handbook 2008; a faster, typed take on the JRC's COINr).

Public API
----------
Structure::

    framework = framework_from_meta(meta_df)      # COINr iMeta columns: Level, iCode, iName,
                                                  # Direction, Weight, Unit, Target,
                                                  # Denominator, Parent, Type
    framework = framework_from_tree({"code": "Index", "children": [
        {"code": "Health", "weight": 2, "children": [{"code": "beds", "direction": 1}, ...]},
        ...]})

Recipe (ordered, typed, JSON/YAML-serialisable; no data inside)::

    spec = IndexSpec(steps=(
        Denominate(), Impute(method="group_mean", group="EurAsia_group"),
        Screen(unit_min_coverage=0.9), Treat(max_points=5), Normalise(), Aggregate()))
    spec = IndexSpec.from_text(yaml_or_json_text); text = spec.to_yaml()

Build, regenerate, compare::

    result = build_index(spec, data_df, framework)     # -> IndexResult
    result.scores / result.ranks                       # units × codes, every level
    result.imputed / result.treated                    # flags per unit and indicator
    result.to_json_dict()                              # {"scores": {unit: {code: x}}, "ranks": ...}
    variant = result.regenerate(spec.with_step("normalise", method="rank"))
    compare(result, variant)                           # rank shifts, largest first
    result.strengths_weaknesses("KAZ"); result.unit_summary("KAZ")

Audit, uncertainty and sensitivity::

    audit(result)                                      # correlations, alpha, PCA, silent indicators
    run_uncertainty(spec, data_df, framework, [Assumption(...), ...], n=1000)          # MC
    run_uncertainty(..., n=256, method="sobol")        # first-order and total Sobol (SALib)

Store rows (unit, indicator, value[, period]) become the wide table with
``wide_from_long(records, unit="place", indicator="code", value="value", time="year")``.

The engine does no I/O: callers read files and pass DataFrames and text.
"""

from .aggregation import benefit_of_the_doubt, copeland, weighted_mean
from .audit import AuditReport, audit, cronbach_alpha
from .build import (
    IndexResult,
    aggregate_scores,
    build_index,
    compare,
    compare_many,
    rank_desc,
    wide_from_long,
)
from .framework import Framework, Node, framework_from_meta, framework_from_tree
from .normalisation import register_normaliser
from .spec import (
    Aggregate,
    Denominate,
    Impute,
    IndexSpec,
    Normalise,
    Screen,
    Step,
    Treat,
    Weight,
    uncertainty_section,
)
from .uncertainty import (
    Assumption,
    UncertaintyResult,
    assumptions_from_config,
    coinr_vignette_assumptions,
    run_uncertainty,
)

__all__ = [
    "Aggregate",
    "Assumption",
    "AuditReport",
    "Denominate",
    "Framework",
    "Impute",
    "IndexResult",
    "IndexSpec",
    "Node",
    "Normalise",
    "Screen",
    "Step",
    "Treat",
    "UncertaintyResult",
    "Weight",
    "aggregate_scores",
    "assumptions_from_config",
    "audit",
    "benefit_of_the_doubt",
    "build_index",
    "coinr_vignette_assumptions",
    "compare",
    "compare_many",
    "copeland",
    "cronbach_alpha",
    "framework_from_meta",
    "framework_from_tree",
    "rank_desc",
    "register_normaliser",
    "run_uncertainty",
    "uncertainty_section",
    "weighted_mean",
    "wide_from_long",
]
