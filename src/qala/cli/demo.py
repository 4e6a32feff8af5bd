"""`qala demo load`: load every component's bundled sample data (what `make demo` runs)."""

from __future__ import annotations

import typer
from rich.progress import Progress

from qala.cli.common import console, open_context, reports_errors

app = typer.Typer(help="The bundled demo data.", no_args_is_help=True)


@app.command("load")
@reports_errors
def load() -> None:
    """Load the sample data of every component into the configured store."""
    from qala.registry import COMPONENTS

    context = open_context()
    loaders = [c for c in COMPONENTS if c.demo_loader is not None]
    with Progress(console=console) as progress:
        task = progress.add_task("Loading demo data", total=len(loaders))
        for component in loaders:
            assert component.demo_loader is not None
            progress.update(task, description=f"Loading {component.name}")
            summary = component.demo_loader(context)
            progress.console.print(f"[green]✓[/] {component.name}: {summary}")
            progress.advance(task)
