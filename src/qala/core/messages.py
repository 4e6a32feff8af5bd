"""Text that Qala generates, kept as a message id and its parameters until a reader is known.

Engines and components return :class:`Message` values instead of English sentences; the shells
(web pages, API error bodies, PDF reports, CLI) render them in the reader's language through the
catalogues (``qala.web.i18n.Translator.message``). A parameter may itself be a ``Message`` (a
category, a unit, a reason) and is rendered first, in the same language; a ``{"kk": …, "ru": …,
"en": …}`` mapping is a name given in each language and shows the reader's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """A message id of the catalogues (``balance.tension``) and the values it names."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for storage: ``{"key": ..., "params": {...}}`` (nested messages too)."""
        return {
            "key": self.key,
            "params": {
                k: v.as_dict() if isinstance(v, Message) else v for k, v in self.params.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        params: dict[str, Any] = {}
        for name, value in dict(data.get("params") or {}).items():
            is_message = isinstance(value, Mapping) and set(value) == {"key", "params"}
            params[name] = cls.from_dict(value) if is_message else value
        return cls(str(data["key"]), params)


def msg(key: str, /, **params: Any) -> Message:
    """Shorthand: ``msg("balance.tension", high=msg("category.infrastructure"), ...)``."""
    return Message(key, params)
