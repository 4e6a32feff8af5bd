"""Root of the `qala` command. Each capability contributes one Typer sub-app, listed here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="qala",
    help="Qala — open smart-city platform: measure, operate, participate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# (sub-command name, "module" holding a Typer object called `app`, or "module:attribute").
# One line per capability.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("serve", "qala.cli.serve"),
    ("db", "qala.cli.db"),
    ("catalog", "qala.cli.catalog"),
    ("places", "qala.cli.catalog:places_app"),
    ("data", "qala.cli.data"),
    ("demo", "qala.cli.demo"),
    ("operate", "qala.cli.operate"),
    ("users", "qala.cli.users"),
    ("requests", "qala.cli.requests"),
    ("index", "qala.cli.index"),
    ("pb", "qala.cli.pb"),
    ("budget", "qala.cli.budget"),
    ("sem", "qala.cli.sem"),
    ("report", "qala.cli.report"),
    ("rating", "qala.cli.rating"),
    ("assess", "qala.cli.assess"),
]


def _mount_subcommands() -> None:
    for name, module_path in SUBCOMMANDS:
        module_name, _, attribute = module_path.partition(":")
        sub = getattr(importlib.import_module(module_name), attribute or "app")
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)
        else:  # a single command function
            app.command(name=name)(sub)


_mount_subcommands()

if __name__ == "__main__":  # pragma: no cover
    app()
