"""What the notifications outbox costs a resident's report, and how fast the sender empties it.

For each store (a fresh SQLite file; PostgreSQL when it answers) the script files ``--requests``
reports with an e-mail address through ``submit_request``, one transaction each, twice: on a
platform whose notify component is started (each report writes its subscription and outbox row
in its own transaction) and on one where every component but notify is. It prints the time per report of each and their ratio.
Then one sender delivers the queued messages to an aiosmtpd server on loopback and the script
prints messages per second.

    PYTHONPATH=src .venv/bin/python bench/notify_outbox.py [--requests 500] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_database(store: str, folder: Path) -> tuple[str, object]:
    if store == "sqlite":
        return f"sqlite:///{folder / f'{uuid.uuid4().hex}.sqlite'}", None
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"qala_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}", (admin, name)


def drop(handle: object) -> None:
    if handle is None:
        return
    admin, name = handle  # type: ignore[misc]
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def file_reports(url: str, count: int, *, notify: bool) -> tuple[float, object]:
    from qala.components.requests311.demo import astana_catalogue
    from qala.components.requests311.services import NewRequest, load_catalogue, submit_request
    from qala.registry import COMPONENTS, migration_locations
    from qala.runtime import Context
    from qala.settings import Settings
    from qala.store.migrate import upgrade

    context = Context.from_settings(Settings(database_url=url, secret_key="bench"))
    upgrade(context.database, [str(p) for p in migration_locations()])
    # Every other component starts in both runs (their event handlers cost the same in each).
    for component in COMPONENTS:
        if component.on_startup is not None and (notify or component.name != "notify"):
            component.on_startup(context)
    with context.database.transaction() as session:
        city = load_catalogue(session, astana_catalogue())
    warm_up = 20  # first reports import the event handlers' modules and fill caches
    for k in range(count + warm_up):
        if k == warm_up:
            started = time.perf_counter()
        with context.database.transaction() as session:
            submit_request(
                session,
                city,
                NewRequest(
                    service_code="pothole",
                    lat=51.125,
                    lon=71.43,
                    attributes={"size": ["large"]},
                    email=f"resident{k}@example.kz",
                    language="kk",
                ),
                now=context.clock(),
                bus=context.bus,
            )
    return (time.perf_counter() - started) / count, context


def deliver(context: object, count: int) -> float:
    from aiosmtpd.controller import Controller

    from qala.components.notify.sender import Sender

    class Sink:
        received = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Sink.received += 1
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        context.settings.smtp_url = f"smtp://127.0.0.1:{port}"  # type: ignore[attr-defined]
        sender = Sender.for_context(context)  # type: ignore[arg-type]
        started = time.perf_counter()
        while sender.run_once(limit=50):
            pass
        elapsed = time.perf_counter() - started
    finally:
        controller.stop()
    assert Sink.received == count, (Sink.received, count)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for store in args.stores.split(","):
            try:
                url_plain, plain_handle = fresh_database(store, Path(folder))
                url_notify, notify_handle = fresh_database(store, Path(folder))
            except Exception as exc:  # PostgreSQL not running: say so and go on
                print(f"{store}: skipped ({exc.__class__.__name__})")
                continue
            try:
                without, _ = file_reports(url_plain, args.requests, notify=False)
                with_outbox, context = file_reports(url_notify, args.requests, notify=True)
                rate = deliver(context, args.requests + 20)
                print(
                    f"{store}: report without notify {without * 1000:.2f} ms, with outbox "
                    f"{with_outbox * 1000:.2f} ms (ratio {with_outbox / without:.2f}); "
                    f"sender {rate:.0f} e-mails/s to a loopback SMTP server"
                )
            finally:
                drop(plain_handle)
                drop(notify_handle)


if __name__ == "__main__":
    main()
