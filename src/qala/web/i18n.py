"""Languages of the dashboard: Kazakh, Russian and English.

The language of a page is chosen, in order, by ``?lang=kk|ru|en`` (then remembered in the
``qala_lang`` cookie), the cookie, the browser's ``Accept-Language`` header, and finally the
platform's default language. UI strings live in ``translations/<lang>.yaml`` (flat keys); catalogue
names (places, indicators, services) come from the catalogue itself, which is trilingual.

The catalogues and the :class:`Translator` (plurals, numbers, money, times) are in
:mod:`qala.core.i18n`, shared with the components.
"""

from __future__ import annotations

from qala.core.i18n import (
    PLURAL_CATEGORIES as PLURAL_CATEGORIES,
    Entry as Entry,
    Translator as Translator,
    load_translations as load_translations,
    parse_accept_language as parse_accept_language,
    plural_category as plural_category,
)
from qala.settings import LANGUAGES

LANGUAGE_COOKIE = "qala_lang"
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


def choose_language(
    query: str | None, cookie: str | None, accept_language: str | None, default: str
) -> str:
    """The page language from the query, the cookie, the browser, then the default."""
    for candidate in (query, cookie):
        if candidate and candidate.lower() in LANGUAGES:
            return candidate.lower()
    return parse_accept_language(accept_language) or default
