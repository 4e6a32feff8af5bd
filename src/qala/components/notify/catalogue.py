"""The notification texts (``messages.yaml``) in the resident's language, and the small
formatting they need (dates, tenge)."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from qala.core.yamltext import load_yaml

LANGUAGES = ("kk", "ru", "en")
CATALOGUE = Path(__file__).parent / "messages.yaml"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    data = load_yaml(CATALOGUE.read_text(encoding="utf-8"))
    return {language: dict(data[language]) for language in LANGUAGES}


def language_of(value: str | None, default: str = "ru") -> str:
    """``value`` when Qala speaks it, else ``default``."""
    return value if value in LANGUAGES else (default if default in LANGUAGES else "ru")


def text(language: str, key: str, **values: Any) -> str:
    """The message ``key`` in ``language`` with ``values`` filled in."""
    return catalogue()[language_of(language)][key].format(**values)


def name_in(names: dict[str, Any] | None, language: str) -> str:
    """A kk/ru/en name in ``language``, else in Russian, else any given."""
    names = names or {}
    for candidate in (language, "ru", "kk", "en"):
        if names.get(candidate):
            return str(names[candidate])
    return next((str(v) for v in names.values() if v), "")


def day(value: date | str) -> str:
    """A date as residents in Kazakhstan write it (dd.mm.yyyy)."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return value.strftime("%d.%m.%Y")


def tenge(amount: int) -> str:
    """A sum of tenge grouped by thousands with no-break spaces (1 250 000)."""
    return f"{amount:,}".replace(",", "\u00a0")
