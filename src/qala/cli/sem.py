"""`qala sem`: fit PLS-SEM models from a model file and a CSV of survey answers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from qala.cli.common import counted_progress
from qala.core.errors import QalaError

if TYPE_CHECKING:
    import pandas as pd

    from qala.engines.plssem.estimation import ColumnData

app = typer.Typer(
    help="PLS-SEM (partial least squares structural equation modelling).",
    no_args_is_help=True,
)

ModelFile = Annotated[Path, typer.Argument(help="Model file in lavaan-like syntax (=~, <~, ~).")]
DataFile = Annotated[Path, typer.Argument(help="CSV with one column per indicator.")]
SchemeOpt = Annotated[
    str, typer.Option("--scheme", help="Inner weighting: path, factor, centroid.")
]
ConsistentOpt = Annotated[bool, typer.Option("--consistent", help="Consistent PLS (PLSc).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
MissingOpt = Annotated[
    str, typer.Option("--missing", help="Missing values: error, mean (replace), drop (rows).")
]


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": message}))
    else:
        Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


Outcome = TypeVar("Outcome")


def _fit_then(
    text: str, data: Any, as_json: bool, step: Callable[[Any], Outcome], **options: Any
) -> Outcome:
    """``step`` of the model fitted on ``data``; a refusal of either is printed and ends the
    command (exit 2)."""
    from qala.engines.plssem import PLSSEM

    try:
        return step(PLSSEM(text, **options).fit(data))
    except QalaError as exc:
        _fail(str(exc), as_json)
        raise  # _fail has ended the command


def _read_inputs(model_file: Path, data_file: Path, as_json: bool) -> tuple[str, pd.DataFrame]:
    import pandas as pd

    try:
        text = model_file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read model file {model_file}: {exc.strerror}", as_json)
    try:
        data = pd.read_csv(data_file)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read data file {data_file}: {exc}", as_json)
    return text, data


def _read_columns(model_file: Path, data_file: Path, as_json: bool) -> tuple[str, ColumnData]:
    """The model text and the CSV as plain columns (name → cells), read without pandas: its
    import alone took a quarter of `sem fit`'s time. The engine reads cells as pandas would."""
    import csv

    try:
        text = model_file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read model file {model_file}: {exc.strerror}", as_json)
    try:
        with data_file.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        _fail(f"cannot read data file {data_file}: {exc}", as_json)
    if not rows:
        _fail(f"cannot read data file {data_file}: the file is empty", as_json)
    header, body = rows[0], [row for row in rows[1:] if row]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            _fail(
                f"cannot read data file {data_file}: row {line} has {len(row)} fields, "
                f"the header {len(header)}",
                as_json,
            )
    return text, {name: [row[j] for row in body] for j, name in enumerate(header)}


def _print_tables(console: Console, result: Any, boot: Any) -> None:
    table = Table(title="Path coefficients")
    table.add_column("path")
    table.add_column("coef", justify="right")
    if boot is not None:
        for col in ("sd", "t", "p", "95% CI"):
            table.add_column(col, justify="right")
    boot_rows = boot.rows("paths") if boot is not None else {}
    for label, value in result.coefficients.items():
        row = [label, f"{value:.3f}"]
        if boot is not None:
            b = boot_rows[label]
            row += [
                f"{b['sd']:.3f}",
                f"{b['t']:.2f}",
                f"{b['p']:.3f}",
                f"[{b['ci_low']:.3f}, {b['ci_high']:.3f}]",
            ]
        table.add_row(*row)
    console.print(table)
    r2 = Table(title="R²")
    r2.add_column("construct")
    r2.add_column("R²", justify="right")
    r2.add_column("adj. R²", justify="right")
    for c, (value, adjusted) in result.r2_values.items():
        r2.add_row(c, f"{value:.3f}", f"{adjusted:.3f}")
    console.print(r2)
    rel = Table(title="Reliability")
    rel.add_column("construct")
    for col in ("alpha", "rho_a", "rho_c", "ave"):
        rel.add_column(col, justify="right")
    for c, values in result.reliability_values.items():
        rel.add_row(c, *(f"{values[m]:.3f}" for m in ("alpha", "rho_a", "rho_c", "ave")))
    console.print(rel)
    console.print(f"iterations: {result.iterations}, observations: {result.n_obs}")


@app.command("fit")
def fit_command(
    model_file: ModelFile,
    data_file: DataFile,
    scheme: SchemeOpt = "path",
    consistent: ConsistentOpt = False,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Number of bootstrap resamples (0 = none).")
    ] = 0,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the resampling.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Processes for the bootstrap.")] = 1,
    as_json: JsonOpt = False,
    diagram: Annotated[
        Path | None, typer.Option("--diagram", help="Write a path diagram PNG here.")
    ] = None,
    report: Annotated[bool, typer.Option("--report", help="Print the full text report.")] = False,
    missing: MissingOpt = "error",
    max_iter: Annotated[
        int, typer.Option("--max-iter", help="Most outer-weight updates before giving up.")
    ] = 300,
    tol: Annotated[
        float, typer.Option("--tol", help="Stop when the summed weight change is below this.")
    ] = 1e-7,
    fit_test: Annotated[
        int | None,
        typer.Option(
            "--fit-test",
            help="Bollen–Stine resamples of the exact-fit test of SRMR, d_ULS and d_G "
            "(0 = none; default 499 with --json or --report, none for the tables).",
        ),
    ] = None,
) -> None:
    """Estimate MODEL_FILE on DATA.csv; optionally bootstrap, draw and report."""
    from qala.engines.plssem import PLSSEM

    text, data = _read_columns(model_file, data_file, as_json)
    out_console = Console()
    try:
        result = PLSSEM(
            text,
            scheme=scheme,
            consistent=consistent,
            missing=missing,  # type: ignore[arg-type]
            max_iter=max_iter,
            tol=tol,
        ).fit(data)
        boot = (
            _bootstrap(result, bootstrap, seed=seed, jobs=jobs, as_json=as_json, out=out_console)
            if bootstrap
            else None
        )
        resamples = fit_test if fit_test is not None else (499 if as_json or report else 0)
        fit = _model_fit(result, resamples, seed)
    except QalaError as exc:
        _fail(str(exc), as_json)
        return
    if diagram is not None:
        from qala.engines.plssem.diagram import path_diagram_png

        diagram.write_bytes(path_diagram_png(result, boot))
    if as_json:
        payload = _fit_payload(result, boot)
        payload.update(fit.to_dict() if not isinstance(fit, str) else _no_fit_measures(fit))
        print(json.dumps(payload, indent=2, allow_nan=False))
        return
    if report:
        out_console.print(result.summary(), highlight=False, markup=False)
        if not isinstance(fit, str):
            out_console.print("")
            out_console.print(fit.summary(), highlight=False, markup=False)
        if boot is not None:
            out_console.print("")
            out_console.print(boot.summary(), highlight=False, markup=False)
    else:
        _print_tables(out_console, result, boot)
        if not isinstance(fit, str):
            out_console.print(fit.summary(), highlight=False, markup=False)
    if diagram is not None:
        out_console.print(f"diagram written to {diagram}")


def _bootstrap(
    result: Any, resamples: int, *, seed: int | None, jobs: int, as_json: bool, out: Console
) -> Any:
    """Bootstrap a fitted model, with a progress bar (on standard error under --json, drawn
    only on a terminal there)."""
    from qala.engines.plssem.bootstrap import bootstrap as run_bootstrap

    show = sys.stderr.isatty() or not as_json
    with counted_progress(
        "bootstrap",
        on=Console(stderr=True) if as_json else out,
        hidden=not show,
        total=resamples,
    ) as tick:
        return run_bootstrap(
            result,
            resamples,
            seed=seed,
            n_jobs=jobs,
            batch_size=max(250, resamples // 10),
            progress=tick,
        )


def _model_fit(result: Any, resamples: int, seed: int | None) -> Any:
    """SRMR, d_ULS and d_G (with the exact-fit test when ``resamples`` > 0), or the reason
    they are not available for this model (higher-order constructs, interaction terms)."""
    if result.plan.first is not None:
        return "model fit measures need a model without higher-order constructs or interactions"
    return result.model_fit(n_boot=resamples, seed=seed)


def _no_fit_measures(reason: str) -> dict[str, Any]:
    return {"srmr": None, "d_g": None, "d_uls": None, "model_fit": {"unavailable": reason}}


def _fit_payload(result: Any, boot: Any) -> dict[str, Any]:
    """The --json document of `sem fit`: the estimates, and the bootstrap's when it ran."""
    payload: dict[str, Any] = result.to_dict()
    if boot is not None:
        boot_dict = boot.to_dict()
        payload["bootstrap"] = boot_dict["paths"]
        payload["bootstrap_info"] = {
            key: boot_dict[key] for key in ("n_boot", "n_failed", "seed", "alpha")
        }
        payload["bootstrap_total_effects"] = boot_dict["total_effects"]
    return payload


@app.command("predict")
def predict_command(
    model_file: ModelFile,
    data_file: DataFile,
    scheme: SchemeOpt = "path",
    consistent: ConsistentOpt = False,
    folds: Annotated[int, typer.Option("--folds", help="Cross-validation folds.")] = 10,
    repeats: Annotated[int, typer.Option("--repeats", help="Repetitions of the k-fold split.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
    missing: MissingOpt = "error",
) -> None:
    """PLSpredict: k-fold Q²_predict, RMSE and MAE against a linear-model benchmark."""
    text, data = _read_inputs(model_file, data_file, as_json)
    pred = _fit_then(
        text,
        data,
        as_json,
        lambda fitted: fitted.predict(folds=folds, repeats=repeats, seed=seed),
        scheme=scheme,
        consistent=consistent,
        missing=missing,
    )
    if as_json:
        print(json.dumps(pred.to_dict(), indent=2))
    else:
        Console().print(pred.table.to_string(float_format="{:.3f}".format), markup=False)


@app.command("cvpat")
def cvpat_command(
    model_file: ModelFile,
    data_file: DataFile,
    scheme: SchemeOpt = "path",
    consistent: ConsistentOpt = False,
    folds: Annotated[int, typer.Option("--folds", help="Cross-validation folds.")] = 10,
    repeats: Annotated[
        int, typer.Option("--repeats", help="Repetitions of the k-fold split.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
    missing: MissingOpt = "error",
) -> None:
    """CVPAT: does the model predict better than the indicator average and a linear model?"""
    text, data = _read_columns(model_file, data_file, as_json)
    out = _fit_then(
        text,
        data,
        as_json,
        lambda fitted: fitted.cvpat(folds=folds, repeats=repeats, seed=seed),
        scheme=scheme,
        consistent=consistent,
        missing=missing,
    )
    if as_json:
        print(json.dumps(out.to_dict(), indent=2))
    else:
        Console().print(out.summary(), markup=False, highlight=False)


@app.command("ipma")
def ipma_command(
    model_file: ModelFile,
    data_file: DataFile,
    target: Annotated[str, typer.Option("--target", help="Target construct.")],
    scale_min: Annotated[float | None, typer.Option("--min", help="Lowest answer.")] = None,
    scale_max: Annotated[float | None, typer.Option("--max", help="Highest answer.")] = None,
    scheme: SchemeOpt = "path",
    as_json: JsonOpt = False,
    missing: MissingOpt = "error",
) -> None:
    """Importance–performance map for a target construct."""
    text, data = _read_inputs(model_file, data_file, as_json)
    scale = None if scale_min is None or scale_max is None else (scale_min, scale_max)
    out = _fit_then(
        text,
        data,
        as_json,
        lambda fitted: fitted.ipma(target, scale=scale),
        scheme=scheme,
        missing=missing,
    )
    if as_json:
        print(json.dumps(out.to_dict(), indent=2))
    else:
        Console().print(out.constructs.to_string(float_format="{:.3f}".format), markup=False)


@app.command("mga")
def mga_command(
    model_file: ModelFile,
    data_file: DataFile,
    group: Annotated[str, typer.Option("--group", help="Column that holds the group of a row.")],
    permutations: Annotated[int, typer.Option("--permutations")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    scheme: SchemeOpt = "path",
    consistent: ConsistentOpt = False,
    as_json: JsonOpt = False,
    missing: MissingOpt = "error",
) -> None:
    """Two-group comparison by permutation, with the MICOM invariance check."""
    from qala.engines.plssem.mga import multigroup

    text, data = _read_inputs(model_file, data_file, as_json)
    if group not in data.columns:
        _fail(f"the data has no column `{group}` to split groups by", as_json)
    try:
        out = multigroup(
            text,
            data,
            group,
            permutations=permutations,
            seed=seed,
            scheme=scheme,
            consistent=consistent,
            missing=missing,  # type: ignore[arg-type]
        )
    except QalaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print(json.dumps(out.to_dict(), indent=2))
    else:
        Console().print(out.summary(), markup=False, highlight=False)
