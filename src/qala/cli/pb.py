"""`qala pb …`: run participatory-budgeting rules on pabulib `.pb` files."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from qala.cli.common import console, print_json, reports_errors
from qala.core.errors import Problem, ValidationError

if TYPE_CHECKING:
    from qala.engines.pb import Election, Outcome

# The engine's rule and completion names, written here so that the help does not import the
# engine (NumPy, SciPy); tests/cli check they equal qala.engines.pb's RULES and COMPLETIONS.
RULES: tuple[str, ...] = ("greedy", "mes", "phragmen", "max-welfare")
COMPLETIONS: tuple[str, ...] = (
    "none",
    "greedy",
    "add1",
    "add1-exhaustive",
    "add1-greedy",
    "add1-exhaustive-greedy",
)

app = typer.Typer(
    help="Participatory budgeting: run voting rules (greedy, Method of Equal Shares, Phragmén, "
    "max welfare) on pabulib .pb files.",
    no_args_is_help=True,
)

FileArg = typer.Argument(..., exists=True, dir_okay=False, help="A pabulib .pb file.")


def _read(path: Path, *, validate: bool) -> Election:
    from qala.engines.pb import parse_pabulib

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError.single(f"cannot read file: {exc}", file=str(path)) from exc
    try:
        return parse_pabulib(text, source=path.name, validate=validate)
    except ValidationError as exc:
        if exc.summary.startswith("ballots break"):
            exc.summary += " (run with --no-validate to count them anyway)"
        raise


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"expected one of {', '.join(allowed)}", param_hint=option)
    return value


def _explanation_table(outcome: Outcome, election: Election) -> Table:
    table = Table(title=f"{escape(outcome.rule)}: why each project was or was not selected")
    table.add_column("project")
    table.add_column("cost", justify="right")
    table.add_column("selected")
    table.add_column("round", justify="right")
    table.add_column("why")
    for pid, explanation in outcome.explanations.items():
        project = election.instance.project(pid)
        table.add_row(
            pid,
            f"{float(project.cost):,.0f}",
            "yes" if explanation.selected else "no",
            "" if explanation.round is None else str(explanation.round),
            escape(explanation.reason),
        )
    return table


@app.command("solve")
@reports_errors
def solve_command(
    file: Path = FileArg,
    rule: str = typer.Option("greedy", "--rule", help=f"One of {', '.join(RULES)}."),
    completion: str = typer.Option(
        "none", "--completion", help=f"MES completion: {', '.join(COMPLETIONS)}."
    ),
    comparison: str = typer.Option(
        "none",
        "--comparison",
        help="MES final comparison with greedy: none, satisfaction, exclusion.",
    ),
    utility: str = typer.Option("cost", "--utility", help="cost or cardinality utilities."),
    scoring: str = typer.Option(
        "pabulib", "--scoring", help="Ordinal ballots: pabulib (L, L-1, …) or borda (pabutools)."
    ),
    tie_breaking: str = typer.Option(
        "lexicographic", "--tie-breaking", help="lexicographic (by project id), min-cost, max-cost."
    ),
    add1_increment: str = typer.Option(
        "1",
        "--add1-increment",
        help="MES Add1: raise of each voter's share per step, in currency units (e.g. 1000 or "
        "1/2); larger steps finish sooner on big budgets with few voters.",
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"selected": [...], "cost": N}.'),
    explain: bool = typer.Option(False, "--explain", help="Explain every project's result."),
    payments: bool = typer.Option(
        False, "--payments", help="With --json --explain: what each voter paid (MES)."
    ),
    no_validate: bool = typer.Option(
        False, "--no-validate", help="Do not reject ballots that break the limits in META."
    ),
) -> None:
    """Run a rule on FILE and print the selected project ids (one per line)."""
    from qala.engines.pb import solve

    _choice(rule, RULES, "--rule")
    _choice(completion, COMPLETIONS, "--completion")
    _choice(comparison, ("none", "satisfaction", "exclusion"), "--comparison")
    _choice(utility, ("cost", "cardinality"), "--utility")
    _choice(scoring, ("pabulib", "borda"), "--scoring")
    increment = _increment(add1_increment)
    election = _read(file, validate=not no_validate)
    started = time.perf_counter()
    with console.status(f"running {rule} on {len(election.profile)} ballots…", spinner="dots"):
        outcome = solve(
            election.instance,
            election.profile,
            rule,
            completion=completion,  # type: ignore[arg-type]
            comparison=comparison,  # type: ignore[arg-type]
            utility=utility,  # type: ignore[arg-type]
            scoring=scoring,  # type: ignore[arg-type]
            tie_breaking=tie_breaking,
            increment=increment,
        )
    seconds = time.perf_counter() - started
    if as_json:
        data = outcome.as_dict(explain=explain, payments=payments)
        if explain:
            data["seconds"] = round(seconds, 4)
        print_json(data)
    elif explain:
        _print_explained(outcome, election, rule=rule, seconds=seconds)
    else:
        for pid in outcome.selected:
            typer.echo(pid)


def _increment(text: str) -> Fraction:
    """--add1-increment as an exact number."""
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValidationError.single(
            "expected a positive number such as 1000 or 1/2",
            column="--add1-increment",
            value=text,
        ) from None


def _print_explained(outcome: Outcome, election: Election, *, rule: str, seconds: float) -> None:
    """Every project's result, the totals and (MES) each voter's share."""
    console.print(_explanation_table(outcome, election))
    console.print(
        f"{len(outcome.selected)} projects, cost {float(outcome.cost):,.0f} of "
        f"{float(outcome.budget_limit):,.0f} ({seconds:.3f} s)"
    )
    share = outcome.details.get("budget_per_voter")
    if rule == "mes" and isinstance(share, Fraction) and len(election.profile):
        fair = election.instance.budget_limit / len(election.profile)
        steps = outcome.details.get("add1_steps")
        raised = f", raised by Add1 from {float(fair):,.2f} in {steps} runs" if steps else ""
        console.print(f"each voter's share: {float(share):,.2f}{raised}")


@app.command("check")
@reports_errors
def check_command(
    file: Path = FileArg,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Rerun the rule named in FILE's META and compare with its `selected` column.

    Exit status 0 when they agree, 1 when they differ, 2 when the file cannot be checked.
    """
    from qala.engines.pb import official_rule, solve

    election = _read(file, validate=False)
    projects = election.instance.projects
    if not projects or "selected" not in projects[0].meta:
        raise ValidationError(
            [
                Problem(
                    "the PROJECTS section has no `selected` column",
                    file=file.name,
                    column="selected",
                )
            ],
            "nothing to check against",
        )
    spec = official_rule(election.instance.meta)
    outcome = solve(
        election.instance,
        election.profile,
        spec.rule,
        completion=spec.completion,
        comparison=spec.comparison,
    )
    official = {p.id for p in projects if p.meta.get("selected", "").strip() in ("1", "1.0")}
    ours = set(outcome.selected)
    report: dict[str, Any] = {
        "file": file.name,
        "meta_rule": election.instance.meta.get("rule"),
        "rule": outcome.rule,
        "match": ours == official,
        "selected": outcome.selected,
        "official": sorted(official, key=lambda pid: election.instance.index(pid)),
        "missing": sorted(official - ours),
        "extra": sorted(ours - official),
    }
    if as_json:
        print_json(report)
    elif report["match"]:
        console.print(
            f"[green]match[/]: {escape(outcome.rule)} selects the {len(official)} projects of the "
            f"`selected` column ({file.name})"
        )
    else:
        console.print(
            f"[red]differs[/]: {escape(outcome.rule)}; official but not ours: {report['missing']}; "
            f"ours but not official: {report['extra']}"
        )
    if not report["match"]:
        raise typer.Exit(1)
