"""City and indicator pages say of every value whether it is official, observed, illustrative or
reported, and where official and observed values come from (publisher, table, release), in kk, ru
and en."""

from __future__ import annotations

import csv
import gzip
import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qala.runtime import Context
from qala.settings import Settings


@pytest.fixture(scope="module")
def site(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Context, object]]:
    from qala.api.app import create_app
    from qala.components.catalog.air import AIR_FOLDER, load_air_quality
    from qala.components.catalog.official import load_official
    from qala.components.catalog.sample import load_sample_data

    folder = tmp_path_factory.mktemp("kinds")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="kinds")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    load_sample_data(context.database, years=range(2022, 2024))
    load_official(context.database)
    # A hand-made AirData.kz file: Taraz, PM2.5 every day of 2023 at 20 µg/m³.
    air = folder / "shared" / AIR_FOLDER
    air.mkdir(parents=True)
    with gzip.open(air / "daily_pm2_5_long.csv.gz", "wt", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["place", "year", "date", "indicator", "value", "unit"])
        for day in range(365):
            when = (date(2023, 1, 1) + timedelta(days=day)).isoformat()
            writer.writerow(["Taraz", 2023, when, "pm2_5", "20.00", "µg/m³"])
    load_air_quality(context.database, folder / "shared")
    yield context, app
    context.database.dispose()


def page(site: tuple[Context, object], path: str, language: str = "en") -> str:
    client = TestClient(site[1], headers={"accept": "text/html"})  # type: ignore[arg-type]
    response = client.get(f"{path}{'&' if '?' in path else '?'}lang={language}")
    assert response.status_code == 200, response.text[:500]
    return response.text


def row_of(html: str, name: str) -> str:
    found = re.search(rf"<tr><th scope=\"row\">(?:<a [^>]*>)?{re.escape(name)}.*?</tr>", html, re.S)
    assert found, f"no row for {name}"
    return found.group(0)


def test_indicator_page_labels_each_value_with_kind_and_source(site) -> None:
    html = page(site, "/indicators/iso37120.5.1?year=2022")
    astana = row_of(html, "Astana")
    assert 'class="badge kind-official"' in astana
    assert "Bureau of National Statistics" in astana
    assert "Publisher" in astana and "Release" in astana
    # Cities BNS does not publish unemployment for keep their generated value, labelled so.
    temirtau = row_of(html, "Temirtau")
    assert 'class="badge kind-illustrative"' in temirtau
    assert "Bureau of National Statistics" not in temirtau


def test_observed_air_quality_names_airdata_and_its_licence(site) -> None:
    taraz = row_of(page(site, "/indicators/iso37120.8.1?year=2023"), "Taraz")
    assert 'class="badge kind-observed"' in taraz
    assert "AirData.kz" in taraz and "CC BY-NC 4.0" in taraz


@pytest.mark.parametrize(
    ("language", "official", "publisher", "population"),
    [
        ("en", "official", "Publisher", "Population: "),
        ("ru", "официальные", "Издатель", "Население: "),
        ("kk", "ресми", "Жариялаушы", "Халық саны: "),
    ],
)
def test_city_page_shows_official_values_and_population_source(
    site, language: str, official: str, publisher: str, population: str
) -> None:
    html = page(site, "/cities/astana", language)
    table = html[html.index('id="sourced-table"') :]
    assert f'class="badge kind-official">{official}</span>' in table
    assert publisher in table
    assert "BNS demographic dynamic table: life expectancy at birth, both sexes" in table
    # Astana's 2023 population as the BNS bulletin prints it, with its source.
    # The source cited as the publisher wrote it, beside the figure.
    assert population + "<cite>Bureau of National Statistics" in html
