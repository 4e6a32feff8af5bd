"""Root of the `qala` command. Each capability contributes one Typer sub-app, listed here.

The sub-apps are imported only when their command runs (or its help is asked for): `qala --help`
lists them from the table below, so starting the command does not load the whole platform.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup


class Subcommand(NamedTuple):
    """A sub-command of `qala`: where it lives and its help, shown in the root listing."""

    name: str
    module_path: str  # "module" holding a Typer object called `app`, or "module:attribute"
    help: str  # the sub-app's own help text (tests/cli check that they stay equal)


# One line per capability.
SUBCOMMANDS: list[Subcommand] = [
    Subcommand("serve", "qala.cli.serve", "Serve the Qala API and dashboard."),
    Subcommand("db", "qala.cli.db", "Database schema and reference data."),
    Subcommand(
        "catalog",
        "qala.cli.catalog",
        "Browse the indicator catalogue (ISO 37120/37122/37123, national rating…).",
    ),
    Subcommand(
        "places",
        "qala.cli.catalog:places_app",
        "Kazakhstan's places: regions, cities, single-industry towns.",
    ),
    Subcommand(
        "data",
        "qala.cli.data",
        "Check, import and export city indicator values (CSV, Excel, Parquet).",
    ),
    Subcommand(
        "releases",
        "qala.cli.releases",
        "The yearly data call (submit → review → publish) and open-data releases.",
    ),
    Subcommand("demo", "qala.cli.demo", "The bundled demo data."),
    Subcommand("operate", "qala.cli.operate", "Operate: sensors, rules and incidents."),
    Subcommand("users", "qala.cli.users", "Accounts: citizen, operator, analyst, administrator."),
    Subcommand(
        "notify",
        "qala.cli.notify",
        "Resident notifications: the delivery worker and the outbox.",
    ),
    Subcommand(
        "requests",
        "qala.cli.requests",
        "Citizen service requests (Open311 GeoReport v2, a city's 109).",
    ),
    Subcommand(
        "index",
        "qala.cli.index",
        "Composite indices (OECD/JRC method, COINr-compatible): build, results, audit, "
        "uncertainty, compare — on plain files (--data, --meta) or on the stored values.",
    ),
    Subcommand(
        "pb",
        "qala.cli.pb",
        "Participatory budgeting: run voting rules (greedy, Method of Equal Shares, Phragmén, "
        "max welfare) on pabulib .pb files.",
    ),
    Subcommand(
        "budget",
        "qala.cli.budget",
        "Participatory budgeting, consultations and public tracking of city projects.",
    ),
    Subcommand(
        "sem", "qala.cli.sem", "PLS-SEM (partial least squares structural equation modelling)."
    ),
    Subcommand(
        "report",
        "qala.cli.report",
        "Reports with plots and a method annex (HTML, or PDF with --pdf).",
    ),
    Subcommand(
        "rating",
        "qala.cli.rating",
        "The national Smart City rating from the stored indicator values (with rank intervals).",
    ),
    Subcommand(
        "assess",
        "qala.cli.assess",
        "Assess a city — `qala assess CITY` (balance, readiness, maturity, roadmap, mentors) — "
        "and stakeholders' weights — `qala assess stakeholders`.",
    ),
]


HELP_MARKUP = None
"""Help and usage errors in click's plain layout: Typer's Rich layout imports ``typer.rich_utils``
(Rich's Markdown, markdown-it, columns), which took ``qala --help`` from 76 to 254 ms."""


def load_subcommand(subcommand: Subcommand) -> click.Command:
    """Import the sub-app's module and turn it into the click command `qala NAME` runs."""
    module_name, _, attribute = subcommand.module_path.partition(":")
    sub = getattr(importlib.import_module(module_name), attribute or "app")
    # A holder app with the root's defaults, so the command is built as `add_typer` builds it.
    holder = typer.Typer(pretty_exceptions_show_locals=False, rich_markup_mode=HELP_MARKUP)
    if isinstance(sub, typer.Typer):
        holder.add_typer(sub, name=subcommand.name)
    else:  # a single command function
        holder.command(name=subcommand.name)(sub)
    command = typer.main.get_group(holder).commands[subcommand.name]
    from qala.cli.coercion import install

    return install(command)


class LazyGroup(TyperGroup):
    """The root group: knows its sub-commands by name and imports one only when it is used.

    Listing them (``qala --help``, shell completion) shows the help stored in SUBCOMMANDS."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.lazy = {subcommand.name: subcommand for subcommand in SUBCOMMANDS}
        self.listing = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from qala.cli.coercion import install

        install(self)  # the root's own options convert without pydantic too
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        subcommand = self.lazy.get(cmd_name)
        if subcommand is None:
            return None
        if self.listing:
            return TyperCommand(subcommand.name, help=subcommand.help)
        command = self.commands[cmd_name] = load_subcommand(subcommand)
        return command

    @contextmanager
    def listing_only(self) -> Iterator[None]:
        """While listing sub-commands, describe them without importing them."""
        self.listing = True
        try:
            yield
        finally:
            self.listing = False

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with self.listing_only():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        with self.listing_only():
            return super().shell_complete(ctx, incomplete)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as error:  # suggest like click does for known names
            if self.suggest_commands and args and "Did you mean" not in error.message:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], list(self.lazy))
                if matches:
                    suggestions = ", ".join(f"{match!r}" for match in matches)
                    error.message = f"{error.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


app = typer.Typer(
    name="qala",
    cls=LazyGroup,
    rich_markup_mode=HELP_MARKUP,
    help="Qala — open smart-city platform: measure, operate, participate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root() -> None:
    """Makes `qala` a group of sub-commands even though none is registered at import time."""


if __name__ == "__main__":  # pragma: no cover
    app()
