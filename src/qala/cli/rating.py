"""`qala rating …`: the national Smart City rating built from the store, with rank intervals."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from qala.cli.common import console, counted_progress, open_context, print_json, reports_errors

if TYPE_CHECKING:
    from qala.components.rating import services

app = typer.Typer(
    help="The national Smart City rating from the stored indicator values (with rank intervals).",
    no_args_is_help=True,
)

KindOpt = typer.Option(None, "--kind", help="city or single_industry (towns on that year's list).")
RegionOpt = typer.Option(None, "--region", help="Region code, e.g. karaganda-region.")


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"{low:.0f}–{high:.0f}"


def print_outcome(outcome: services.RatingOutcome, *, top: int | None = None) -> None:
    """A Rich table of a freshly built rating: rank, interval, score, kind, region."""
    ranking = outcome.ranking()
    if top:
        ranking = ranking.head(top)
    title = f"{outcome.spec_file.name} {outcome.year}: {len(outcome.result.scores)} places"
    if outcome.uncertainty is not None:
        title += f", rank intervals from {outcome.uncertainty.runs} Monte Carlo runs"
    if outcome.release is not None:
        title += f", on published release {outcome.release}"
    if outcome.preview is not None:
        title = f"PREVIEW (unpublished values of data call {outcome.preview}): {title}"
    table = Table(title=title)
    for col in ("rank", "5–95% rank", "place", "score", "kind", "region"):
        table.add_column(col, justify="right" if col in ("rank", "score") else "left")
    for code, row in ranking.iterrows():
        table.add_row(
            f"{row['rank']:.0f}",
            _interval(row["rank_q05"], row["rank_q95"])
            if row["rank_q05"] == row["rank_q05"]
            else "",
            f"{row['name']} ({code})",
            f"{row['score']:.2f}",
            "single-industry" if row["kind"] == "single_industry" else "city",
            str(row["region"] or ""),
        )
    console.print(table)
    for w in outcome.warnings:
        style = "bold yellow" if w.startswith(("ILLUSTRATIVE", "PREVIEW")) else "yellow"
        console.print(f"[{style}]warning:[/] {w}", highlight=False)
    for code, why in outcome.table.excluded.items():
        console.print(f"[dim]not ranked: {code} — {why}[/]", highlight=False)
    if outcome.run_id is not None:
        console.print(f"stored as run {outcome.run_id}", highlight=False)


def build_from_store(
    spec_path: Path | None,
    *,
    year: int | None = None,
    kind: str | None = None,
    region: str | None = None,
    replications: int | None = None,
    seed: int | None = None,
    save: bool = True,
    as_json: bool = False,
    decimals: int | None = None,
    top: int | None = 20,
    release: int | None = None,
    draft_call: int | None = None,
) -> services.RatingOutcome:
    """Shared by `qala rating build` and `qala index build SPEC` without --data/--meta."""
    from qala.components.rating import services

    spec_file = (
        services.national_spec() if spec_path is None else services.read_spec_file(spec_path)
    )
    context = open_context()
    with counted_progress("rank intervals (Monte Carlo)", hidden=as_json) as tick:
        outcome = services.build_rating(
            context.database,
            spec_file,
            year=year,
            kind=kind,
            region=region,
            replications=replications,
            seed=seed,
            save=save,
            progress=tick,
            bus=context.bus,
            release=release,
            draft_call=draft_call,
        )
    if as_json:
        print_json(outcome.to_json_dict(decimals=decimals))
    else:
        print_outcome(outcome, top=top)
    return outcome


@app.command("build")
@reports_errors
def build_cmd(
    spec: Path | None = typer.Argument(
        None, exists=True, dir_okay=False, help="Spec file (default: the national rating's)."
    ),
    year: int | None = typer.Option(None, help="Year to rank (default: latest with data)."),
    kind: str | None = KindOpt,
    region: str | None = RegionOpt,
    replications: int | None = typer.Option(
        None, "-n", "--replications", help="Monte Carlo runs (default from the spec; 0 = none)."
    ),
    seed: int | None = typer.Option(None, help="Random seed (default from the spec)."),
    save: bool = typer.Option(True, "--save/--no-save", help="Store the result."),
    as_json: bool = typer.Option(False, "--json"),
    top: int = typer.Option(20, help="Rows to show."),
    release: int | None = typer.Option(
        None, help="Read this published release's values only (the run names it)."
    ),
    draft_call: int | None = typer.Option(
        None, help="Preview a data call's unpublished values (labelled PREVIEW, never stored)."
    ),
) -> None:
    """Build the rating from the stored values (or a published release), with each place's
    5–95% rank interval."""
    build_from_store(
        spec,
        release=release,
        draft_call=draft_call,
        year=year,
        kind=kind,
        region=region,
        replications=replications,
        seed=seed,
        save=save,
        as_json=as_json,
        top=top,
    )


def _entries_table(title: str, entries: list[services.EntryView], *, filtered: bool) -> Table:
    table = Table(title=title)
    columns = ["rank", *(["in selection"] if filtered else []), "5–95% rank", "place", "score"]
    for col in (*columns, "kind", "region"):
        table.add_column(col)
    for e in entries:
        cells = [
            "" if e.rank is None else str(e.rank),
            *([str(e.rank_in_selection)] if filtered else []),
            _interval(e.rank_q05, e.rank_q95),
            f"{e.name['en']} ({e.place})",
            "" if e.score is None else f"{e.score:.2f}",
            "single-industry" if e.single_industry else "city",
            e.region or "",
        ]
        table.add_row(*cells)
    return table


@app.command("show")
@reports_errors
def show_cmd(
    run_id: int | None = typer.Argument(None, help="Run id (default: the newest national run)."),
    year: int | None = typer.Option(None, help="Newest national run of this year."),
    kind: str | None = KindOpt,
    region: str | None = RegionOpt,
    as_json: bool = typer.Option(False, "--json"),
    top: int | None = typer.Option(None, help="Rows to show."),
) -> None:
    """A stored rating, filtered by kind and region (ranks stay national; `in selection` is the
    rank among the shown places)."""
    from qala.components.rating import services

    context = open_context()
    with context.database.session() as session:
        run = (
            services.get_run(session, run_id)
            if run_id is not None
            else services.latest_run(session, year=year)
        )
        entries = services.run_entries(session, run, kind=kind, region=region)
        summary = services.RunSummary.of(run, session)
    if top:
        entries = entries[:top]
    if as_json:
        print_json({**asdict(summary), "entries": [asdict(e) for e in entries]})
        return
    title = f"run {summary.id}: {summary.name} {summary.year} ({summary.places} places)"
    console.print(_entries_table(title, entries, filtered=bool(kind or region)))
    if summary.illustrative:
        console.print(
            f"[bold yellow]ILLUSTRATIVE:[/] {summary.illustrative_share:.0%} of the input values "
            "are generated sample data; so is this rating.",
            highlight=False,
        )


@app.command("runs")
@reports_errors
def runs_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """Stored ratings, newest first."""
    from qala.components.rating import services

    context = open_context()
    with context.database.session() as session:
        rows = services.list_runs(session)
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    table = Table(title="stored ratings")
    for col in ("id", "name", "year", "kind", "region", "places", "MC runs", "illustrative"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.id),
            r.name,
            str(r.year),
            r.kind or "",
            r.region or "",
            str(r.places),
            str(r.replications),
            "yes" if r.illustrative else "no",
        )
    console.print(table)


@app.command("places")
@reports_errors
def places_cmd(
    codes: list[str] = typer.Argument(..., help="Place codes, e.g. astana temirtau."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Places' score, rank and rank interval in each year's stored national rating."""
    from qala.components.rating import services

    context = open_context()
    payload: dict[str, Any] = {}
    with context.database.session() as session:
        for code in codes:
            payload[code] = services.place_history(session, code)
    if as_json:
        print_json(payload)
        return
    table = Table(title="national rating by year")
    for col in ("place", "year", "rank", "5–95% rank", "of", "score", "illustrative"):
        table.add_column(col)
    for code, history in payload.items():
        for h in history:
            table.add_row(
                code,
                str(h["year"]),
                str(h["rank"]),
                _interval(h["rank_q05"], h["rank_q95"]),
                str(h["places"]),
                f"{h['score']:.2f}",
                "yes" if h["illustrative"] else "no",
            )
    console.print(table)


@app.command("spec")
@reports_errors
def spec_cmd(
    out: Path | None = typer.Option(None, "--out", help="Write the default spec here."),
) -> None:
    """Print (or write) the national rating's spec file, to copy and change."""
    from qala.components.rating import services

    text = services.NATIONAL_SPEC.read_text(encoding="utf-8")
    if out is not None:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}", highlight=False)
        return
    console.print(text, markup=False, highlight=False)


@app.command("regional")
@reports_errors
def regional(
    year: int = typer.Option(2022, help="Year to rank (2022: the first year of today's regions)."),
    replications: int | None = typer.Option(
        None, help="Monte Carlo replications for rank intervals (default: the spec's, 500)."
    ),
    save: bool = typer.Option(True, help="Store the run (the rating page shows the newest)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The regional rating on official statistics (17 regions, 3 cities of republican
    significance) and its comparison with the volunteer ranking of open-data-kazakhstan."""
    from qala.components.rating.regional import build_regional

    context = open_context()
    with counted_progress("Rank intervals", hidden=as_json) as tick:
        outcome, comparison = build_regional(
            context.database, year=year, replications=replications, save=save, progress=tick
        )
    if as_json:
        print_json({**outcome.to_json_dict(), "comparison": comparison.as_dict()})
        return
    print_outcome(outcome)
    table = Table(
        title=(
            f"Against the volunteer ranking (open-data-kazakhstan): Spearman's ρ "
            f"{comparison.spearman:.3f}, Kendall's τ {comparison.kendall:.3f}, "
            f"{comparison.places} places"
        )
    )
    for col in ("place", "ours", "theirs", "difference", "our strongest area", "our weakest area"):
        table.add_column(col)
    for row in comparison.rows:
        table.add_row(
            row["place"],
            str(row["ours"]),
            str(row["theirs"]),
            f"{row['difference']:+d}",
            row.get("strongest_area", "").removeprefix("kz_regional."),
            row.get("weakest_area", "").removeprefix("kz_regional."),
        )
    console.print(table)
