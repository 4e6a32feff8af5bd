"""Operate's gauges on ``/metrics``, read when scraped: the subscription notifications waiting
to go out (the outbox) and the dead letters stored (what an operator must look at)."""

from __future__ import annotations

import math

from qala.runtime import Context


def register_gauges(context: Context) -> None:
    metrics = context.metrics()

    def notifications_pending() -> float:
        from qala.components.operate.outbox import count_waiting

        try:
            with context.database.session() as session:
                return float(count_waiting(session))
        except Exception:  # the database is down: /readyz says so; the scrape still answers
            return math.nan

    def dead_letters_stored() -> float:
        from qala.components.operate.dead_letters import count_dead_letters

        try:
            with context.database.session() as session:
                return float(count_dead_letters(session))
        except Exception:  # the database is down: /readyz says so; the scrape still answers
            return math.nan

    metrics.gauge(
        "qala_notifications_pending",
        "NGSI-LD notifications waiting in the outbox: entity changes, failed deliveries to retry.",
        notifications_pending,
    )
    metrics.gauge(
        "qala_dead_letters_stored",
        "Refused messages kept in the dead letters (qala operate dead-letters).",
        dead_letters_stored,
    )
