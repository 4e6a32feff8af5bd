"""What-if model, analysis views and the workbook, on small hand-checked data and on COINr's ASEM
example (the shared data set the ASEM reproduction test reads)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from tests.conftest import REPO_ROOT, shared_file

from qala.core.errors import SpecificationError, ValidationError
from qala.engines.index import (
    Aggregate,
    Impute,
    IndexSpec,
    Normalise,
    Treat,
    assumptions_from_config,
    audit,
    build_index,
    framework_from_meta,
    framework_from_tree,
    run_uncertainty,
    uncertainty_section,
)
from qala.engines.index.views import (
    bump_table,
    correlations,
    indicator_distribution,
    sunburst_arcs,
)
from qala.engines.index.whatif import WhatIfModel, WhatIfSettings
from qala.engines.index.workbook import workbook_bytes

TREE = {
    "code": "City",
    "children": [
        {
            "code": "Health",
            "children": [{"code": "beds"}, {"code": "wait", "direction": -1}],
        },
        {
            "code": "Mobility",
            "children": [
                {"code": "Transit", "children": [{"code": "bus"}, {"code": "tram"}]},
                {"code": "bike"},
            ],
        },
    ],
}

RNG = np.random.default_rng(7)
N = 12
DATA = pd.DataFrame(
    {
        "uCode": [f"U{i:02d}" for i in range(N)],
        "beds": RNG.uniform(0, 50, N),
        "wait": RNG.uniform(5, 30, N),
        "bus": RNG.uniform(0, 10, N),
        "tram": RNG.uniform(0, 10, N),
        "bike": RNG.uniform(0, 10, N),
    }
)
DATA.loc[3, "beds"] = np.nan
DATA.loc[5, "bike"] = 400.0  # an outlier the treatment winsorises

SPEC = IndexSpec(
    steps=(
        Impute(method="median"),
        Treat(max_points=2),
        Normalise(method="minmax", params={"low": 0.0, "high": 100.0}),
        Aggregate(method="arithmetic"),
    )
)


@pytest.fixture(scope="module")
def model() -> WhatIfModel:
    return WhatIfModel(SPEC, DATA, framework_from_tree(TREE), replications=100, seed=3)


def test_official_settings_reproduce_the_build(model: WhatIfModel) -> None:
    built = build_index(SPEC, DATA, framework_from_tree(TREE))
    official = model.official_result()
    assert model.official == WhatIfSettings(
        normalisation="minmax", aggregation="arithmetic", imputation="median"
    )
    np.testing.assert_allclose(
        official.table["score"].sort_index(), built.scores["City"].sort_index(), atol=1e-9
    )
    assert (official.table["shift"] == 0).all()
    assert official.drivers == {}


@pytest.mark.parametrize(
    "settings",
    [
        WhatIfSettings(weights={"Health": 3.0}),
        WhatIfSettings(weights={"Transit": 0.2, "Mobility": 2.0}),
        WhatIfSettings(normalisation="rank"),
        WhatIfSettings(normalisation="minmax_1_100", aggregation="geometric"),
        WhatIfSettings(imputation="mean", aggregation="harmonic", normalisation="zscore"),
    ],
)
def test_each_setting_equals_a_full_build_of_its_variant_spec(
    model: WhatIfModel, settings: WhatIfSettings
) -> None:
    fw = framework_from_tree(TREE)
    result = model.evaluate(settings)
    rebuilt = build_index(model.variant_spec(settings), DATA, fw)
    np.testing.assert_allclose(
        result.table["score"].sort_index(), rebuilt.scores["City"].sort_index(), atol=1e-9
    )
    assert (result.table["rank"].sort_index() == rebuilt.ranks["City"].sort_index()).all()
    # every rank lies inside its own 5–95 % interval's neighbourhood and the bounds are ordered
    assert (result.table["q05"] <= result.table["q95"]).all()


def test_arithmetic_drivers_add_up_to_the_change_of_distance_from_the_mean(
    model: WhatIfModel,
) -> None:
    """For an arithmetic mean with complete data the indicator terms are exact: their sum is the
    change of (score − mean score) of the unit."""
    settings = WhatIfSettings(weights={"Health": 4.0})
    result = model.evaluate(settings)
    official = model.official_result().table["score"]
    new = result.table["score"]
    moved = (new - new.mean()) - (official - official.mean())
    full = model.contributions(settings)
    for unit, terms in full.iterrows():
        assert terms.sum() == pytest.approx(moved[unit], abs=1e-9)
        top = terms.abs().sort_values(ascending=False, kind="stable").index[:3]
        assert [c for c, _ in result.drivers[str(unit)]] == [c for c in top if abs(terms[c]) > 1e-9]
    assert result.exact_drivers
    # raising health's weight moves the units whose health indicators are far from the mean
    top_codes = {c for terms in result.drivers.values() for c, _ in terms}
    assert top_codes <= {"beds", "wait", "bus", "tram", "bike"}
    assert top_codes & {"beds", "wait"}


def test_rank_intervals_widen_with_noise_and_vanish_without() -> None:
    fw = framework_from_tree(TREE)
    quiet = WhatIfModel(SPEC, DATA, fw, noise={2: 0.0, 3: 0.0}, replications=50)
    table = quiet.official_result().table
    assert (table["q05"] == table["rank"]).all() and (table["q95"] == table["rank"]).all()
    loud = WhatIfModel(SPEC, DATA, fw, noise={2: 0.9, 3: 0.9}, replications=200)
    wide = loud.official_result().table
    assert (wide["q95"] - wide["q05"]).sum() > 0


def test_bad_settings_name_the_field(model: WhatIfModel) -> None:
    with pytest.raises(ValidationError, match="normalisation `bogus`"):
        model.evaluate(WhatIfSettings(normalisation="bogus"))
    with pytest.raises(ValidationError, match="`beds` is not an area"):
        model.evaluate(WhatIfSettings(weights={"beds": 2.0}))
    with pytest.raises(ValidationError, match="between 0 and 1000"):
        model.evaluate(WhatIfSettings(weights={"Health": -1.0}))
    with pytest.raises(ValidationError, match="geometric mean"):
        model.evaluate(WhatIfSettings(aggregation="geometric"))  # min-max 0–100 has zeros


def test_sunburst_angles_are_effective_weights() -> None:
    fw = framework_from_tree(TREE).with_weights({"Health": 3.0})
    arcs = {a.code: a for a in sunburst_arcs(fw)}
    effective = fw.effective_weights()
    for code, arc in arcs.items():
        assert arc.end - arc.start == pytest.approx(effective[code])
    assert arcs["Health"].end - arcs["Health"].start == pytest.approx(0.75)
    assert arcs["bus"].depth == 3 and arcs["bus"].parent == "Transit"


def test_distribution_shows_the_outlier_and_its_treatment() -> None:
    result = build_index(SPEC, DATA, framework_from_tree(TREE))
    dist = indicator_distribution(result, "bike")
    assert "U05" in dist.outliers
    assert dist.raw["U05"] == 400.0 and dist.treated["U05"] < 400.0
    assert dist.flags["U05"] == "winhi" and dist.treatment["winsorised"] >= 1
    assert indicator_distribution(result, "beds").imputed == ["U03"]
    with pytest.raises(SpecificationError):
        indicator_distribution(result, "Health")


def test_correlations_within_and_across_levels() -> None:
    result = build_index(SPEC, DATA, framework_from_tree(TREE))
    within = correlations(result, 1)
    assert list(within.index) == ["beds", "wait", "bus", "tram", "bike"]
    assert np.allclose(np.diag(within.to_numpy()), 1.0)
    across = correlations(result, 1, 2, parent="Health")
    assert list(across.index) == ["beds", "wait"] and "Health" in across.columns
    expected = result.scores["beds"].corr(result.scores["Health"])
    assert across.at["beds", "Health"] == pytest.approx(expected)
    with pytest.raises(SpecificationError, match="no level 9"):
        correlations(result, 9)


def test_bump_table_orders_by_the_first_ranking() -> None:
    a = pd.Series({"X": 1.0, "Y": 2.0, "Z": 3.0})
    b = pd.Series({"X": 3.0, "Y": 1.0, "Z": 2.0})
    table = bump_table({"2024": a, "2025": b})
    assert list(table.index) == ["X", "Y", "Z"] and list(table.columns) == ["2024", "2025"]
    assert list(bump_table({"a": a, "b": b}, top=1).index) == ["X", "Y"]
    with pytest.raises(SpecificationError):
        bump_table({"only": a})


def test_workbook_holds_every_step_and_neutralises_formulas() -> None:
    openpyxl = pytest.importorskip("openpyxl")
    data = DATA.copy()
    data["uName"] = ['=HYPERLINK("http://x")'] + [f"n{i}" for i in range(1, N)]
    result = build_index(SPEC, data, framework_from_tree(TREE))
    book = openpyxl.load_workbook(
        io.BytesIO(workbook_bytes(result, audit_report=audit(result), units=result.units))
    )
    for name in result.datasets:
        assert f"Data_{name}" in book.sheetnames
    for sheet in ("Spec", "Structure", "Scores", "Ranks", "Imputed", "Treated", "Audit_influence"):
        assert sheet in book.sheetnames
    units = list(book["Units"].iter_rows(values_only=True))
    at = units[0].index("uName")
    assert units[1][at] == '\'=HYPERLINK("http://x")'
    scores = book["Scores"]
    header = [c.value for c in scores[1]]
    first = {h: c.value for h, c in zip(header, scores[2], strict=True)}
    assert first["City"] == pytest.approx(result.scores.at[first[header[0]], "City"])
    weights = {r[0]: r[4] for r in book["Structure"].iter_rows(min_row=2, values_only=True)}
    assert weights["Health"] == 1.0


# --- COINr's ASEM example ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def asem() -> tuple[str, IndexSpec, pd.DataFrame, object]:
    data = pd.read_csv(shared_file("asem/ASEM_iData.csv"))
    meta = pd.read_csv(shared_file("asem/ASEM_iMeta.csv"))
    text = (REPO_ROOT / "examples" / "asem" / "spec.yaml").read_text(encoding="utf-8")
    return text, IndexSpec.from_text(text), data, framework_from_meta(meta)


@pytest.mark.shared
def test_asem_views_render_as_png_and_svg(asem: tuple, tmp_path: object) -> None:
    from qala.engines.index import plots

    _text, spec, data, fw = asem
    result = build_index(spec, data, fw)
    variant = result.regenerate(spec.with_step("normalise", method="rank", params={}))
    treated = next(
        c for c in fw.indicators if indicator_distribution(result, c).treatment.get("winsorised")
    )
    figures = {
        "sunburst": plots.sunburst_figure(result.framework),
        "distribution": plots.distribution_figure(indicator_distribution(result, treated)),
        "correlation": plots.correlation_figure(correlations(result, 1, 2, parent="Conn")),
        "bump": plots.bump_figure(
            bump_table({"nominal": result.ranks["Index"], "rank": variant.ranks["Index"]})
        ),
    }
    for name, figure in figures.items():
        for suffix in ("png", "svg"):
            path = tmp_path / f"{name}.{suffix}"  # type: ignore[operator]
            figure.savefig(path)
            head = path.read_bytes()[:200]
            assert (
                head.startswith(b"\x89PNG")
                if suffix == "png"
                else b"<svg" in path.read_bytes()[:2000]
            )
    arcs = sunburst_arcs(result.framework)
    assert sum(
        a.end - a.start for a in arcs if a.depth == max(x.depth for x in arcs)
    ) == pytest.approx(1.0)
    assert correlations(result, 2).shape == (8, 8)


@pytest.mark.shared
def test_asem_workbook_holds_every_step_audit_and_uncertainty(asem: tuple) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    text, spec, data, fw = asem
    result = build_index(spec, data, fw)
    block = uncertainty_section(text)
    assert block is not None
    unc = run_uncertainty(spec, data, fw, assumptions_from_config(block), n=16, seed=1)
    book = openpyxl.load_workbook(
        io.BytesIO(
            workbook_bytes(result, spec_text=text, audit_report=audit(result), uncertainty=unc)
        )
    )
    assert [s for s in book.sheetnames if s.startswith("Data_")] == [
        "Data_raw",
        "Data_denominated",
        "Data_screened",
        "Data_imputed",
        "Data_treated",
        "Data_normalised",
        "Data_aggregated",
    ]
    assert {"Uncertainty_ranks", "Audit_consistency", "Treatment", "Spec"} <= set(book.sheetnames)
    ranks = book["Ranks"]
    header = [c.value for c in ranks[1]]
    col = header.index("Index")
    by_unit = {row[0]: row[col] for row in ranks.iter_rows(min_row=2, values_only=True)}
    assert by_unit["CHE"] == 1  # COINr's published first place
    spec_lines = [r[0] for r in book["Spec"].iter_rows(values_only=True) if r and r[0]]
    assert any("step: normalise" in str(line) for line in spec_lines)
