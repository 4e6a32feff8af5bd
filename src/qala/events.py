"""In-process event bus: components talk through events and ids, never by importing each other.

A component publishes ``Event("requests311.closed", {...})``; another subscribed to that name reacts.
Handlers run synchronously in publish order, so a handler failing surfaces to the publisher.
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


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, name: str, handler: Handler) -> None:
        """Call ``handler`` for every event called ``name`` (``"*"`` for every event)."""
        self._handlers[name].append(handler)

    def publish(self, event: Event) -> None:
        for handler in [*self._handlers.get(event.name, []), *self._handlers.get("*", [])]:
            handler(event)
