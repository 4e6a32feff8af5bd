"""Residents told what happened: notifications through a transactional outbox.

Changes announced inside their transaction (``qala.events.publish_in_transaction``: a request
received or changing status, a ballot cast, a followed project's milestone or payment, a
consultation's outcome) become messages in ``notify_outbox`` written with the change; a sender
delivers them by e-mail (SMTP) or SMS (an HTTP gateway) with retries and back-off — inside
`qala serve`, or as `qala notify worker`. Residents choose channels and follows on
``/notifications``; each message carries a signed unsubscribe link.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent
STARTED = "notify.subscribed"


def _startup(context: Context) -> None:
    if context.extras.get(STARTED):
        return
    context.extras[STARTED] = True
    from qala.components.notify.outbox import subscribe_handlers

    subscribe_handlers(context, context.bus)


COMPONENT = ComponentSpec(
    name="notify",
    migrations=HERE / "migrations",
    on_startup=_startup,
)
