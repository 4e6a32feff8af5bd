"""`qala budget …`: participatory budgeting processes, results, tracked projects, the public
ledger (and its verification), consultations and indicators. The voting rules themselves are
`qala pb …`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from qala.cli.common import console, errors, open_context, print_json, reports_errors
from qala.core.clock import utc_now

app = typer.Typer(
    help="Participatory budgeting, consultations and public tracking of city projects.",
    no_args_is_help=True,
)
ledger_app = typer.Typer(help="The hash-chained ledger of project changes.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")

JsonOption = typer.Option(False, "--json", help="Print JSON for scripts.")
LanguageOption = typer.Option("en", "--language", "-l", help="kk, ru or en.")
ACTOR = "cli"


def _title(text: dict[str, str], language: str) -> str:
    from qala.components.budgeting.process import text_in

    return escape(text_in(text, language))


@app.command("processes")
@reports_errors
def processes_command(
    place: str | None = typer.Option(None, help="Only this city or district code."),
    language: str = LanguageOption,
    json_output: bool = JsonOption,
) -> None:
    """List participatory budgeting processes with their phase, budget and turnout so far."""
    from qala.components.budgeting.process import list_processes

    context = open_context()
    with context.database.session() as session:
        found = list_processes(session, place_code=place)
    if json_output:
        print_json([asdict(p) for p in found])
        return
    table = Table(title="Participatory budgeting processes")
    for column in ("code", "place", "title", "phase", "budget, ₸", "proposals", "ballots", "rule"):
        table.add_column(
            column, justify="right" if column in ("budget, ₸", "proposals", "ballots") else "left"
        )
    for p in found:
        table.add_row(
            p.code,
            p.place_code,
            _title(p.title, language),
            p.phase,
            f"{p.budget:,}",
            f"{p.feasible_proposals}/{p.proposals}",
            str(p.ballots_cast),
            p.rule_label,
        )
    console.print(table)


@app.command("process")
@reports_errors
def process_command(code: str, json_output: bool = JsonOption) -> None:
    """One process: calendar, ballot form, counts and phase history."""
    from qala.components.budgeting.process import get_process

    context = open_context()
    with context.database.session() as session:
        info = get_process(session, code)
    if json_output:
        print_json(asdict(info))
        return
    console.print(f"[bold]{escape(info.code)}[/] — {info.place_code}, phase [cyan]{info.phase}[/]")
    console.print(f"budget {info.budget:,} ₸, rule {info.rule_label}, ballots {info.ballot_kind}")
    for name in (
        "proposals_open_at",
        "proposals_close_at",
        "review_close_at",
        "voting_open_at",
        "voting_close_at",
    ):
        console.print(f"  {name:<20} {getattr(info, name):%Y-%m-%d %H:%M} UTC")
    console.print(
        f"proposals {info.proposals} ({info.feasible_proposals} feasible), voters "
        f"{info.voters_registered}, ballots {info.ballots_cast}"
    )
    for step in info.history:
        console.print(
            f"  {step['at'][:16]} {step['from']} → {step['to']} by {escape(step['actor'])}"
        )


@app.command("proposals")
@reports_errors
def proposals_command(
    code: str, language: str = LanguageOption, json_output: bool = JsonOption
) -> None:
    """A process's proposals with their review decisions and public reasons."""
    from qala.components.budgeting.process import list_proposals

    context = open_context()
    with context.database.session() as session:
        found = list_proposals(session, code)
    if json_output:
        print_json([{k: v for k, v in asdict(p).items() if k != "author"} for p in found])
        return
    table = Table(title=f"Proposals of {escape(code)}")
    for column in ("code", "title", "cost, ₸", "status", "reason"):
        table.add_column(column)
    for p in found:
        table.add_row(
            p.code,
            _title(p.title, language),
            f"{p.cost or p.estimated_cost:,}",
            p.status,
            escape(p.review_reason or ""),
        )
    console.print(table)


@app.command("advance")
@reports_errors
def advance_command(
    code: str,
    phase: str = typer.Argument(..., help="review, voting, results, implementation or closed."),
    note: str = typer.Option("", help="Why (kept in the public history)."),
    json_output: bool = JsonOption,
) -> None:
    """Move a process to its next phase (checked against its calendar and preconditions)."""
    from qala.components.budgeting.process import advance

    context = open_context()
    with context.database.transaction() as session:
        info = advance(session, code, to_phase=phase, actor=ACTOR, now=utc_now(), note=note)
    if json_output:
        print_json(asdict(info))
    else:
        console.print(f"[green]✓[/] {info.code} is now in its {info.phase} phase")


@app.command("results")
@reports_errors
def results_command(
    code: str, language: str = LanguageOption, json_output: bool = JsonOption
) -> None:
    """The results of a process, each project with why it was or was not selected."""
    from qala.components.budgeting.ballots import get_results

    context = open_context()
    with context.database.session() as session:
        found = get_results(session, code)
    if json_output:
        print_json(asdict(found))
        return
    console.print(
        f"[bold]{escape(found.process)}[/]: {found.rule}, {found.ballots} ballots, "
        f"{found.cost:,} of {found.budget:,} ₸ ({found.share_spent:.1%})"
    )
    table = Table()
    for column in ("project", "title", "cost, ₸", "votes", "selected", "why"):
        table.add_column(column)
    for row in found.projects:
        table.add_row(
            row.code,
            _title(row.title, language),
            f"{row.cost:,}",
            str(row.votes),
            "yes" if row.selected else "no",
            escape(row.reason),
        )
    console.print(table)


@app.command("export")
@reports_errors
def export_command(
    code: str,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default: stdout)."
    ),
    language: str = LanguageOption,
) -> None:
    """Export a process (after voting closed) as a pabulib .pb file for `qala pb solve` or pabutools."""
    from qala.components.budgeting.ballots import export_pabulib

    context = open_context()
    with context.database.session() as session:
        text = export_pabulib(session, code, language=language)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"[green]✓[/] wrote {output}")


@app.command("projects")
@reports_errors
def projects_command(
    place: str | None = typer.Option(None),
    status: str | None = typer.Option(None),
    language: str = LanguageOption,
    json_output: bool = JsonOption,
) -> None:
    """Tracked city projects: budget, paid, status, lateness and residents' rating."""
    from qala.components.budgeting.projects import list_projects

    context = open_context()
    with context.database.session() as session:
        found = list_projects(session, today=utc_now().date(), place_code=place, status=status)
    if json_output:
        print_json([asdict(p) for p in found])
        return
    table = Table(title="Tracked projects")
    for column in (
        "code",
        "title",
        "budget, ₸",
        "paid, ₸",
        "status",
        "planned end",
        "late",
        "rating",
    ):
        table.add_column(column)
    for p in found:
        table.add_row(
            p.code,
            _title(p.title, language),
            f"{p.budget:,}",
            f"{p.paid:,}",
            p.status,
            str(p.planned_end),
            "yes" if p.late else "",
            "" if p.rating is None else f"{p.rating:.1f} ({p.ratings})",
        )
    console.print(table)


@app.command("project")
@reports_errors
def project_command(code: str, json_output: bool = JsonOption) -> None:
    """One project with its milestones, payments and risk register."""
    from qala.components.budgeting.projects import get_project

    context = open_context()
    with context.database.session() as session:
        found = get_project(session, code, today=utc_now().date())
    data = asdict(found)
    if json_output:
        print_json(data)
        return
    console.print_json(json.dumps(data, default=str, ensure_ascii=False))


PublicKeyOption = typer.Option(
    None,
    "--public-key",
    envvar="QALA_LEDGER_PUBLIC_KEY",
    help="The ledger's Ed25519 public key (base64 or PEM) or a file holding it; "
    "default: the public half of QALA_LEDGER_KEY_FILE when this machine has it.",
)


@ledger_app.command("verify")
@reports_errors
def ledger_verify_command(
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="A head hash published earlier."
    ),
    file: Path | None = typer.Option(
        None, "--file", help="Verify an exported ledger (JSON list) instead of the store."
    ),
    witness: Path | None = typer.Option(
        None,
        "--witness",
        help="Signed heads saved earlier (`ledger head --save`): the ledger must extend each.",
    ),
    public_key: str | None = PublicKeyOption,
    json_output: bool = JsonOption,
) -> None:
    """Verify the ledger: numbering, each hash link, the signature and Merkle root of the newest
    head, consistency with witnessed heads, and the project tables against it.

    Exit status 0 when intact, 1 when anything was tampered with (each problem is listed).
    """
    from qala.components.budgeting.ledger import verify_chain, verify_ledger
    from qala.components.budgeting.signing import configured_public_key, read_witness

    if file is not None:
        entries = json.loads(file.read_text(encoding="utf-8"))
        result = verify_chain(entries, expected_head=expect_head)
    else:
        context = open_context()
        key = configured_public_key(context, public_key)
        saved = read_witness(witness) if witness is not None else []
        with context.database.session() as session:
            result = verify_ledger(
                session, public_key=key, expected_head=expect_head, witness=saved
            )
    if json_output:
        print_json(result.as_dict())
    elif result.ok:
        checked = f", consistent with {witness}" if witness is not None else ""
        console.print(
            f"[green]✓[/] ledger intact: {result.entries} entries, head {result.head_hash}"
            + ("" if file is not None else f", signed tree verified{checked}")
        )
    else:
        errors.print(
            f"[bold red]ledger NOT intact[/]: {len(result.problems)} problem(s) in {result.entries} entries"
        )
        for problem in result.problems:
            errors.print(f"  - {problem}", markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@ledger_app.command("head")
@reports_errors
def ledger_head_command(
    save: Path | None = typer.Option(
        None, "--save", help="Append the head to this witness file (one JSON line per head)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """The newest signed tree head: keep copies (`--save`) to catch a rollback later."""
    from qala.components.budgeting.ledger import published_head
    from qala.components.budgeting.signing import save_witness

    context = open_context()
    with context.database.session() as session:
        head = published_head(session)
    if save is not None:
        save_witness(save, head)
    if json_output:
        print_json(head.as_dict())
        return
    console.print(
        f"size {head.size}, root {head.root_hash}\nsigned at {head.timestamp}: {head.signature}"
        + (f"\nsaved to {save}" if save is not None else "")
    )


@ledger_app.command("prove")
@reports_errors
def ledger_prove_command(
    entry: int = typer.Option(..., "--entry", min=1, help="The entry's number."),
    size: int | None = typer.Option(
        None, "--size", min=1, help="The tree's size (default: the newest signed head's)."
    ),
    public_key: str | None = PublicKeyOption,
    json_output: bool = JsonOption,
) -> None:
    """The Merkle proof (RFC 9162) that an entry is in a signed tree, checked here as anyone can."""
    from qala.components.budgeting.ledger import check_inclusion, prove_inclusion
    from qala.components.budgeting.signing import configured_public_key

    context = open_context()
    with context.database.session() as session:
        found = prove_inclusion(session, entry, size=size)
    problems = check_inclusion(found, configured_public_key(context, public_key))
    if json_output:
        print_json({**found, "problems": problems})
    elif problems:
        errors.print(f"[bold red]entry {entry} NOT proven[/]:")
        for problem in problems:
            errors.print(f"  - {problem}", markup=False, highlight=False)
    else:
        console.print(
            f"[green]✓[/] entry {entry} is in the signed tree of {found['tree_size']} entries "
            f"(root {found['root_hash']}); audit path: {len(found['proof'])} hashes"
        )
    if problems:
        raise typer.Exit(1)


@ledger_app.command("show")
@reports_errors
def ledger_show_command(
    after: int = typer.Option(0, help="Entries after this number."),
    limit: int = typer.Option(50, help="At most this many."),
    subject: str | None = typer.Option(None, help="Only this project or process."),
    json_output: bool = JsonOption,
) -> None:
    """Ledger entries in order."""
    from qala.components.budgeting.ledger import list_entries

    context = open_context()
    with context.database.session() as session:
        found = list_entries(session, after=after, limit=limit, subject=subject)
    if json_output:
        print_json([e.as_dict() for e in found])
        return
    table = Table(title="Ledger")
    for column in ("#", "at", "actor", "kind", "subject", "hash"):
        table.add_column(column)
    for e in found:
        table.add_row(
            str(e.seq), e.at[:19], escape(e.actor), e.kind, e.subject, e.entry_hash[:16] + "…"
        )
    console.print(table)


@ledger_app.command("export")
@reports_errors
def ledger_export_command(output: Path = typer.Option(..., "--output", "-o")) -> None:
    """Write the whole ledger as JSON (verify it anywhere with `qala budget ledger verify --file`)."""
    from qala.components.budgeting.ledger import list_entries

    context = open_context()
    with context.database.session() as session:
        found = [e.as_dict() for e in list_entries(session)]
    output.write_text(json.dumps(found, ensure_ascii=False, indent=1), encoding="utf-8")
    console.print(f"[green]✓[/] {len(found)} entries → {output}")


@app.command("consultations")
@reports_errors
def consultations_command(language: str = LanguageOption, json_output: bool = JsonOption) -> None:
    """Surveys and public hearings."""
    from qala.components.budgeting.consultations import list_consultations

    context = open_context()
    with context.database.session() as session:
        found = list_consultations(session, now=utc_now())
    if json_output:
        print_json([asdict(c) for c in found])
        return
    table = Table(title="Consultations")
    for column in ("code", "kind", "title", "status", "responses", "comments"):
        table.add_column(column)
    for c in found:
        table.add_row(
            c.code, c.kind, _title(c.title, language), c.status, str(c.responses), str(c.comments)
        )
    console.print(table)


@app.command("consultation-results")
@reports_errors
def consultation_results_command(code: str, json_output: bool = JsonOption) -> None:
    """Results of a consultation, question by question."""
    from qala.components.budgeting.consultations import consultation_results

    context = open_context()
    with context.database.session() as session:
        found = consultation_results(session, code, now=utc_now())
    data: dict[str, Any] = asdict(found)
    if json_output:
        print_json(data)
        return
    console.print(f"[bold]{escape(found.code)}[/] ({found.status}): {found.responses} responses")
    for q in found.questions:
        summary = (
            ", ".join(f"{k}: {n}" for k, n in q.counts.items())
            if q.counts
            else f"{len(q.texts)} texts"
        )
        extra = f"; mean {q.mean:.2f}, median {q.median:g}" if q.mean is not None else ""
        console.print(f"  {q.key} ({q.kind}, {q.answered} answered): {escape(summary)}{extra}")


@app.command("indicators")
@reports_errors
def indicators_command(
    write: bool = typer.Option(False, "--write", help="Write them to the catalogue."),
    json_output: bool = JsonOption,
) -> None:
    """Turnout, proposals per 1,000, share of budget decided, on-time/on-budget delivery, satisfaction."""
    from qala.components.budgeting.indicators import compute_indicators, write_indicators

    context = open_context()
    with context.database.session() as session:
        result = compute_indicators(session)
    written = write_indicators(context.database, result, imported_by="cli") if write else 0
    rows = result.rows.to_dict(orient="records")
    if json_output:
        print_json({"rows": rows, "rows_written": written})
        return
    table = Table(title="Budgeting indicators")
    for column in ("place", "indicator", "year", "value", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["place"],
            row["indicator"],
            str(row["year"]),
            f"{row['value']:.2f}",
            escape(row["note"]) + (" (illustrative)" if row["illustrative"] else ""),
        )
    console.print(table)
    if write:
        console.print(f"[green]✓[/] {written} values written to the catalogue")


@app.command("demo")
@reports_errors
def demo_command() -> None:
    """Load the illustrative demo processes, projects and consultations (idempotent)."""
    from qala.components.budgeting.demo import load_demo

    context = open_context()
    console.print(f"[green]✓[/] {load_demo(context).summary()}")
