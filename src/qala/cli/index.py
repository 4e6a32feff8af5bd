"""`qala index …`: build, inspect, audit and stress-test a composite index from plain files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from qala.cli.common import console, counted_progress, print_json, reports_errors
from qala.core.errors import ValidationError
from qala.core.yamltext import load_yaml

if TYPE_CHECKING:
    import pandas as pd

    from qala.engines.index import Framework, IndexResult, IndexSpec

app = typer.Typer(
    help="Composite indices (OECD/JRC method, COINr-compatible): build, results, audit, "
    "uncertainty, compare — on plain files (--data, --meta) or on the stored values.",
    no_args_is_help=True,
)

SpecArg = typer.Argument(..., exists=True, dir_okay=False, help="Index spec (YAML or JSON).")
DataOpt = typer.Option(
    None,
    "--data",
    exists=True,
    dir_okay=False,
    help="Data table (CSV or XLSX): one row per unit. Without --data and --meta the spec's "
    "`store:` block is used: the catalogue framework and the stored values (store mode).",
)
MetaOpt = typer.Option(
    None,
    "--meta",
    exists=True,
    dir_okay=False,
    help="Structure: COINr-style meta CSV (Level, iCode, iName, Direction, Weight, Unit, Target, "
    "Denominator, Parent, Type) or a YAML/JSON tree {code, weight, direction, children}.",
)
YearOpt = typer.Option(None, "--year", help="Store mode: the year (default: the latest usable).")


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        if path.suffix.lower() in (".xlsx", ".xls"):
            return pd.read_excel(path)
        return pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ValidationError.single(f"cannot read table: {exc}", file=str(path)) from exc


def _read_framework(path: Path) -> Framework:

    from qala.engines.index import framework_from_meta, framework_from_tree

    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        tree = load_yaml(path.read_text(encoding="utf-8"))
        if isinstance(tree, dict) and "tree" in tree:
            tree = tree["tree"]
        return framework_from_tree(tree)
    return framework_from_meta(_read_table(path), source=str(path))


def _load(
    spec_path: Path, data: Path | None, meta: Path | None, *, year: int | None = None
) -> tuple[str, IndexSpec, pd.DataFrame, Framework]:
    """The spec's text and method, the data and the structure: from --data and --meta (file
    mode), or from the store as the spec's `store:` block says (store mode, neither given)."""
    from qala.engines.index import IndexSpec

    if data is None and meta is None:
        from qala.cli.common import open_context
        from qala.components.rating import services as rating

        spec_file = rating.read_spec_file(spec_path)
        context = open_context()
        try:
            with context.database.session() as session:
                table = rating.store_table(session, spec_file.store, year=year)
        finally:
            context.database.dispose()
        return spec_file.text, spec_file.spec, table.data, table.framework
    if data is None or meta is None:
        raise ValidationError.single(
            "give both --data and --meta (file mode) or neither (store mode)",
            column="--data" if data is None else "--meta",
        )
    text = spec_path.read_text(encoding="utf-8")
    return text, IndexSpec.from_text(text), _read_table(data), _read_framework(meta)


def _method_of(spec_path: Path, *, store_mode: bool) -> IndexSpec:
    from qala.engines.index import IndexSpec

    if store_mode:
        from qala.components.rating import services as rating

        return rating.read_spec_file(spec_path).spec
    return IndexSpec.from_text(spec_path.read_text(encoding="utf-8"))


def _write(out: Path, frame: pd.DataFrame | None, payload: dict[str, Any]) -> None:
    if out.suffix.lower() == ".json" or frame is None:
        out.write_text(
            json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
    else:
        frame.to_csv(out)
    console.print(f"wrote {out}", highlight=False)


def _results_table(
    result: IndexResult, levels: list[int] | None, use: str, top: int | None
) -> Table:
    import pandas as pd

    frame = result.table(use=use, levels=levels)
    if top:
        frame = frame.head(top)
    table = Table(title=f"{result.spec.name}: {use}", show_lines=False)
    table.add_column("unit")
    for c in frame.columns:
        table.add_column(str(c), justify="right")
    for unit, row in frame.iterrows():
        cells = [
            "" if pd.isna(v) else (f"{int(v)}" if use == "ranks" or c == "Rank" else f"{v:.2f}")
            for c, v in row.items()
        ]
        table.add_row(str(unit), *cells)
    return table


@app.command("build")
@reports_errors
def build_cmd(
    spec: Path | None = typer.Argument(
        None,
        exists=True,
        dir_okay=False,
        help="Index spec (YAML or JSON). Store mode without it: the national rating's spec.",
    ),
    data: Path | None = DataOpt,
    meta: Path | None = MetaOpt,
    as_json: bool = typer.Option(False, "--json", help="Print {scores, ranks} JSON."),
    decimals: int | None = typer.Option(None, help="Round scores in JSON output."),
    out: Path | None = typer.Option(None, "--out", help="Write scores CSV, or JSON with the spec."),
    top: int = typer.Option(20, help="Rows to show in the table."),
    year: int | None = YearOpt,
    replications: int | None = typer.Option(
        None, "-n", "--replications", help="Store mode: Monte Carlo runs for rank intervals."
    ),
    save: bool = typer.Option(True, "--save/--no-save", help="Store mode: store the result."),
    release: int | None = typer.Option(
        None, help="Store mode: read this published release's values only (the run names it)."
    ),
) -> None:
    """Build the index and print scores and ranks at every level.

    With --data and --meta the index is built from plain files. Without both, from the store:
    the rating (see `qala rating build`) with each place's Monte Carlo rank interval.
    """
    from qala.engines.index import build_index

    if data is None and meta is None:
        from qala.cli.rating import build_from_store

        outcome = build_from_store(
            spec,
            year=year,
            replications=replications,
            save=save,
            as_json=as_json,
            decimals=decimals,
            top=top,
            release=release,
        )
        if out is not None:
            _write(out, outcome.ranking(), outcome.to_json_dict(decimals=decimals))
        return
    if spec is None:
        raise ValidationError.single("file mode needs a SPEC file", column="SPEC")
    _, index_spec, frame, framework = _load(spec, data, meta)
    result = build_index(index_spec, frame, framework)
    payload = result.to_json_dict(decimals=decimals)
    if out is not None:
        _write(out, result.scores, {**payload, "spec": index_spec.to_dict()})
    if as_json:
        print_json(
            {
                "scores": payload["scores"],
                "ranks": payload["ranks"],
                **{k: v for k, v in payload.items() if k not in ("scores", "ranks")},
            }
        )
        return
    # the two highest levels fit a terminal; `qala index results` shows every level
    levels = sorted(result.framework.levels)[-2:]
    console.print(_results_table(result, levels, "scores", top))
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")


@app.command("results")
@reports_errors
def results_cmd(
    spec: Path = SpecArg,
    data: Path | None = DataOpt,
    meta: Path | None = MetaOpt,
    use: str = typer.Option("scores", help="scores or ranks"),
    level: list[int] = typer.Option(
        [], "--level", help="Levels to show (repeatable); default all aggregates."
    ),
    unit: str | None = typer.Option(
        None, help="Show one unit's summary, strengths and weaknesses."
    ),
    as_json: bool = typer.Option(False, "--json"),
    out: Path | None = typer.Option(None, "--out", help="CSV or JSON file."),
    year: int | None = YearOpt,
) -> None:
    """Results table (sorted by the index), or one unit's profile with --unit."""
    from qala.engines.index import build_index

    _, index_spec, frame, framework = _load(spec, data, meta, year=year)
    result = build_index(index_spec, frame, framework)
    levels = list(level) or [lv for lv in result.framework.levels if lv > 1]
    if unit is not None:
        summary = result.unit_summary(unit)
        sw = result.strengths_weaknesses(unit)
        payload: dict[str, Any] = {
            "unit": unit,
            "summary": summary.to_dict("records"),
            "strengths": sw["strengths"].to_dict("records"),
            "weaknesses": sw["weaknesses"].to_dict("records"),
        }
        if out is not None:
            _write(out, summary.set_index("code"), payload)
        if as_json:
            print_json(payload)
            return
        console.print(summary.to_string(index=False))
        console.print("[bold]strengths[/]\n" + sw["strengths"].to_string(index=False))
        console.print("[bold]weaknesses[/]\n" + sw["weaknesses"].to_string(index=False))
        return
    table = result.table(use=use, levels=levels)
    if out is not None:
        _write(out, table, {"spec": index_spec.to_dict(), **result.to_json_dict(levels=levels)})
    if as_json:
        print_json(json.loads(table.to_json(orient="index")))
        return
    console.print(_results_table(result, levels, use, None))


@app.command("audit")
@reports_errors
def audit_cmd(
    spec: Path = SpecArg,
    data: Path | None = DataOpt,
    meta: Path | None = MetaOpt,
    as_json: bool = typer.Option(False, "--json"),
    out: Path | None = typer.Option(
        None, "--out", help="JSON file, or CSV of the indicator influence table."
    ),
    year: int | None = YearOpt,
) -> None:
    """Statistical audit: correlations, Cronbach's alpha, PCA per aggregate, silent indicators."""
    from qala.engines.index import audit, build_index

    _, index_spec, frame, framework = _load(spec, data, meta, year=year)
    result = build_index(index_spec, frame, framework)
    report = audit(result)
    payload = {
        "spec": index_spec.to_dict(),
        "screening": _screening(result),
        **report.to_json_dict(),
    }
    if out is not None:
        _write(out, report.influence, payload)
    if as_json:
        print_json(payload)
        return
    console.print("[bold]Consistency per aggregate[/]")
    console.print(report.consistency.round(3).to_string())
    console.print("[bold]Indicator influence on the index (smallest first)[/]")
    console.print(report.influence.round(3).head(15).to_string())
    if not report.flagged_pairs.empty:
        console.print("[bold]Flagged pairs[/]")
        console.print(report.flagged_pairs.round(3).to_string(index=False))


def _screening(result: IndexResult) -> dict[str, Any]:
    s = result.screening
    if not s:
        return {}
    return {
        "dropped_units": s.get("dropped_units", []),
        "dropped_indicators": s.get("dropped_indicators", []),
        "zero_variance": s.get("zero_variance", []),
        "low_variance": s.get("low_variance", []),
        "duplicate_indicators": s.get("duplicate_indicators", []),
        "collinear_pairs": s.get("collinear_pairs", []),
        "units_below_full_coverage": {
            str(k): float(v) for k, v in s["unit_coverage"].items() if v < 1
        },
    }


@app.command("uncertainty")
@reports_errors
def uncertainty_cmd(
    spec: Path = SpecArg,
    data: Path | None = DataOpt,
    meta: Path | None = MetaOpt,
    n: int | None = typer.Option(
        None,
        "-n",
        "--replications",
        help="Replications (MC) or base N (Sobol); default from the spec or 1000.",
    ),
    method: str = typer.Option(
        "mc", help="mc (uncertainty) or sobol (sensitivity indices, N·(d+2) runs)."
    ),
    seed: int | None = typer.Option(None, help="Random seed (default from the spec or 0)."),
    target: str | None = typer.Option(None, help="Code whose ranks to study (default: the index)."),
    as_json: bool = typer.Option(False, "--json"),
    out: Path | None = typer.Option(None, "--out", help="CSV of rank statistics, or JSON."),
    plot: Path | None = typer.Option(
        None, "--plot", help="PNG: rank intervals (MC) or Sobol bars (sobol)."
    ),
    year: int | None = YearOpt,
) -> None:
    """Monte Carlo over the spec's `uncertainty.assumptions`: median rank and 5–95% interval per unit."""
    from qala.engines.index import assumptions_from_config, run_uncertainty, uncertainty_section

    text, index_spec, frame, framework = _load(spec, data, meta, year=year)
    block = uncertainty_section(text)
    if not block:
        raise ValidationError.single(
            "the spec has no `uncertainty:` block with `assumptions`",
            file=str(spec),
            column="uncertainty",
        )
    assumptions = assumptions_from_config(block)
    n_rep = int(n or block.get("replications", 1000))
    seed_v = seed if seed is not None else int(block.get("seed", 0))
    with counted_progress(f"{method} replications", hidden=as_json) as tick:
        result = run_uncertainty(
            index_spec,
            frame,
            framework,
            assumptions,
            n=n_rep,
            method=method,
            seed=seed_v,
            target=target,
            progress=tick,
        )
    payload = {"spec": index_spec.to_dict(), **result.to_json_dict()}
    if out is not None:
        _write(out, result.rank_stats, payload)
    if plot is not None:
        from qala.engines.index.plots import rank_interval_figure, sobol_figure

        fig = sobol_figure(result) if method == "sobol" else rank_interval_figure(result)
        fig.savefig(plot, dpi=130)
        console.print(f"wrote {plot}", highlight=False)
    if as_json:
        print_json(result.to_json_dict())
        return
    stats = result.rank_stats.sort_values("nominal")
    table = Table(title=f"{result.target}: ranks over {result.runs} runs ({result.seconds:.2f} s)")
    for col in ("unit", "nominal", "median", "5%", "95%"):
        table.add_column(col, justify="right")
    for unit, row in stats.iterrows():
        table.add_row(
            str(unit),
            f"{row['nominal']:.0f}",
            f"{row['median']:.1f}",
            f"{row['q05']:.1f}",
            f"{row['q95']:.1f}",
        )
    console.print(table)
    if result.sensitivity is not None:
        console.print(result.sensitivity.round(3).to_string())
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")


@app.command("compare")
@reports_errors
def compare_cmd(
    spec_a: Path = SpecArg,
    spec_b: Path = typer.Argument(..., exists=True, dir_okay=False, help="Second spec."),
    data: Path | None = DataOpt,
    meta: Path | None = MetaOpt,
    code: str | None = typer.Option(None, help="Code to compare (default: the index)."),
    as_json: bool = typer.Option(False, "--json"),
    out: Path | None = typer.Option(None, "--out"),
    year: int | None = YearOpt,
) -> None:
    """Rank shifts between two variants of the method, largest first."""
    from qala.engines.index import build_index, compare

    _, a, frame, framework = _load(spec_a, data, meta, year=year)
    b = _method_of(spec_b, store_mode=data is None and meta is None)
    ra, rb = build_index(a, frame, framework), build_index(b, frame, framework)
    table = compare(ra, rb, code)
    if out is not None:
        _write(
            out,
            table,
            {
                "a": a.to_dict(),
                "b": b.to_dict(),
                "ranks": json.loads(table.to_json(orient="index")),
            },
        )
    if as_json:
        print_json(json.loads(table.to_json(orient="index")))
        return
    console.print(table.to_string())


@app.command("spec")
@reports_errors
def spec_cmd(
    spec: Path = SpecArg,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Check a spec and print it in full (every field, defaults included): the method on record."""
    from qala.engines.index import IndexSpec

    index_spec = IndexSpec.from_text(spec.read_text(encoding="utf-8"))
    if as_json:
        print_json(index_spec.to_dict())
        return
    console.print(index_spec.to_yaml(), markup=False, highlight=False)


# -- analysis views and the workbook ------------------------------------------------------------
SourceArg = typer.Argument(
    ...,
    help="A stored rating run id (see `qala rating runs`; built again from its spec on the "
    "stored values) or an index spec file (with --data/--meta for file mode).",
)
PLOTS = ("sunburst", "distribution", "correlation", "bump")


def _built(
    source: str,
    data: Path | None,
    meta: Path | None,
    *,
    year: int | None = None,
    replications: int | None = 0,
) -> tuple[str, IndexResult, Any, str]:
    """(label, result, uncertainty or None, spec text) of a run id or a spec file."""
    from qala.engines.index import build_index

    if source.isdigit() and data is None and meta is None:
        from qala.cli.common import open_context
        from qala.components.rating import services as rating

        context = open_context()
        try:
            outcome = rating.rebuild_run(context.database, int(source), replications=replications)
        finally:
            context.database.dispose()
        label = f"run {source} ({outcome.year})"
        return label, outcome.result, outcome.uncertainty, outcome.spec_file.text
    path = Path(source)
    if not path.is_file():
        raise ValidationError.single(
            "expected a stored run id or a spec file that exists", column="SOURCE", value=source
        )
    text, spec, frame, framework = _load(path, data, meta, year=year)
    result = build_index(spec, frame, framework)
    uncertainty = None
    if replications:
        from qala.engines.index import assumptions_from_config, run_uncertainty, uncertainty_section

        block = uncertainty_section(text)
        if block:
            uncertainty = run_uncertainty(
                spec,
                frame,
                framework,
                assumptions_from_config(block),
                n=replications,
                seed=int(block.get("seed", 0) or 0),
            )
    return path.stem + (f" {year}" if year else ""), result, uncertainty, text


def _figure(
    kind: str,
    result: IndexResult,
    *,
    label: str,
    indicator: str | None,
    level: int,
    other: int | None,
    parent: str | None,
    compare_with: tuple[str, IndexResult] | None,
) -> Any:
    from qala.engines.index import plots, views

    if kind == "sunburst":
        return plots.sunburst_figure(result.framework)
    if kind == "distribution":
        code = indicator or result.framework.indicators[0]
        return plots.distribution_figure(views.indicator_distribution(result, code))
    if kind == "correlation":
        corr = views.correlations(result, level, other, parent=parent)
        return plots.correlation_figure(
            corr, title=f"{result.spec.name}: levels {level}×{other or level}"
        )
    if compare_with is None:
        raise ValidationError.single(
            "a bump chart needs --compare (a run id or spec)", column="--compare"
        )
    other_label, other_result = compare_with
    table = views.bump_table(
        {other_label: other_result.ranks[other_result.root], label: result.ranks[result.root]}
    )
    return plots.bump_figure(table, title=f"{result.spec.name}: rank changes")


@app.command("plot")
@reports_errors
def plot_cmd(
    kind: str = typer.Argument(..., help="sunburst, distribution, correlation or bump."),
    source: str = SourceArg,
    out: Path = typer.Option(..., "--out", help="Image to write: .png or .svg."),
    data: Path | None = DataOpt,
    meta: Path | None = MetaOpt,
    year: int | None = YearOpt,
    indicator: str | None = typer.Option(
        None, help="distribution: the indicator (default: first)."
    ),
    level: int = typer.Option(1, help="correlation: level of the rows (1 = indicators)."),
    other: int | None = typer.Option(
        None, help="correlation: level of the columns (default: same)."
    ),
    parent: str | None = typer.Option(None, help="correlation: only rows under this aggregate."),
    compare: str | None = typer.Option(None, help="bump: the other run id or spec (same data)."),
    compare_year: int | None = typer.Option(None, help="bump: the same spec in another year."),
) -> None:
    """Draw one of COINr's analysis views of a built index as PNG or SVG."""
    if kind not in PLOTS:
        raise ValidationError.single(
            f"unknown plot `{kind}`; expected {', '.join(PLOTS)}", column="KIND", value=kind
        )
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValidationError.single(
            "--out must end in .png or .svg", column="--out", value=str(out)
        )
    label, result, _, _ = _built(source, data, meta, year=year)
    compare_with = None
    if kind == "bump" and (compare or compare_year):
        other_label, other_result, _, _ = _built(
            compare or source, data, meta, year=compare_year or year
        )
        if other_label == label:
            other_label += " (compared)"
        compare_with = (other_label, other_result)
    figure = _figure(
        kind,
        result,
        label=label,
        indicator=indicator,
        level=level,
        other=other,
        parent=parent,
        compare_with=compare_with,
    )
    figure.savefig(out, dpi=130)
    console.print(f"wrote {out}", highlight=False)


@app.command("export-workbook")
@reports_errors
def export_workbook_cmd(
    source: str = SourceArg,
    out: Path = typer.Option(..., "--out", help="Workbook to write (.xlsx)."),
    data: Path | None = DataOpt,
    meta: Path | None = MetaOpt,
    year: int | None = YearOpt,
    replications: int | None = typer.Option(
        None,
        "-n",
        "--replications",
        help="Monte Carlo runs for the uncertainty sheets (default: a run's own; a spec file: 0).",
    ),
) -> None:
    """Every step's data set, the spec, weights, audit and uncertainty in one .xlsx workbook."""
    from qala.engines.index import audit
    from qala.engines.index.workbook import workbook_bytes

    if out.suffix.lower() != ".xlsx":
        raise ValidationError.single("--out must end in .xlsx", column="--out", value=str(out))
    reps = replications if replications is not None else (None if source.isdigit() else 0)
    _, result, uncertainty, text = _built(source, data, meta, year=year, replications=reps)
    out.write_bytes(
        workbook_bytes(
            result,
            spec_text=text,
            audit_report=audit(result),
            uncertainty=uncertainty,
            units=result.units,
        )
    )
    console.print(f"wrote {out}", highlight=False)
