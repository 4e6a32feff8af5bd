"""Escalation on a timer: scan every city's unclosed requests and escalate those past their SLA.

``escalate_all`` is one scan (the CLI's ``qala requests escalate``); ``EscalationTimer`` repeats it
every ``interval`` seconds in a daemon thread (``qala requests escalate --every 300``).
"""

from __future__ import annotations

import threading

from qala.components.requests311.jurisdictions import load_jurisdictions
from qala.components.requests311.sla import escalate_overdue
from qala.runtime import Context


def escalate_all(context: Context) -> dict[str, list[tuple[int, int]]]:
    """One scan over every jurisdiction; returns city code → [(request id, new level)]."""
    with context.database.session() as session:
        cities = load_jurisdictions(session)
    changed: dict[str, list[tuple[int, int]]] = {}
    for code, city in cities.items():
        with context.database.transaction() as session:
            changed[code] = escalate_overdue(session, city, now=context.clock(), bus=context.bus)
    return changed


class EscalationTimer:
    """Runs :func:`escalate_all` every ``interval`` seconds until :meth:`stop`.

    Parameters
    ----------
    context
        The platform.
    interval
        Seconds between scans (the first scan runs at once).
    on_scan
        Called with each scan's result (e.g. to log it).
    """

    def __init__(self, context: Context, *, interval: float, on_scan: object | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.context = context
        self.interval = interval
        self.on_scan = on_scan
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="requests311-escalation", daemon=True
        )

    def start(self) -> EscalationTimer:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def wait(self) -> None:
        """Block until stopped (Ctrl-C in the CLI)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def _run(self) -> None:
        while not self._stop.is_set():
            result = escalate_all(self.context)
            self.scans += 1
            if callable(self.on_scan):
                self.on_scan(result)
            self._stop.wait(self.interval)
