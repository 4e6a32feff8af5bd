"""Qala's words in Kazakh, Russian and English: the catalogues and the translator.

The catalogues are the flat YAML files ``qala/web/translations/<lang>.yaml`` (they live with the
pages' templates, where most keys are used); this module reads them as data files, so that
components (Open311 error descriptions, e-mails) and shells render the same messages.

A key whose value is a mapping is a plural entry keyed by CLDR plural categories
(``one``/``few``/``many``/``other`` for Russian, ``one``/``other`` for Kazakh and English); the
category comes from Babel's CLDR rules for the number passed as ``count`` (or ``n``). Numbers,
money (₸) and times are formatted by Babel in the reader's locale; times in the place's zone, with
the zone named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as babel_date, format_datetime as babel_datetime
from babel.numbers import format_compact_decimal, format_decimal

from qala.core.errors import QalaError
from qala.core.messages import Message
from qala.core.yamltext import load_yaml

LANGUAGES = ("kk", "ru", "en")
"""The catalogues' languages (``qala.settings.LANGUAGES`` says the same; core and settings are
siblings that may not import each other, and a test keeps the two equal)."""

CATALOGUES = Path(__file__).resolve().parents[1] / "web" / "translations"
"""Where the catalogues are (read as data files: no import of the web shell)."""

Entry = str | dict[str, str]
"""A catalogue value: a text, or plural forms keyed by CLDR category."""

PLURAL_CATEGORIES = {
    language: tuple(sorted(Locale.parse(language).plural_form.tags | {"other"}))
    for language in LANGUAGES
}
"""The CLDR plural categories each language needs (ru: few, many, one, other; kk, en: one, other)."""


def _entry(value: Any) -> Entry:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return str(value)


@lru_cache(maxsize=1)
def load_translations() -> dict[str, dict[str, Entry]]:
    """Every language's UI strings, ``{lang: {key: text or plural forms}}``, read once."""
    found: dict[str, dict[str, Entry]] = {}
    for language in LANGUAGES:
        text = (CATALOGUES / f"{language}.yaml").read_text(encoding="utf-8")
        found[language] = {str(k): _entry(v) for k, v in (load_yaml(text) or {}).items()}
    return found


def plural_category(language: str, count: float) -> str:
    """CLDR's plural category of ``count`` in ``language`` (ru: 1 one, 3 few, 5 many, 1.5 other)."""
    return str(Locale.parse(language).plural_form(abs(count)))


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


@dataclass(frozen=True)
class Translator:
    """UI strings in one language, falling back to English and then to the key itself.

    ``zone`` is the IANA zone times are shown in (the place's; Kazakhstan: Asia/Almaty).
    """

    language: str
    zone: str = "Asia/Almaty"

    def __call__(self, key: str, **values: Any) -> str:
        table = load_translations()
        entry = table[self.language].get(key) or table["en"].get(key) or key
        if isinstance(entry, dict):
            count = values.get("count", values.get("n", 0))
            try:
                category = plural_category(self.language, float(count))
            except (TypeError, ValueError):
                category = "other"
            entry = entry.get(category) or entry.get("other") or key
        if values:
            shown = {k: self._value(v) for k, v in values.items()}
            try:
                return entry.format(**shown)
            except (KeyError, IndexError, ValueError):
                return entry
        return entry

    def _value(self, value: Any) -> Any:
        if isinstance(value, Message):
            return self.message(value)
        if isinstance(value, Mapping) and value and set(value) <= {"kk", "ru", "en"}:
            return self.name(value)  # a name given in each language (a unit's, a place's)
        if isinstance(value, list | tuple):
            return "; ".join(str(self._value(v)) for v in value)
        if isinstance(value, float):
            return self.number(value, 2 if abs(value) < 1 else 1)
        if isinstance(value, datetime):
            return self.when(value)
        if value is None:
            return "—"
        return value

    def known(self, key: str, fallback: str) -> str:
        """``key``'s text when the catalogues have it, else ``fallback`` as it is (a category
        a resident typed, a status a newer version added)."""
        table = load_translations()
        return self(key) if key in table[self.language] or key in table["en"] else fallback

    def message(self, message: Message | str | None) -> str:
        """A generated message (id and parameters) in this language; plain text as it is."""
        if message is None:
            return ""
        if isinstance(message, str):
            return message
        return self(message.key, **dict(message.params))

    def stored_message(self, data: Mapping[str, Any] | None, fallback: str = "") -> str:
        """A message kept in its JSON form (:meth:`Message.as_dict`) in this language, else
        ``fallback`` (a text written before messages were kept, or typed by a person)."""
        if not data:
            return fallback
        return self.message(Message.from_dict(data))

    def problem(self, problem: Any) -> str:
        """One input problem (a ``Problem`` or its ``as_dict()``) for this reader: its message
        when it has one, else its reason as written."""
        get = problem.get if isinstance(problem, Mapping) else lambda k: getattr(problem, k, None)
        message = get("message")
        if isinstance(message, Mapping):
            message = Message.from_dict(message)
        return self.message(message) if isinstance(message, Message) else str(get("reason"))

    def error(self, error: QalaError) -> str:
        """What a refused action's error says, for this reader: each listed problem's message,
        else the error's own message, else its text as raised (nothing is hidden)."""
        problems = getattr(error, "problems", None)
        if problems:
            return "; ".join(self.problem(p) for p in problems)
        return self.message(error.message) if error.message is not None else str(error)

    def plural(self, key: str, count: float, **values: Any) -> str:
        """``key``'s plural form for ``count`` (``{count}`` in the text is the number)."""
        return self(key, count=count, **values)

    # -- numbers, money and times in the reader's locale
    def number(self, value: Any, digits: int = 1) -> str:
        """A number with the locale's separators (1 234,5 in kk/ru; 1,234.5 in en)."""
        if value is None:
            return "—"
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        if number != number:  # NaN
            return "—"
        if isinstance(value, int) or abs(number) >= 1000:
            digits = 0
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(number, format=pattern, locale=self.language)

    def money(self, value: Any, *, short: bool = False) -> str:
        """Tenge: ``47 200 000 ₸``, or ``47,2 млн ₸`` with ``short``."""
        if value is None:
            return "—"
        try:
            amount = float(value)
        except (TypeError, ValueError):
            return str(value)
        if short and abs(amount) >= 1_000_000:
            text = format_compact_decimal(amount, locale=self.language, fraction_digits=1)
        else:
            text = format_decimal(round(amount), format="#,##0", locale=self.language)
        return f"{text}\u00a0₸"

    def local(self, value: datetime) -> datetime:
        """``value`` in this reader's zone (a naive value is UTC, as the store keeps it)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(ZoneInfo(self.zone))

    def zone_name(self, value: datetime | None = None) -> str:
        """The zone named for readers: ``Kazakhstan time, UTC+5`` in their language."""
        moment = self.local(value or datetime.now(UTC))
        offset = moment.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        sign = "+" if minutes >= 0 else "-"
        hours, rest = divmod(abs(minutes), 60)
        utc = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
        named = self("time.zone." + self.zone)
        if named == "time.zone." + self.zone:
            named = self.zone
        return f"{named}, {utc}"

    def when(self, value: datetime | date | None, *, zone: bool = True) -> str:
        """A date and time in the reader's zone and locale, the zone named (``6 дек. 2026,
        01:15 (время Казахстана, UTC+5)``); a date alone as a date."""
        if value is None:
            return "—"
        if not isinstance(value, datetime):
            return babel_date(value, format="medium", locale=self.language)
        moment = self.local(value)
        text = babel_datetime(moment, "d MMM y, HH:mm", locale=self.language)
        return f"{text} ({self.zone_name(moment)})" if zone else text

    def day(self, value: datetime | date | None) -> str:
        """The date (in the reader's zone when a time is given)."""
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = self.local(value).date()
        return babel_date(value, format="medium", locale=self.language)

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
