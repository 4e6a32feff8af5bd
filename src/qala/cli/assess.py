"""`qala assess …`: balance, readiness, maturity, roadmap and mentors of a city; stakeholders'
weights; the readiness questionnaire and the case library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from qala.cli.common import console, open_context, print_json, reports_errors
from qala.core.errors import ValidationError
from qala.core.yamltext import load_yaml

if TYPE_CHECKING:
    from qala.components.assessment import readiness as readiness_mod, services


class _CityByDefault(TyperGroup):
    """`qala assess astana` means `qala assess city astana`; sub-command names win."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["city", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_CityByDefault,
    help="Assess a city — `qala assess CITY` (balance, readiness, maturity, roadmap, mentors) — "
    "and stakeholders' weights — `qala assess stakeholders`.",
    no_args_is_help=True,
)

# The assessment's default roadmap budget (million KZT), written here so that the command's help
# does not import the assessment; tests/cli check it equals services.DEFAULT_BUDGET.
DEFAULT_BUDGET = 3000.0


def _f(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _read_sheet(path: Path) -> readiness_mod.AnswerSheet:
    from qala.components.assessment import readiness as readiness_mod

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError.single(f"cannot read answers: {exc}", file=str(path)) from exc
    kind = "csv" if path.suffix.lower() == ".csv" else "yaml"
    return readiness_mod.parse_answers(text, file=str(path), file_format=kind)


def _read_goals(path: Path | None) -> dict[str, float] | None:
    """User goals: CSV ``indicator,target`` or YAML ``{indicator: target}``."""
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        import io

        import pandas as pd

        frame = pd.read_csv(io.StringIO(text))
        if not {"indicator", "target"} <= set(frame.columns):
            raise ValidationError.single(
                "goals CSV needs columns indicator, target", file=str(path), column="indicator"
            )
        pairs: list[tuple[Any, Any]] = list(zip(frame["indicator"], frame["target"], strict=True))
    else:
        raw = load_yaml(text) or {}
        if not isinstance(raw, dict):
            raise ValidationError.single("goals YAML must map indicator → target", file=str(path))
        pairs = list(raw.items())
    goals: dict[str, float] = {}
    for row, (indicator, target) in enumerate(pairs, start=2):
        try:
            goals[str(indicator)] = float(target)
        except (TypeError, ValueError):
            raise ValidationError.single(
                "target must be a number", file=str(path), row=row, column="target", value=target
            ) from None
    return goals


GoalsOpt = typer.Option(
    None,
    "--goals",
    exists=True,
    dir_okay=False,
    help="Your targets: CSV indicator,target or YAML {indicator: target}; they win over norms "
    "and the peer median.",
)


def print_assessment(a: services.PlaceAssessment, *, mentors_per_area: int = 3) -> None:
    name = a.names.get("en", a.place)
    kind = "single-industry town" if a.single_industry else "city"
    people = f"{a.population:,}" if a.population else "population unknown"
    console.rule(f"[bold]{name}[/] ({a.place}) — {a.year}, {kind}, {people}")
    if a.illustrative:
        console.print(
            "[bold yellow]ILLUSTRATIVE:[/] built on generated sample values and/or a sample "
            "questionnaire — not an assessment of the real city.",
            highlight=False,
        )
    _print_balance(a)
    _print_readiness(a.readiness)
    _print_maturity(a)
    _print_roadmap(a)
    _print_mentors(a, mentors_per_area)


def _print_balance(a: services.PlaceAssessment) -> None:
    """Scores per indicator category and area, with the imbalance flags."""
    from qala.components.assessment.balance import FLAG, OVERALL

    table = Table(
        title="Balance by indicator category (0–100 on fixed goalposts; imbalance = I − mean(S, P))"
    )
    for col in (
        "area",
        "infra",
        "service",
        "particip.",
        "outcome",
        "imbalance",
        "trend/yr",
        "flag",
    ):
        table.add_column(col, justify="left" if col in ("area", "flag") else "right")
    for r in a.balance.rows:
        label = "OVERALL" if r.area == OVERALL else a.area_name(r.area)
        table.add_row(
            label,
            _f(r.infrastructure),
            _f(r.service),
            _f(r.participation),
            _f(r.outcome),
            _f(r.imbalance),
            _f(a.balance.trend.get(r.area), 1),
            "[red]⚑[/]" if r.flag else "",
        )
    console.print(table)
    for r in a.balance.flagged:
        label = "overall" if r.area == OVERALL else a.area_name(r.area)
        console.print(f"[red]⚑ {FLAG}[/] — {label}: {r.reason}", highlight=False)


def _print_readiness(rd: readiness_mod.Readiness) -> None:
    """Readiness per cluster and overall."""
    table = Table(title=f"Readiness (Chourabi et al. 2012) — source: {rd.source}")
    for col in ("cluster", "score", "band", "answered", "evidence"):
        table.add_column(col, justify="right" if col in ("score", "answered") else "left")
    for c in rd.clusters:
        table.add_row(
            c.names.get("en", c.code),
            _f(c.score),
            c.band or c.note,
            f"{c.answered}/{c.items}",
            "; ".join(c.evidence)[:80],
        )
    table.add_row("[bold]overall[/]", _f(rd.overall), rd.band or "", "", "")
    console.print(table)


def _print_maturity(a: services.PlaceAssessment) -> None:
    """Maturity level per domain with the next step, and the generation."""
    table = Table(title="Maturity per domain (1 ad hoc … 5 city as a platform)")
    table.add_column("domain")
    table.add_column("level", justify="right")
    table.add_column("why / next step")
    for m in a.maturity:
        nxt = "; ".join(
            f"{c.text} {_f(c.value)} < {c.threshold:.0f}"
            if c.value is not None
            else f"{c.text}: no data"
            for c in m.next_step
        )
        table.add_row(a.area_name(m.domain), f"{m.level} {m.label.split(' —')[0]}", nxt)
    console.print(table)
    console.print(f"[bold]Generation:[/] {a.generation.explanation()}", highlight=False)


def _print_roadmap(a: services.PlaceAssessment) -> None:
    """The roadmap's first five actions."""
    plan = a.roadmap
    table = Table(
        title=f"Roadmap: top five actions under {plan.budget:,.0f} mln KZT "
        f"(greedy by impact per cost; {len(plan.steps)} fit, {plan.spent:,.0f} spent)"
    )
    for col in ("#", "action", "area", "cost", "months", "after", "impact", "gaps closed"):
        table.add_column(
            col, justify="right" if col in ("#", "cost", "months", "impact") else "left"
        )
    for s in plan.steps[:5]:
        table.add_row(
            str(s.position),
            s.name,
            a.area_name(s.area),
            f"{s.cost_class} {s.cost:,.0f}",
            f"{s.start_month}–{s.end_month}",
            ", ".join(s.depends_on),
            f"{s.impact:.3f}",
            ", ".join(s.closes)[:60] or "(prerequisite)",
        )
    console.print(table)
    console.print(
        "[dim]impact = expected index points on the goalpost scale (effective weights × gap "
        "closed); targets: national norm where one exists, else the median of the ten most "
        "similar places[/]"
    )


def _print_mentors(a: services.PlaceAssessment, mentors_per_area: int) -> None:
    """Peers that score higher in the weakest areas."""
    table = Table(
        title=f"Mentors for the weakest areas (peers: {', '.join(p for p, _ in a.mentors.peers)})"
    )
    table.add_column("weak area")
    table.add_column("mentor")
    table.add_column("reason")
    for area, score in a.mentors.weak_areas:
        found = a.mentors.mentors.get(area, [])[:mentors_per_area]
        if not found:
            table.add_row(f"{a.area_name(area)} ({score:.0f})", "—", "no place scores higher")
        for i, mentor in enumerate(found):
            label = f"{a.area_name(area)} ({score:.0f})" if i == 0 else ""
            table.add_row(label, mentor.place, mentor.reason)
    console.print(table)


@app.command("city")
@reports_errors
def city_cmd(
    place: str = typer.Argument(..., help="Place code or name, e.g. astana."),
    year: int | None = typer.Option(None, help="Year (default: latest with data)."),
    answers: Path | None = typer.Option(
        None,
        "--answers",
        exists=True,
        dir_okay=False,
        help="Readiness answers (YAML or CSV); default: stored questionnaire, else catalogue values.",
    ),
    budget: float = typer.Option(DEFAULT_BUDGET, help="Roadmap budget, million KZT."),
    goals: Path | None = GoalsOpt,
    mentors: int = typer.Option(3, help="Mentors per weak area."),
    roadmap_out: Path | None = typer.Option(
        None, "--roadmap-out", help="Write the whole roadmap (CSV, or JSON by extension)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Balance, readiness, maturity per domain, top five roadmap actions, mentors per weak area."""
    from qala.components.assessment import services

    context = open_context()
    sheet = _read_sheet(answers) if answers is not None else None
    result = services.assess_place(
        context.database,
        place,
        year=year,
        sheet=sheet,
        budget=budget,
        goals=_read_goals(goals),
        n_mentors=mentors,
    )
    if roadmap_out is not None:
        text = (
            result.roadmap.to_json() if roadmap_out.suffix == ".json" else result.roadmap.to_csv()
        )
        roadmap_out.write_text(text, encoding="utf-8")
    if as_json:
        print_json(result.as_dict())
        return
    print_assessment(result, mentors_per_area=mentors)
    if roadmap_out is not None:
        console.print(f"wrote {roadmap_out}", highlight=False)


@app.command("gaps")
@reports_errors
def gaps_cmd(
    place: str = typer.Argument(..., help="Place code or name."),
    year: int | None = typer.Option(None),
    goals: Path | None = GoalsOpt,
    top: int = typer.Option(15, help="Largest gaps to show."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Gap analysis: value, target (your goal, national norm or peer median), shortfall."""
    from qala.components.assessment import services

    context = open_context()
    result = services.assess_place(context.database, place, year=year, goals=_read_goals(goals))
    open_gaps = [g for g in result.gaps if g.points > 0]
    if as_json:
        print_json([g.__dict__ for g in open_gaps])
        return
    from qala.components.catalog.frameworks import load_catalogue

    catalogue = load_catalogue()
    table = Table(
        title=f"Largest gaps of {result.names['en']} {result.year} ({len(open_gaps)} open)"
    )
    for col in ("indicator", "value", "target", "from", "shortfall", "gap points"):
        table.add_column(col, justify="left" if col in ("indicator", "from") else "right")
    for g in open_gaps[:top]:
        table.add_row(
            catalogue.indicators[g.indicator].name("en"),
            _f(g.value, 1),
            _f(g.target, 1),
            g.target_source,
            f"{g.shortfall:.3g}",
            f"{g.points:.1f}",
        )
    console.print(table)


@app.command("stakeholders")
@reports_errors
def stakeholders_cmd(
    weights: Path | None = typer.Option(
        None,
        "--weights",
        exists=True,
        dir_okay=False,
        help="CSV group,respondent,area,points (default: the bundled illustrative sample).",
    ),
    year: int | None = typer.Option(None),
    top: int = typer.Option(10, help="Places to show."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The national rating rebuilt with each group's weights: ranks, priorities, disagreement."""
    from qala.components.assessment import services

    context = open_context()
    text = None if weights is None else weights.read_text(encoding="utf-8")
    view = services.stakeholder_view(
        context.database, text, year=year, file=None if weights is None else str(weights)
    )
    if as_json:
        print_json(view.as_dict())
        return
    c = view.comparison
    groups = [g for g in c.weights.columns if g != "nominal"]
    if view.illustrative:
        console.print(
            "[bold yellow]ILLUSTRATIVE:[/] sample weights and/or generated indicator values.",
            highlight=False,
        )

    def area(code: str) -> str:
        return view.area_names.get(code, {}).get("en", code)

    table = Table(title=f"Weights of the areas (% of 100), respondents: {c.respondents}")
    table.add_column("area")
    for g in ("nominal", *groups):
        table.add_column(g, justify="right")
    table.add_column("disagreement", justify="right")
    for code in c.disagreement.index:
        table.add_row(
            area(code),
            *[f"{c.weights.at[code, g]:.1f}" for g in ("nominal", *groups)],
            f"{c.disagreement[code]:.1f}",
        )
    console.print(table)
    for g, areas in c.priorities.items():
        console.print(
            f"[bold]{g}[/] put first: {', '.join(area(a) for a in areas)}", highlight=False
        )
    table = Table(title=f"Ranks {view.year} under each group's weights (top {top} by nominal)")
    table.add_column("place")
    for g in ("nominal", *groups):
        table.add_column(g, justify="right")
    table.add_column("spread", justify="right")
    for place, row in c.ranks.head(top).iterrows():
        table.add_row(
            view.place_names.get(str(place), str(place)),
            *[f"{row[g]:.0f}" for g in ("nominal", *groups)],
            f"{c.rank_spread[place]:.0f}",
        )
    console.print(table)
    moved = c.rank_spread[c.rank_spread > 0].head(5)
    console.print(
        "Largest rank disagreements: "
        + ", ".join(
            f"{view.place_names.get(str(p), p)} ({s:.0f} places)" for p, s in moved.items()
        ),
        highlight=False,
    )
    console.print(
        "Mean rank shift from the nominal weights: "
        + ", ".join(f"{g} {v:.2f}" for g, v in c.mean_shift.items()),
        highlight=False,
    )
    console.print(
        f"Groups disagree most on: {area(c.disagreement.index[0])} "
        f"({c.disagreement.iloc[0]:.1f} points between the highest and lowest weight)",
        highlight=False,
    )


@app.command("questionnaire")
@reports_errors
def questionnaire_cmd(
    lang: str = typer.Option("en", help="kk, ru or en"),
    place: str = typer.Option("CITY"),
    year: int = typer.Option(2025),
    out: Path | None = typer.Option(None, "--out", help="Write the blank YAML answer file here."),
) -> None:
    """Print (or write) a blank readiness answer file in kk/ru/en."""
    from qala.components.assessment import readiness as readiness_mod

    text = readiness_mod.template_yaml(lang, place=place, year=year)
    if out is not None:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}", highlight=False)
        return
    console.print(text, markup=False, highlight=False)


@app.command("readiness")
@reports_errors
def readiness_cmd(
    answers: Path = typer.Argument(..., exists=True, dir_okay=False, help="YAML or CSV answers."),
    place: str | None = typer.Option(None, help="Place (else from the file)."),
    year: int | None = typer.Option(None, help="Year (else from the file)."),
    save: bool = typer.Option(True, "--save/--no-save", help="Store the response and values."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Score a readiness questionnaire and store it (answers become chourabi2012 values)."""
    from qala.components.assessment import readiness as readiness_mod, services

    sheet = _read_sheet(answers)
    result = readiness_mod.score_readiness(sheet)
    response_id = None
    if save:
        context = open_context()
        response_id = services.submit_readiness(context.database, sheet, place=place, year=year)
    if as_json:
        print_json({"id": response_id, **result.as_dict()})
        return
    table = Table(title=f"Readiness from {answers.name}")
    for col in ("cluster", "score", "band", "note"):
        table.add_column(col)
    for c in result.clusters:
        table.add_row(c.names["en"], _f(c.score), c.band or "", c.note)
    table.add_row("overall", _f(result.overall), result.band or "", "")
    console.print(table)
    if response_id is not None:
        console.print(f"stored as response {response_id}", highlight=False)


@app.command("cases")
@reports_errors
def cases_cmd(
    city: str | None = typer.Option(None),
    area: str | None = typer.Option(None, help="Area code, e.g. kz_sc.transport."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The case library: which city did what, when, at what cost, with what effect."""
    from qala.components.assessment.roadmap import load_actions

    rows = load_actions().cases(city=city, area=area)
    if as_json:
        print_json(rows)
        return
    table = Table(title="Smart-city cases (illustrative ones are marked)")
    for col in ("action", "city", "year", "cost mln KZT", "effect"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["action"],
            r["city"] or "national",
            str(r["year"] or ""),
            "" if r["cost_mln_kzt"] is None else f"{r['cost_mln_kzt']:,.0f}",
            ("[yellow]illustrative[/] " if r["illustrative"] else "") + r["effect"],
        )
    console.print(table)
