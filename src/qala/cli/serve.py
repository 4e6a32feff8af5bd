"""`qala serve`: run the HTTP app (API, dashboard) with uvicorn."""

from __future__ import annotations

from typing import Any

import typer

from qala.cli.common import console, reports_errors


@reports_errors
def app(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (PostgreSQL only for more than one)."),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
) -> None:
    """Serve the Qala API and dashboard."""
    # Notifications are delivered by this process too, unless QALA_NOTIFY_IN_SERVER=false.
    from qala.cli.common import open_context

    context = open_context(refresh=True)
    console.print(f"Qala on [bold]http://{host}:{port}/[/] — database: {context.database.backend}")
    delivery = None
    if context.settings.notify_in_server:
        from qala.components.notify.sender import start_background_delivery

        # One delivering thread in this process, whatever the number of workers.
        delivery = start_background_delivery(context)
    try:
        _run(context, host, port, workers, reload)
    finally:
        if delivery is not None:
            delivery.stop()


def _run(context: Any, host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    from qala.api import create_app

    if workers > 1 or reload:
        uvicorn.run(
            "qala.api.factory:app_from_environment",
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            factory=True,
            **context.settings.proxy_options(),
        )
    else:
        from qala.api.factory import freeze_startup_objects

        served = create_app(context=context, migrate=False)
        freeze_startup_objects()
        uvicorn.run(
            served,
            host=host,
            port=port,
            log_level="info",
            **context.settings.proxy_options(),
        )
