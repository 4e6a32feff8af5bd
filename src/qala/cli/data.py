"""`qala data …`: check, import and export city indicator data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from qala.cli.common import (
    console,
    counted_progress,
    errors,
    open_context,
    print_json,
    reports_errors,
)
from qala.core.errors import Problem

if TYPE_CHECKING:
    from qala.components.catalog.validation import CheckResult

app = typer.Typer(
    help="Check, import and export city indicator values (CSV, Excel, Parquet).",
    no_args_is_help=True,
)


def _problem_table(title: str, problems: list[Problem], limit: int) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("row", "column", "value", "reason"):
        table.add_column(column, overflow="fold")
    for p in problems[:limit]:
        table.add_row(
            "" if p.row is None else str(p.row),
            p.column or "",
            "" if p.value is None else str(p.value),
            p.reason,
        )
    return table


def _print_check(result: CheckResult, limit: int) -> None:
    console.print(
        f"[bold]{result.file}[/]: {result.rows_total} row(s), {len(result.values)} value(s) valid, "
        f"{len(result.rejected_rows)} row(s) with problems, {len(result.warnings)} warning(s)"
    )
    if result.problems:
        console.print(_problem_table("Problems", result.problems, limit))
        if len(result.problems) > limit:
            console.print(f"… {len(result.problems) - limit} more (use --json for all)")
    if result.warnings:
        console.print(_problem_table("Warnings", result.warnings, limit))


@app.command("check")
@reports_errors
def check(
    file: Path = typer.Argument(..., help="CSV, Excel or Parquet file, long or wide layout."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    limit: int = typer.Option(50, help="Problems to show in the table."),
) -> None:
    """Check a file without writing anything; exit status 1 when anything is wrong."""
    from qala.components.catalog.services import check_file

    context = open_context()
    result = check_file(context.database, file)
    if as_json:
        print_json(
            {
                "file": result.file,
                "rows": result.rows_total,
                "accepted": len(result.values),
                "problems": [p.as_dict() for p in result.problems],
                "warnings": [p.as_dict() for p in result.warnings],
            }
        )
    else:
        _print_check(result, limit)
    if result.problems:
        raise typer.Exit(1)


@app.command("import")
@reports_errors
def import_(
    file: Path = typer.Argument(..., help="CSV, Excel or Parquet file, long or wide layout."),
    partial: bool = typer.Option(
        False,
        "--partial",
        help="Import the valid rows even if others are wrong, listing every rejected row.",
    ),
    illustrative: bool = typer.Option(
        False, help="Mark the values as illustrative (not official statistics)."
    ),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(50, help="Problems to show in the table."),
) -> None:
    """Import values in one transaction; with any problem nothing is written unless --partial."""
    from qala.components.catalog.services import import_file

    context = open_context()
    with console.status(f"Checking and importing {file} …"):
        report = import_file(context.database, file, partial=partial, illustrative=illustrative)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_check(report.check, limit)
        if report.written:
            console.print(
                f"[green]Imported {report.rows_written} value(s)[/] as batch {report.batch_id}."
            )
        else:
            errors.print(
                "[red]Nothing was imported.[/] Fix the rows above, or use --partial to import the valid part."
            )
    if not report.written:
        raise typer.Exit(1)


@app.command("export")
@reports_errors
def export(
    file_format: str = typer.Option("csv", "--format", help="csv, xlsx or parquet."),
    out: Path | None = typer.Option(
        None, "--out", help="Output file (CSV goes to standard output without it)."
    ),
    wide: bool = typer.Option(False, help="One row per place-year instead of long format."),
    place: list[str] | None = typer.Option(None, help="Only these places (repeatable)."),
    indicator: list[str] | None = typer.Option(None, help="Only these indicators (repeatable)."),
    year: list[int] | None = typer.Option(None, help="Only these years (repeatable)."),
    framework: str | None = typer.Option(None, help="Only the indicators of this framework."),
) -> None:
    """Export stored values."""
    from qala.components.catalog.services import export_values

    if file_format not in ("csv", "xlsx", "parquet"):
        raise typer.BadParameter("expected csv, xlsx or parquet", param_hint="--format")
    context = open_context()
    data = export_values(
        context.database,
        out,
        file_format=file_format,  # type: ignore[arg-type]
        wide=wide,
        places=place or None,
        indicators=indicator or None,
        years=year or None,
        framework=framework,
    )
    if data is not None:
        sys.stdout.buffer.write(data)
    elif out is not None:
        errors.print(f"Wrote {out}")


@app.command("load-sample")
@reports_errors
def load_sample(
    years: str = typer.Option("2022-2025", help="Years to generate, e.g. 2022-2025."),
    seed: int = typer.Option(37120, help="Random seed (the sample is reproducible)."),
) -> None:
    """Load the bundled ILLUSTRATIVE sample data (generated values, never official statistics)."""
    from qala.components.catalog.sample import load_sample_data

    first, _, last = years.partition("-")
    context = open_context()
    with console.status("Generating and importing the illustrative sample …"):
        report = load_sample_data(
            context.database, years=range(int(first), int(last or first) + 1), seed=seed
        )
    console.print(
        f"[green]Loaded {report.rows_written} illustrative value(s)[/] (batch {report.batch_id})."
    )


@app.command("load-official")
@reports_errors
def load_official_data(
    source: Path | None = typer.Option(
        None,
        "--source",
        help="Shared data folder holding kz/… (e.g. ../shared/data): newer copies of the official "
        "files and the AirData.kz air quality, which Qala never ships. Default: QALA_SHARED_DATA; "
        "without either, the copies bundled with Qala.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    limit: int = typer.Option(20, help="Reported rows to show."),
) -> None:
    """Load the official statistics (BNS, World Bank WGI) and, from --source, AirData.kz air
    quality; print what became of every row of every file."""
    from qala.components.catalog.air import load_air_quality
    from qala.components.catalog.official import load_official

    if source is not None and not source.is_dir():
        raise typer.BadParameter(f"{source} is not a folder", param_hint="--source")
    context = open_context()
    source = source or context.settings.shared_data
    with counted_progress("Official statistics", hidden=as_json) as tick:
        official = load_official(context.database, source, progress=tick)
    with counted_progress("AirData.kz air quality", hidden=as_json) as tick:
        air = load_air_quality(context.database, source, progress=tick)
    if as_json:
        print_json({"official": official.as_dict(), "air_quality": air.as_dict()})
        return
    console.print(_load_table(official.as_dict()["files"] + air.as_dict()["files"]))
    if official.derived:
        derived = ", ".join(f"{key}: {count}" for key, count in official.derived.items())
        console.print(f"Computed from official figures: {derived}")
    for reason, count in official.derived_kept_out.items():
        console.print(f"  not computed ({count}): {reason}")
    if air.folder is None:
        console.print(
            "AirData.kz files not found"
            + (f" under {source}" if source else " (give --source ../shared/data)")
            + ": no air-quality values loaded."
        )
    problems = official.problems + air.problems
    if problems:
        console.print(_problem_table("Rows reported", problems, limit))
    console.print(f"[green]{official.summary()}; {air.summary()}.[/]")


def _load_table(files: list[dict[str, Any]]) -> Table:
    table = Table(title="Rows per file", title_justify="left")
    for column in ("file", "rows read", "rows used", "rows skipped", "stored", "skipped because"):
        table.add_column(column, overflow="fold")
    for entry in files:
        if "population_figures" in entry:  # an official file: one row, one value or figure
            stored = entry["values"] + entry["population_figures"]
            used, what = stored, f"{entry['values']} values, {entry['population_figures']} figures"
        else:  # daily air-quality rows, aggregated into yearly values
            used, what = entry["rows_aggregated"], f"{entry['values']} yearly values"
        reasons = "\n".join(f"{count}: {reason}" for reason, count in entry["kept_out"].items())
        table.add_row(
            Path(entry["file"]).name,
            str(entry["rows_read"]),
            str(used),
            str(sum(entry["kept_out"].values())),
            what,
            reasons,
        )
    return table


@app.command("export-open")
@reports_errors
def export_open(
    release: int = typer.Argument(..., help="Release number (see `qala releases list`)."),
    out: Path = typer.Option(..., "--out", help="Folder for the Data Package and DCAT-AP files."),
) -> None:
    """Export a published release as open data: a Frictionless Data Package (datapackage.json,
    values.csv, changelog.csv) and its DCAT-AP description (dcat.jsonld)."""
    from qala.components.catalog.opendata import export_release

    context = open_context()
    with context.database.session() as session:
        paths = export_release(session, release, out)
    for path in paths:
        errors.print(f"Wrote {path}")
