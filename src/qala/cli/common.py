"""What every CLI command shares: settings, the store, Rich console, error reporting."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from qala.core.errors import QalaError, ValidationError

if TYPE_CHECKING:
    from qala.runtime import Context
    from qala.web.i18n import Translator

console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def open_context(*, refresh: bool = False) -> Context:
    """The platform as configured by the environment, with its schema up to date.

    A store behind the newest schema is migrated and its reference data seeded (``prepare``).
    A store already at it is used as it is: checking costs milliseconds where migrating and
    re-seeding cost half a second of every command. ``refresh`` prepares it in any case, for
    `qala db upgrade` and `qala serve` (reference data bundled with a newer Qala)."""
    # Imported here: the store and the components are heavy, and --help and the commands that
    # only compute on files never need them.
    from qala.registry import migration_locations, prepare, start_components
    from qala.runtime import Context
    from qala.settings import Settings
    from qala.store.migrate import is_current

    context = Context.from_settings(Settings())
    locations = [str(path) for path in migration_locations()]
    if refresh or not is_current(context.database, locations):
        prepare(context)
    else:
        start_components(context)
    return context


def reports_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn Qala errors into a clear message on standard error and exit status 2."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ValidationError as exc:
            errors.print(f"[bold red]error:[/] {exc.summary}")
            for problem in exc.problems:
                errors.print(f"  - {problem}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except QalaError as exc:
            errors.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def translator_for(lang: str) -> Translator:
    """The reader's language for a command's output (``--lang``), refused by name when the
    catalogues do not have it."""
    from qala.settings import LANGUAGES
    from qala.web.i18n import Translator

    if lang not in LANGUAGES:
        raise ValidationError.single(
            f"expected one of {', '.join(LANGUAGES)}", column="--lang", value=lang
        )
    return Translator(lang)


def print_json(data: Any) -> None:
    """One JSON document on standard output, for scripts."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    sys.stdout.write("\n")


@contextmanager
def counted_progress(
    description: str,
    *,
    on: Console | None = None,
    hidden: bool = False,
    total: int | None = None,
) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for long engine work; yields the ``progress(done, total)`` callback the
    engines take. ``hidden`` (e.g. for ``--json`` output) runs the work without drawing."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=on or console,
        transient=True,
        disable=hidden,
    ) as bar:
        task = bar.add_task(description, total=total)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick
