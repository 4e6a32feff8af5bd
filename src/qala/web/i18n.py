"""Languages of the dashboard: Kazakh, Russian and English.

The language of a page is chosen, in order, by ``?lang=kk|ru|en`` (then remembered in the
``qala_lang`` cookie), the cookie, the browser's ``Accept-Language`` header, and finally the
platform's default language. UI strings live in ``translations/<lang>.yaml`` (flat keys); catalogue
names (places, indicators, services) come from the catalogue itself, which is trilingual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from qala.core.yamltext import load_yaml
from qala.settings import LANGUAGES

LANGUAGE_COOKIE = "qala_lang"
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


@lru_cache(maxsize=1)
def load_translations() -> dict[str, dict[str, str]]:
    """Every language's UI strings, ``{lang: {key: text}}``, read once from the package."""
    folder = resources.files("qala.web") / "translations"
    found: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        text = (folder / f"{language}.yaml").read_text(encoding="utf-8")
        found[language] = {str(k): str(v) for k, v in (load_yaml(text) or {}).items()}
    return found


def parse_accept_language(header: str | None) -> str | None:
    """The best supported language in an ``Accept-Language`` header (RFC 9110 q-values)."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def choose_language(
    query: str | None, cookie: str | None, accept_language: str | None, default: str
) -> str:
    """The page language from the query, the cookie, the browser, then the default."""
    for candidate in (query, cookie):
        if candidate and candidate.lower() in LANGUAGES:
            return candidate.lower()
    return parse_accept_language(accept_language) or default


@dataclass(frozen=True)
class Translator:
    """UI strings in one language, falling back to English and then to the key itself."""

    language: str

    def __call__(self, key: str, **values: Any) -> str:
        table = load_translations()
        text = table[self.language].get(key) or table["en"].get(key) or key
        if values:
            try:
                return text.format(**values)
            except (KeyError, IndexError, ValueError):
                return text
        return text

    def name(self, names: Mapping[str, str] | Any) -> str:
        """The name in this language from a ``{kk, ru, en}`` mapping or an object with
        ``name_kk``/``name_ru``/``name_en`` attributes or a ``name(language)`` method."""
        if isinstance(names, Mapping):
            return str(
                names.get(self.language) or names.get("en") or next(iter(names.values()), "")
            )
        method = getattr(names, "name", None)
        if callable(method):
            return str(method(self.language))
        return str(getattr(names, f"name_{self.language}", None) or getattr(names, "name_en", ""))
