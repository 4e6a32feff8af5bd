"""`qala users …`: accounts and roles."""

from __future__ import annotations

import typer
from rich.table import Table

from qala.cli.common import console, open_context, reports_errors

app = typer.Typer(help="Accounts: citizen, operator, analyst, administrator.", no_args_is_help=True)


@app.command("create")
@reports_errors
def create(
    username: str,
    role: str = typer.Option(
        "citizen",
        help="citizen, operator, analyst, administrator, submitter, reviewer or publisher.",
    ),
    display_name: str = typer.Option("", help="Name shown in the dashboard."),
    department: str | None = typer.Option(
        None,
        "--department",
        "--departments",
        help="For operators: their departments, comma-separated codes (default: all).",
    ),
    place: str | None = typer.Option(
        None, help="For staff: the city they work for (a place code); omit for national."
    ),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create an account."""
    from qala.components.accounts.services import create_user

    context = open_context()
    with context.database.transaction() as session:
        _check_place(session, place)
        user = create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            department=department,
            place=place,
        )
        console.print(f"Created [bold]{user.username}[/] ({user.role}, {_scope_text(user)}).")


@app.command("scope")
@reports_errors
def scope(
    username: str,
    place: str | None = typer.Option(
        None, help="The city the account works for (a place code); omit for national."
    ),
    departments: str | None = typer.Option(
        None, help="Operators: comma-separated department codes (omit: every department)."
    ),
) -> None:
    """Set where a staff account may see and act: a city (or national) and departments."""
    from qala.components.accounts.services import get_user, set_scope

    context = open_context()
    with context.database.transaction() as session:
        _check_place(session, place)
        user = set_scope(session, get_user(session, username), place, departments)
        console.print(f"[bold]{user.username}[/]: {_scope_text(user)}.")


def _check_place(session: object, place: str | None) -> None:
    """A NotFoundError naming the place when it is not in the places catalogue."""
    from qala.components.catalog.services import get_place

    if place:
        get_place(session, place.strip().lower())  # type: ignore[arg-type]


def _scope_text(user: object) -> str:
    place = getattr(user, "place", None) or "national"
    departments = getattr(user, "department", None)
    return f"{place}; departments {departments}" if departments else place


@app.command("list")
@reports_errors
def list_() -> None:
    """List accounts."""
    from qala.components.accounts.services import list_users

    context = open_context()
    table = Table()
    for column in ("username", "name", "role", "place", "departments", "active"):
        table.add_column(column)
    with context.database.session() as session:
        for user in list_users(session):
            table.add_row(
                user.username,
                user.display_name,
                user.role,
                user.place or "national",
                user.department or "",
                "yes" if user.active else "no",
            )
    console.print(table)


@app.command("token")
@reports_errors
def token(username: str, label: str = typer.Option("", help="What the token is for.")) -> None:
    """Issue an API bearer token for a user (printed once)."""
    from qala.components.accounts.services import get_user, issue_token

    context = open_context()
    with context.database.transaction() as session:
        typer.echo(issue_token(session, get_user(session, username), label=label))
