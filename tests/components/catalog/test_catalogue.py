"""The indicator catalogue: schema check and the shipped frameworks."""

from __future__ import annotations

import pytest

from qala.components.catalog.frameworks import CATEGORIES, load_catalogue, parse_catalogue
from qala.core.errors import ValidationError

UNITS = """
units:
  - id: percent
    name: {en: per cent, ru: процент, kk: пайыз}
    min: 0
    max: 100
"""

GOOD = """
id: demo
version: "1"
name: {en: Demo, ru: Демо, kk: Демо}
purpose: rating
areas:
  - code: demo.a
    name: {en: A, ru: А, kk: А}
    indicators:
      - id: demo.1
        name: {en: One, ru: Один, kk: Бір}
        unit: percent
        polarity: higher
        category: service
"""


def test_parse_catalogue_builds_a_tree_usable_as_index_structure() -> None:
    catalogue = parse_catalogue(UNITS, {"demo.yaml": GOOD})
    assert catalogue.framework("demo").indicator_ids() == ["demo.1"]
    tree = catalogue.index_tree("demo")
    assert tree["children"][0]["children"][0] == {
        "code": "demo.1",
        "name": "One",
        "weight": 1.0,
        "direction": 1,
    }


def test_schema_check_names_file_path_and_reason_for_every_problem() -> None:
    bad = (
        GOOD.replace("unit: percent", "unit: furlongs")
        .replace("polarity: higher", "polarity: up")
        .replace("kk: Бір", "kk: ''")
    )
    bad += """
  - code: demo.b
    name: {en: B, ru: Б, kk: Б}
    indicators:
      - use: demo.missing
"""
    with pytest.raises(ValidationError) as caught:
        parse_catalogue(UNITS, {"demo.yaml": bad})
    found = {(p.file, p.column) for p in caught.value.problems}
    assert ("demo.yaml", "areas[0].indicators[0].unit") in found
    assert ("demo.yaml", "areas[0].indicators[0].polarity") in found
    assert ("demo.yaml", "areas[0].indicators[0].name.kk") in found
    assert ("demo.yaml", "areas[1].indicators[0]") in found
    assert len(caught.value.problems) == 4


def test_duplicate_indicator_ids_across_files_are_rejected() -> None:
    other = GOOD.replace("id: demo\n", "id: other\n").replace("code: demo.a", "code: other.a")
    with pytest.raises(ValidationError, match="already defined"):
        parse_catalogue(UNITS, {"demo.yaml": GOOD, "other.yaml": other})


# --- the catalogue Qala ships ------------------------------------------------------------------

COMPUTED_BY_QALA = [
    "kz_sc.requests.median_hours_to_close",
    "kz_sc.requests.p90_hours_to_close",
    "kz_sc.requests.share_closed_within_sla",
    "kz_sc.requests.per_1000_residents",
    "kz_sc.requests.reopen_rate",
    "kz_sc.pb.turnout",
    "kz_sc.pb.proposals_per_1000",
    "kz_sc.pb.share_of_budget_decided",
    "kz_sc.projects.on_time_share",
    "kz_sc.projects.on_budget_share",
    "kz_sc.projects.satisfaction",
    "kz_sc.air.share_hours_within_norms",
    "kz_sc.incidents.per_100000",
    "kz_sc.incidents.median_minutes_to_acknowledge",
    "kz_sc.incidents.median_hours_to_resolve",
    "kz_sc.sensors.availability",
]


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return load_catalogue()


def test_shipped_frameworks_are_all_there(shipped) -> None:  # type: ignore[no-untyped-def]
    for framework in (
        "iso37120",
        "iso37122",
        "iso37123",
        "kz_smart_city",
        "adoption_factors",
        "chourabi2012",
        "wgi",
    ):
        assert framework in shipped.frameworks, framework
    assert len(shipped.framework("iso37120").areas()) == 19
    assert len(shipped.framework("adoption_factors").areas()) == 6
    assert len(shipped.framework("chourabi2012").areas()) == 8
    assert len(shipped.framework("wgi").areas()) == 6


def test_national_rating_has_eleven_areas_and_an_ict_block(shipped) -> None:  # type: ignore[no-untyped-def]
    national = shipped.framework("kz_smart_city")
    assert len(national.areas()) >= 11
    assert len(national.indicator_ids()) >= 110
    categories = {shipped.indicators[i].category for i in national.indicator_ids()}
    assert categories == set(CATEGORIES)


def test_indicators_computed_by_qala_are_in_the_catalogue(shipped) -> None:  # type: ignore[no-untyped-def]
    national = set(shipped.framework("kz_smart_city").indicator_ids())
    for indicator_id in COMPUTED_BY_QALA:
        assert indicator_id in national, indicator_id


def test_every_indicator_has_three_languages_and_a_known_unit(shipped) -> None:  # type: ignore[no-untyped-def]
    for ind in shipped.indicators.values():
        assert all(ind.names.get(lang) for lang in ("kk", "ru", "en")), ind.id
        assert ind.unit in shipped.units, ind.id


def test_search_finds_indicators_in_any_language(shipped) -> None:  # type: ignore[no-untyped-def]
    assert any(i.id == "kz_sc.pb.turnout" for i in shipped.search("kz_sc.pb"))
    assert shipped.search("бюджет"), "Russian text should be searchable"
