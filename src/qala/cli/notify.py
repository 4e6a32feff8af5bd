"""`qala notify …`: deliver the notifications outbox, and see what waits or failed."""

from __future__ import annotations

import typer
from rich.table import Table

from qala.cli.common import console, open_context, print_json, reports_errors

app = typer.Typer(
    help="Resident notifications: the delivery worker and the outbox.", no_args_is_help=True
)


@app.command("worker")
@reports_errors
def worker(
    interval: float = typer.Option(2.0, help="Seconds between polls when nothing is due."),
    until_empty: bool = typer.Option(
        False, "--until-empty", help="Exit once nothing is due (cron jobs, tests)."
    ),
) -> None:
    """Deliver queued messages (e-mail, SMS) with retries, until stopped (Ctrl-C, SIGTERM).

    Any number of workers may run against one PostgreSQL store: each claims messages under a
    lease, so none is sent twice and a killed worker's messages are taken over."""
    import signal
    import threading

    from qala.components.notify.sender import Sender

    context = open_context()
    sender = Sender.for_context(context)
    if not sender.channels:
        console.print("[yellow]No channel configured: set QALA_SMTP_URL or QALA_SMS_GATEWAY_URL.")
        raise typer.Exit(2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"Delivering as {sender.owner} ({', '.join(sender.channels)})")
    try:
        sender.run(
            stop,
            interval=interval,
            until_empty=until_empty,
            on_batch=lambda counts: console.print(counts),
        )
    except KeyboardInterrupt:
        stop.set()


@app.command("list")
@reports_errors
def list_command(
    status: list[str] = typer.Option(
        ["queued", "failed"], "--status", help="queued, failed or sent (repeatable)."
    ),
    limit: int = typer.Option(200, help="At most this many messages."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Messages waiting or given up, oldest first, with their last error."""
    from dataclasses import asdict

    from qala.components.notify.services import outbox

    context = open_context()
    with context.database.session() as session:
        rows = outbox(session, statuses=tuple(status), limit=limit)
    if json_output:
        print_json([asdict(row) for row in rows])
        return
    table = Table("id", "kind", "channel", "to", "status", "attempts", "next try", "last error")
    for row in rows:
        table.add_row(
            str(row.id),
            row.kind,
            row.channel,
            row.recipient,
            row.status,
            str(row.attempts),
            f"{row.next_attempt_at:%Y-%m-%d %H:%M}",
            (row.last_error or "")[:80],
        )
    console.print(table)


@app.command("retry")
@reports_errors
def retry(message_id: int = typer.Argument(..., help="The failed message's id.")) -> None:
    """Queue a failed message again (e.g. after fixing the SMTP settings)."""
    from qala.components.notify.services import requeue

    context = open_context()
    with context.database.transaction() as session:
        requeue(session, message_id, now=context.clock())
    console.print(f"Message {message_id} queued again.")
