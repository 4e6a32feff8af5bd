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
    role: str = typer.Option("citizen", help="citizen, operator, analyst or administrator."),
    display_name: str = typer.Option("", help="Name shown in the dashboard."),
    department: str | None = typer.Option(None, help="For operators: their city service."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create an account."""
    from qala.components.accounts.services import create_user

    context = open_context()
    with context.database.transaction() as session:
        user = create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            department=department,
        )
        console.print(f"Created [bold]{user.username}[/] ({user.role}).")


@app.command("list")
@reports_errors
def list_() -> None:
    """List accounts."""
    from qala.components.accounts.services import list_users

    context = open_context()
    table = Table()
    for column in ("username", "name", "role", "department", "active"):
        table.add_column(column)
    with context.database.session() as session:
        for user in list_users(session):
            table.add_row(
                user.username,
                user.display_name,
                user.role,
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
