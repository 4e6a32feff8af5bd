"""`qala releases …`: the yearly data call (open, submit, review, board) and published releases."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from qala.cli.common import console, errors, open_context, print_json, reports_errors

app = typer.Typer(
    help="The yearly data call (submit → review → publish) and open-data releases.",
    no_args_is_help=True,
)


@app.command("call")
@reports_errors
def open_call_(
    year: int = typer.Option(..., help="The year the values are for."),
    indicator: list[str] = typer.Option(..., help="An indicator asked (repeatable)."),
    place: list[str] = typer.Option(..., help="A place that answers (repeatable)."),
    deadline: str = typer.Option(..., help="YYYY-MM-DD."),
    actor: str = typer.Option(
        ..., "--as", help="The account that opens the call: a national publisher."
    ),
) -> None:
    """Open a data call."""
    from qala.components.accounts.services import acting_account
    from qala.components.catalog.calls import open_call

    try:
        due = date.fromisoformat(deadline)
    except ValueError:
        raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--deadline") from None
    context = open_context()
    with context.database.transaction() as session:
        user = acting_account(session, actor, "publisher", national=True)
        call = open_call(
            session,
            year=year,
            indicators=indicator,
            places=place,
            deadline=due,
            actor=user.username,
        )
        console.print(f"Opened data call {call.id} for {year}, due {due}.")


@app.command("submit")
@reports_errors
def submit(
    call: int = typer.Argument(...),
    file: Path = typer.Argument(
        ..., help="CSV/Excel/Parquet: place, indicator, value[, evidence, note]."
    ),
    actor: str = typer.Option(..., "--as", help="The submitting account: the place's submitter."),
) -> None:
    """Submit a place's values to a call (all rows or none). A submitter answers for its own
    place only, as on the API."""
    from qala.components.accounts.scope import StaffScope
    from qala.components.accounts.services import acting_account
    from qala.components.catalog.calls import submit_file

    context = open_context()
    with context.database.transaction() as session:
        user = acting_account(session, actor, "submitter")
        result = submit_file(
            session, call, file, actor=user.username, scope_place=StaffScope.of(user).place
        )
    console.print(f"Submitted {result.written} value(s).")
    for (where, indicator), flags in result.flags.items():
        for flag in flags:
            console.print(f"[yellow]flag:[/] {where} {indicator}: {flag['text']}", highlight=False)


@app.command("review")
@reports_errors
def review_(
    call: int = typer.Argument(...),
    place: str = typer.Argument(...),
    indicator: str = typer.Argument(...),
    decision: str = typer.Argument(..., help="accept or return"),
    actor: str = typer.Option(..., "--as", help="The reviewing account (national staff)."),
    reason: str | None = typer.Option(None, help="Why (required to return a value)."),
) -> None:
    """Accept a submitted value or return it with a reason."""
    from qala.components.accounts.services import acting_account
    from qala.components.catalog.calls import review

    context = open_context()
    with context.database.transaction() as session:
        user = acting_account(session, actor, "reviewer", "publisher", national=True)
        row = review(session, call, place, indicator, decision, actor=user.username, reason=reason)
        console.print(f"{place} {indicator}: {row.status}.")


@app.command("board")
@reports_errors
def board(call: int = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Per place: submitted, accepted, returned, missing, overdue."""
    from qala.components.catalog.calls import status_board

    context = open_context()
    with context.database.session() as session:
        rows = status_board(session, call)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Data call {call}")
    for col in ("place", "submitted", "accepted", "returned", "missing", "overdue"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(
                str(r[c])
                for c in ("place", "submitted", "accepted", "returned", "missing", "overdue")
            )
        )
    console.print(table)


@app.command("publish")
@reports_errors
def publish_(
    call: int = typer.Argument(...),
    actor: str = typer.Option(..., "--as", help="The publishing account (national publisher)."),
    incomplete_reason: str | None = typer.Option(
        None,
        "--incomplete",
        help="Why values are missing (required to publish an incomplete call).",
    ),
) -> None:
    """Publish the call's accepted values as a new, immutable, numbered release."""
    from qala.components.accounts.services import acting_account
    from qala.components.catalog.calls import publish

    context = open_context()
    with context.database.transaction() as session:
        user = acting_account(session, actor, "publisher", national=True)
        release = publish(session, call, actor=user.username, incomplete_reason=incomplete_reason)
        log = release.changelog
        console.print(
            f"Published release {release.number}: {len(log['added'])} added, "
            f"{len(log['changed'])} changed, {len(log['removed'])} removed."
        )


@app.command("list")
@reports_errors
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Published releases."""
    from qala.components.catalog.calls import list_releases

    context = open_context()
    with context.database.session() as session:
        rows = list_releases(session)
    if as_json:
        print_json(rows)
        return
    table = Table(title="Releases")
    for col in ("id", "year", "call", "values", "published_at", "published_by"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(str(r[c]) for c in ("id", "year", "call", "values", "published_at", "published_by"))
        )
    console.print(table)


@app.command("show")
@reports_errors
def show(number: int = typer.Argument(...)) -> None:
    """A release's values and changelog (JSON)."""
    from qala.components.catalog.calls import get_release, release_values

    context = open_context()
    with context.database.session() as session:
        release = get_release(session, number)
        print_json(
            {
                "id": release.number,
                "year": release.year,
                "call": release.call_id,
                "sha256": release.sha256,
                "changelog": release.changelog,
                "values": release_values(session, release.id),
            }
        )


@app.command("diff")
@reports_errors
def diff(first: int = typer.Argument(...), second: int = typer.Argument(...)) -> None:
    """What changed between two releases (JSON)."""
    from qala.components.catalog.calls import release_diff

    context = open_context()
    with context.database.session() as session:
        print_json(release_diff(session, first, second))


@app.command("export")
@reports_errors
def export(
    number: int = typer.Argument(...),
    out: Path = typer.Option(..., "--out", help="Folder for the Data Package and DCAT-AP files."),
) -> None:
    """Write a release as a Frictionless Data Package with its DCAT-AP description."""
    from qala.components.catalog.opendata import export_release

    context = open_context()
    with context.database.session() as session:
        paths = export_release(session, number, out)
    for path in paths:
        errors.print(f"Wrote {path}")
