"""In-process event bus: components talk through events and ids, never by importing each other.

A component publishes ``Event("requests311.closed", {...})``; another subscribed to that name reacts.
Handlers run synchronously in publish order, so a handler failing surfaces to the publisher.

A change can also be announced *inside* its transaction (:meth:`EventBus.publish_in_transaction`):
those handlers get the publisher's session and write in the same unit of work, so what they write
(e.g. the notifications outbox) commits or rolls back with the change itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    name: str
    payload: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Event], None]
TransactionHandler = Callable[[Any, Event], None]
"""Called with the publisher's session (a SQLAlchemy ``Session``) and the event."""

BUS_KEY = "qala.bus"
"""Where a context's sessions carry its bus in ``session.info`` (see ``Context``)."""


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._in_transaction: dict[str, list[TransactionHandler]] = defaultdict(list)

    def subscribe(self, name: str, handler: Handler) -> None:
        """Call ``handler`` for every event called ``name`` (``"*"`` for every event)."""
        self._handlers[name].append(handler)

    def publish(self, event: Event) -> None:
        for handler in [*self._handlers.get(event.name, []), *self._handlers.get("*", [])]:
            handler(event)

    def subscribe_in_transaction(self, name: str, handler: TransactionHandler) -> None:
        """Call ``handler(session, event)`` for every ``name`` announced inside a transaction."""
        self._in_transaction[name].append(handler)

    def publish_in_transaction(self, session: Any, event: Event) -> None:
        """Let in-transaction subscribers write with ``session`` before it commits; an error
        raised by one rolls the publisher's change back with it."""
        for handler in self._in_transaction.get(event.name, []):
            handler(session, event)


def publish_in_transaction(session: Any, event: Event, bus: EventBus | None = None) -> None:
    """Announce ``event`` inside ``session``'s transaction on ``bus``, or on the bus the session
    was opened with (``session.info``); nothing when it has none."""
    target = bus if bus is not None else session.info.get(BUS_KEY)
    if isinstance(target, EventBus):
        target.publish_in_transaction(session, event)
