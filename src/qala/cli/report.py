"""`qala report`: the city report, the national rating report and a PLS-SEM report as HTML or PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qala.cli.common import console, open_context, print_json, reports_errors, translator_for
from qala.core.errors import ValidationError

app = typer.Typer(
    help="Reports with plots and a method annex (HTML, or PDF with --pdf).", no_args_is_help=True
)

PdfOpt = Annotated[bool, typer.Option("--pdf", help="Write PDF instead of HTML.")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Output file (default: in the current folder).")
]
LangOpt = Annotated[str, typer.Option("--lang", help="Language: kk, ru or en.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print {file, bytes, format} as JSON.")]


def _write(report: object, out: Path | None, stem: str, pdf: bool, as_json: bool) -> None:
    from qala.web.reports import Report

    assert isinstance(report, Report)
    target = out or Path(f"{stem}.{'pdf' if pdf else 'html'}")
    with console.status("rendering the report…"):
        payload = report.pdf() if pdf else report.html().encode("utf-8")
    target.write_bytes(payload)
    if as_json:
        print_json({"file": str(target), "bytes": len(payload), "format": "pdf" if pdf else "html"})
    else:
        console.print(f"[green]✓[/] wrote {target} ({len(payload):,} bytes)")


@app.command("city")
@reports_errors
def city(
    code: Annotated[str, typer.Argument(help="Place code or name, e.g. karaganda.")],
    pdf: PdfOpt = False,
    out: OutOpt = None,
    lang: LangOpt = "ru",
    as_json: JsonOpt = False,
) -> None:
    """A city's profile: rank with interval, area scores, trend, values by category, method annex."""
    from qala.web.reports import build_city_report

    t = translator_for(lang)
    context = open_context()
    report = build_city_report(context, code, t)
    _write(report, out, f"qala-city-{code.lower()}", pdf, as_json)


@app.command("rating")
@reports_errors
def rating(
    pdf: PdfOpt = False,
    out: OutOpt = None,
    year: Annotated[int | None, typer.Option("--year", help="Year of the stored rating.")] = None,
    lang: LangOpt = "ru",
    as_json: JsonOpt = False,
) -> None:
    """The stored national rating: ranks with intervals, distribution, full table, method annex."""
    from qala.web.reports import build_rating_report

    t = translator_for(lang)
    context = open_context()
    report = build_rating_report(context, t, year=year)
    _write(report, out, "qala-rating", pdf, as_json)


@app.command("sem")
@reports_errors
def sem(
    model: Annotated[Path, typer.Argument(help="Model file (lavaan-like: =~, <~, ~).")],
    data: Annotated[Path, typer.Argument(help="CSV with one column per item.")],
    pdf: PdfOpt = False,
    out: OutOpt = None,
    boot: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples (0 = none).")] = 0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    lang: LangOpt = "ru",
    as_json: JsonOpt = False,
) -> None:
    """A PLS-SEM report: paths, R², reliability, loadings, method annex."""
    import pandas as pd

    from qala.web.reports import build_sem_report

    t = translator_for(lang)
    try:
        text = model.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError.single(
            f"cannot read the model file: {exc.strerror}", file=str(model)
        ) from None
    try:
        frame = pd.read_csv(data)
    except (OSError, ValueError) as exc:
        raise ValidationError.single(f"cannot read the data file: {exc}", file=str(data)) from None
    report = build_sem_report(
        text, frame, t, title=f"PLS-SEM: {model.stem}", bootstrap=boot, seed=seed
    )
    _write(report, out, f"qala-sem-{model.stem}", pdf, as_json)
