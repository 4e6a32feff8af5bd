from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import given, strategies as st

from qala.web.i18n import Translator, choose_language, load_translations, parse_accept_language

WEB = Path(__file__).resolve().parents[2] / "src" / "qala" / "web"


def test_accept_language_picks_the_best_supported_language() -> None:
    assert parse_accept_language("de-DE,de;q=0.9,ru;q=0.8,en;q=0.5") == "ru"
    assert parse_accept_language("en-US,en;q=0.9,kk;q=0.95") == "en"  # q=1 beats 0.95
    assert parse_accept_language("kk-KZ;q=0.4, ru;q=0.3") == "kk"
    assert parse_accept_language("fr, de") is None
    assert parse_accept_language("ru;q=0") is None
    assert parse_accept_language("") is None


def test_query_beats_cookie_beats_browser_beats_default() -> None:
    assert choose_language("kk", "ru", "en", "ru") == "kk"
    assert choose_language(None, "ru", "en", "kk") == "ru"
    assert choose_language("xx", None, "en-GB", "ru") == "en"
    assert choose_language(None, "xx", None, "kk") == "kk"


@given(st.text(max_size=80))
def test_any_header_gives_a_supported_language_or_none(header: str) -> None:
    assert parse_accept_language(header) in (None, "kk", "ru", "en")


def _forms(entry: str | dict[str, str]) -> list[str]:
    return list(entry.values()) if isinstance(entry, dict) else [entry]


def test_every_language_has_every_key_and_the_same_placeholders() -> None:
    table = load_translations()
    keys = set(table["en"])
    for language in ("kk", "ru"):
        assert set(table[language]) == keys, language
        for key in keys:
            wanted = set().union(*(re.findall(r"{(\w+)}", f) for f in _forms(table["en"][key])))
            for form in _forms(table[language][key]):
                # A plural form may leave the number out ("одно значение"), nothing else.
                assert set(re.findall(r"{(\w+)}", form)) - {"n", "count"} <= wanted, (language, key)
                assert wanted - set(re.findall(r"{(\w+)}", form)) <= {"n", "count"}, (language, key)


def test_every_key_the_templates_use_is_translated() -> None:
    used: set[str] = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("pages/*.py"), WEB / "data.py"]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_]+\.[a-z0-9_.]+)["']""", path.read_text()))
    used = {key for key in used if not key.endswith("_")}  # prefixes completed at run time
    missing = used - set(load_translations()["en"])
    assert not missing


def test_translation_files_are_flat_mappings_of_text() -> None:
    for language in ("kk", "ru", "en"):
        data = yaml.safe_load(
            (WEB / "translations" / f"{language}.yaml").read_text(encoding="utf-8")
        )
        for key, value in data.items():
            forms = value.values() if isinstance(value, dict) else [value]
            assert all(isinstance(v, str) and v.strip() for v in forms), (language, key)


def test_translator_formats_and_falls_back() -> None:
    ru = Translator("ru")
    assert ru("rating.caption", n=5) == "5 мест, лучшие сверху"
    assert ru("no.such.key") == "no.such.key"
    assert Translator("kk").name({"kk": "Астана", "en": "Astana"}) == "Астана"
    assert Translator("ru").name({"en": "Astana"}) == "Astana"
