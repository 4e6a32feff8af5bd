"""The catalogues are complete and really translated, and their plurals follow CLDR."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from qala.core.messages import Message, msg
from qala.web.i18n import PLURAL_CATEGORIES, Translator, load_translations, plural_category

# Reviewed: ids whose Kazakh or Russian text is rightly the same as the English one (proper
# names, codes, formulas). Anything else identical to English is an untranslated message.
SAME_AS_ENGLISH = {
    "app.name",  # the product's name
    "pb.tech.number",  # "{name} = {value}": a formula
}
# Placeholders that carry a count, so the words next to them must agree with it.
COUNTS = ("n", "count", "points", "ballots", "votes", "projects", "places", "values")


def test_no_message_id_is_missing_in_kazakh_or_russian() -> None:
    table = load_translations()
    for language in ("kk", "ru"):
        missing = sorted(set(table["en"]) - set(table[language]))
        assert not missing, f"{language} lacks {missing}"
        extra = sorted(set(table[language]) - set(table["en"]))
        assert not extra, f"{language} has ids English lacks: {extra}"


def test_no_message_is_left_in_english() -> None:
    table = load_translations()
    for language in ("kk", "ru"):
        same = sorted(
            key
            for key, entry in table[language].items()
            if key not in SAME_AS_ENGLISH and entry == table["en"][key]
        )
        assert not same, f"{language} repeats the English text of {same}"


def test_the_allow_list_only_names_ids_that_exist() -> None:
    assert set(load_translations()["en"]) >= SAME_AS_ENGLISH


def test_plural_entries_have_exactly_the_languages_cldr_categories() -> None:
    assert PLURAL_CATEGORIES["ru"] == ("few", "many", "one", "other")
    assert PLURAL_CATEGORIES["kk"] == ("one", "other")
    table = load_translations()
    for language, entries in table.items():
        for key, entry in entries.items():
            if isinstance(entry, dict):
                assert tuple(sorted(entry)) == PLURAL_CATEGORIES[language], (language, key)
            if isinstance(table["en"].get(key), dict):
                assert isinstance(entry, dict), f"{language} {key} must be a plural entry"


def test_a_counted_word_in_russian_is_a_plural_entry() -> None:
    """ "{n} значений" in a plain text is wrong for 1, 2 and 21; such texts must be plurals."""
    # A preposition after the number ("{n} из {total}") or an abbreviation ("{n} тыс.")
    # does not change with it.
    counts = "|".join(COUNTS)
    pattern = re.compile(r"\{(" + counts + r")\} (?!(из|в|по|на|и) |тыс\.)[а-яё]")
    flat = [
        key
        for key, entry in load_translations()["ru"].items()
        if isinstance(entry, str) and pattern.search(entry)
    ]
    assert not flat, flat


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (1, "значение принято"),
        (2, "значения принято"),
        (5, "значений принято"),
        (11, "значений принято"),
        (21, "значение принято"),
        (22, "значения принято"),
        (1.5, "значения принято"),
    ],
)
def test_russian_plurals_agree_with_the_number(count: float, text: str) -> None:
    assert Translator("ru")("admin.accepted", count=count) == text


def test_cldr_categories_for_russian_and_kazakh() -> None:
    assert [plural_category("ru", n) for n in (1, 3, 5, 11, 21, 104)] == [
        "one",
        "few",
        "many",
        "many",
        "one",
        "few",
    ]
    assert [plural_category("kk", n) for n in (1, 2, 5)] == ["one", "other", "other"]
    assert Translator("en")("rating.caption", n=1) == "1 place, best first"
    assert Translator("en")("rating.caption", n=3) == "3 places, best first"


def test_numbers_and_money_follow_the_locale() -> None:
    assert Translator("ru").number(1234567.5) == "1\xa0234\xa0568"
    assert Translator("en").number(1234.25, 1) == "1,234"
    assert Translator("ru").number(0.226, 2) == "0,23"
    assert Translator("en").money(47_200_000, short=True) == "47.2M\xa0₸"
    assert Translator("ru").money(47_200_000, short=True) == "47,2\xa0млн\xa0₸"
    assert Translator("kk").money(1234) == "1\xa0234\xa0₸"


def test_times_are_shown_in_the_places_zone_and_name_it() -> None:
    filed = datetime(2026, 12, 5, 20, 15, tzinfo=UTC)
    assert Translator("ru").when(filed) == "6 дек. 2026, 01:15 (время Казахстана, UTC+5)"
    assert "01:15" in Translator("kk").when(filed.replace(tzinfo=None))  # stored naive = UTC
    assert "Қазақстан уақыты" in Translator("kk").when(filed)
    assert "(Kazakhstan time, UTC+5)" in Translator("en").when(filed)
    assert Translator("en", zone="Europe/Moscow").when(filed).startswith("5 Dec 2026, 23:15")


def test_messages_render_nested_parameters_in_the_readers_language() -> None:
    label = msg("admin.accepted", count=msg("no.such.key"))
    assert Message.from_dict(label.as_dict()) == label
    assert Translator("ru").message(msg("rating.caption", n=3)) == "3 места, лучшие сверху"
    assert Translator("ru").message("as supplied") == "as supplied"


def test_incident_titles_follow_the_routing_policy() -> None:
    """Pages translate an incident's title when it is the policy's English title for its
    category, so the English catalogue must say exactly what the policy says."""
    from importlib import resources

    from qala.core.yamltext import load_yaml

    text = (resources.files("qala.components.operate") / "data" / "routing.yaml").read_text()
    categories = load_yaml(text)["categories"]
    english = load_translations()["en"]
    for category, rule in categories.items():
        assert english.get(f"incident.title.{category}") == rule["title"], category


def test_core_and_settings_agree_on_the_languages() -> None:
    from qala.core import i18n
    from qala.settings import LANGUAGES

    assert i18n.LANGUAGES == LANGUAGES
