"""`qala db …`: the store's schema."""

from __future__ import annotations

import typer

from qala.cli.common import console, open_context, reports_errors

app = typer.Typer(help="Database schema and reference data.", no_args_is_help=True)


@app.command("upgrade")
@reports_errors
def upgrade() -> None:
    """Migrate the database (QALA_DATABASE_URL) to the newest schema and sync reference data."""
    from qala.store.migrate import table_names

    context = open_context(refresh=True)
    console.print(
        f"Schema up to date on {context.database.backend}: {len(table_names(context.database))} tables."
    )
