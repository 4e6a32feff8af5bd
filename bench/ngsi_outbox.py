"""What the NGSI-LD notification outbox costs an entity write, and the notifier per change.

For each store (a fresh SQLite file; PostgreSQL when it answers) the script updates one attribute
of an entity ``--writes`` times through ``broker.merge`` (one transaction each, as
``PATCH /entities/{id}/attrs`` does), twice, alternating in blocks: with the changes staged in the outbox (as shipped)
and with the staging switched off (as before the outbox). It prints, per write, the SQL
statements the writing thread executed and the process CPU time of each run. Then it empties
the outbox with the notifier's own round (``CHUNK`` rows at a time, one subscription in the
store that matches none of the changes, so nothing is sent) and prints statements and CPU per
change. The notifier's thread is stopped throughout: everything measured runs in this thread.

    PYTHONPATH=src .venv/bin/python bench/ngsi_outbox.py [--writes 500] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from notify_outbox import drop, fresh_database  # the same fresh database per store


class Statements:
    """Counts the statements this thread executes on an engine."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        self.thread = threading.get_ident()
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        if threading.get_ident() == self.thread:
            self.count += 1


@contextmanager
def measured(statements: Statements, into: dict[str, float]) -> Iterator[None]:
    first, cpu = statements.count, time.process_time()
    yield
    into["statements"] = statements.count - first
    into["cpu_s"] = time.process_time() - cpu


def run(url: str, writes: int) -> dict[str, dict[str, float]]:
    from qala.components.operate import broker
    from qala.components.operate.ngsi import parse_entity
    from qala.components.operate.outbox import count_waiting
    from qala.components.operate.subscriptions import notifier_for
    from qala.core.clock import utc_now
    from qala.registry import migration_locations
    from qala.runtime import Context
    from qala.settings import Settings
    from qala.store.migrate import upgrade

    context = Context.from_settings(Settings(database_url=url, secret_key="bench"))
    upgrade(context.database, [str(p) for p in migration_locations()])
    notifier = notifier_for(context)
    notifier.stop()  # rounds run below, in this thread
    statements = Statements(context.database.engine)
    broker.subscribe(
        context,
        {
            "type": "Subscription",
            "entities": [{"type": "Vehicle"}],  # none of the changes below
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/none"}},
        },
    )
    entity = {"id": "urn:ngsi-ld:Building:bench", "type": "Building"}
    broker.create(context, parse_entity({**entity, "height": {"type": "Property", "value": 0}}))

    def write_all(offset: int, count: int) -> None:
        for k in range(count):
            attrs = {"height": {"type": "Property", "value": offset + k}}
            broker.merge(context, entity["id"], attrs, update=True)

    write_all(-20, 20)  # warm up: imports, caches
    results: dict[str, dict[str, float]] = {
        "with outbox": {"statements": 0, "cpu_s": 0.0},
        "without": {"statements": 0, "cpu_s": 0.0},
    }
    with context.database.transaction() as session:  # what the warm-up staged
        session.execute(text("DELETE FROM operate_notification_outbox"))
    staging = broker.stage_changes
    block = max(1, writes // 10)  # the two runs alternate in blocks, so drift hits both alike
    for start in range(0, writes, block):
        for name in ("without", "with outbox"):
            if name == "without":
                broker.stage_changes = lambda _session, _result: None  # type: ignore[assignment]
            part: dict[str, float] = {}
            with measured(statements, part):
                write_all(start * 2 + (block if name == "without" else 0), block)
            broker.stage_changes = staging  # type: ignore[assignment]
            for key, value in part.items():
                results[name][key] += value
    with context.database.session() as session:
        staged = count_waiting(session)
    results["notifier"] = {}
    with measured(statements, results["notifier"]):
        while notifier._notify_outbox(utc_now()):  # the notifier's own round
            pass
    with context.database.session() as session:
        assert count_waiting(session) == 0
    results["notifier"]["changes"] = staged
    context.database.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for store in args.stores.split(","):
            try:
                url, handle = fresh_database(store, Path(folder))
            except Exception as exc:  # PostgreSQL not running here
                print(f"{store}: skipped ({exc.__class__.__name__})")
                continue
            try:
                results = run(url, args.writes)
            finally:
                drop(handle)
            for name in ("without", "with outbox"):
                r = results[name]
                print(
                    f"{store} write {name:12}: {r['statements'] / args.writes:.2f} statements, "
                    f"{r['cpu_s'] / args.writes * 1e6:.0f} µs CPU per write"
                )
            r = results["notifier"]
            changes = max(1.0, r["changes"])
            print(
                f"{store} notifier          : {r['statements'] / changes:.3f} statements, "
                f"{r['cpu_s'] / changes * 1e6:.0f} µs CPU per change ({r['changes']:.0f} changes)"
            )


if __name__ == "__main__":
    main()
