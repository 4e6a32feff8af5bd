"""Official data: every row of every file accounted for, populations as BNS prints them, official
values kept apart from illustrative ones, unknown places reported, loading twice changes nothing."""

from __future__ import annotations

import csv
import gzip
import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from tests.conftest import SHARED_DATA, shared_file

from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import (
    ImportBatch,
    IndicatorValue,
    OfficialPopulation,
    OfficialSeries,
    Place,
    PlacePopulation,
)
from qala.components.catalog.official import (
    LOADER,
    check_sources,
    load_official,
    load_sources,
)
from qala.components.catalog.places import load_gazetteer
from qala.components.catalog.sample import generate_sample
from qala.components.catalog.services import (
    import_frame,
    population,
    population_record,
    value_kind,
    value_provenance,
    values_frame,
)
from qala.store.database import Database

BUNDLED = Path(__file__).resolve().parents[3] / "src/qala/components/catalog/data/official"

# The figures printed in the BNS bulletin of 1 January 2023 (sheet 03) and in table 6584.
BULLETIN_2023 = {
    "astana": 1_354_435,  # Астана қаласы (a city of republican significance: a region-level row)
    "karaganda": 515_819,  # Қарағанды қ.ә. (city administration); city proper 515,625
    "temirtau": 177_628,  # Теміртау қ.ә.; city proper (Теміртау қаласы) 171,890
}


def _snapshot(database: Database) -> dict[str, object]:
    with database.session() as session:
        values = values_frame(session)
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (IndicatorValue, OfficialSeries, OfficialPopulation, PlacePopulation)
        }
        # Batches of the official loader (the illustrative imports add their own).
        counts["import_batch"] = session.scalar(
            select(func.count()).select_from(ImportBatch).where(ImportBatch.imported_by == LOADER)
        )
        populations = sorted(
            session.execute(
                select(PlacePopulation.place_id, PlacePopulation.year, PlacePopulation.population)
            ).all()
        )
    return {"values": values, "counts": counts, "populations": populations}


def test_the_mapping_files_are_sound() -> None:
    sources = load_sources()
    codes = {p.code for p in load_gazetteer().places}
    assert check_sources(sources, load_catalogue(), codes) == []
    # Each kz_bns indicator is fed by a series or computed: no empty official indicator.
    fed = {r.indicator for r in sources.series} | {d.indicator for d in sources.derived}
    assert set(load_catalogue().framework("kz_bns").indicator_ids()) <= fed
    # Every kept-out place of places.csv says why.
    assert all(m.code or m.note for m in sources.places.values())


def test_each_city_of_the_bulletin_lies_in_the_region_the_bulletin_names() -> None:
    """places.csv maps a printed city name to a code; the code's region must be the region
    under which the bulletin prints the city (a wrong match would show up here)."""
    sources = load_sources()
    places = load_gazetteer().by_code()
    dataset = "bns_population_settlements_2023"
    text = gzip.decompress((BUNDLED / f"{dataset}.csv.gz").read_bytes()).decode()
    checked = 0
    for row in csv.DictReader(text.splitlines()):
        mapping = sources.places.get((dataset, row["place"]))
        if (
            row["source_sheet"] != "03"
            or mapping is None
            or mapping.figure in ("country", "region")
        ):
            continue
        if not mapping.code or row["indicator"] != "population_total":
            continue
        region = row["subgroup"].split("parent region:")[1].strip()
        assert places[mapping.code].parent_code == sources.places[(dataset, region)].code, row
        checked += 1
    assert checked == 82  # 37 city administrations, 37 cities proper, 8 towns


def test_official_data_load_accounts_for_every_row_and_is_idempotent(database_url: str) -> None:
    database = Database(database_url)
    sample = generate_sample(years=[2022, 2023], frameworks=["iso37120"])
    import_frame(database, sample, file="sample", illustrative=True)

    report = load_official(database)

    for file in report.files:
        assert file.rows_read > 0, file.dataset
        assert file.rows_accounted == file.rows_read, file.as_dict()
        assert file.problems == [], file.as_dict()
    assert report.file("bns_regional_indicators").values_mapped == 5940
    assert report.file("wb_wgi_kazakhstan").values_mapped == 300
    assert report.file("bns_population_settlements_2023").population_figures == 103
    assert report.derived["qala.physicians_per_100000"] == 348

    with database.session() as session:
        ids = dict(session.execute(select(Place.code, Place.id)).all())
        for code, figure in BULLETIN_2023.items():
            assert population(session, ids[code], 2023) == figure, code
        temirtau_source = session.get(PlacePopulation, (ids["temirtau"], 2023)).source
        assert "city administration (қ.ә." in temirtau_source
        assert "city proper (қаласы) 171,890" in temirtau_source
        # Both city figures are kept, and the two regional measures stay apart.
        measures = dict(
            session.execute(
                select(OfficialPopulation.measure, OfficialPopulation.population).where(
                    OfficialPopulation.place_id == ids["temirtau"]
                )
            ).all()
        )
        assert measures == {"city_administration": 177_628, "city_proper": 171_890}
        astana = dict(
            session.execute(
                select(OfficialPopulation.measure, OfficialPopulation.population).where(
                    OfficialPopulation.place_id == ids["astana"],
                    OfficialPopulation.year == 2023,
                )
            ).all()
        )
        assert astana == {
            "bulletin": 1_354_435,
            "start_of_year": 1_354_507,
            "annual_average": 1_392_332,
        }
        # GeoNames figures are gone where BNS has a figure, and stay where it has none.
        sources = session.scalars(
            select(PlacePopulation.source).where(PlacePopulation.place_id == ids["temirtau"])
        ).all()
        assert not any(s.startswith("GeoNames") for s in sources)

    values = _snapshot(database)["values"]
    assert isinstance(values, pd.DataFrame)
    official = values[values["official"]]
    assert not (official["illustrative"]).any()
    assert set(official["indicator"]) >= {"iso37120.5.1", "iso37120.11.1", "wgi.cc.estimate"}
    # Astana's unemployment 2022 is official; Temirtau's (no BNS figure) stays illustrative.
    row = values[(values["place"] == "astana") & (values["indicator"] == "iso37120.5.1")]
    assert row[row["year"] == 2022]["official"].all()
    temirtau = values[(values["place"] == "temirtau") & (values["indicator"] == "iso37120.5.1")]
    assert len(temirtau) == 2 and temirtau["illustrative"].all()
    assert not temirtau["official"].any()

    # Per-100 000 values are computed from the official count and population, not copied.
    doctors = values[(values["place"] == "astana") & (values["year"] == 2022)].set_index(
        "indicator"
    )["value"]
    with database.session() as session:
        next_january = session.scalar(
            select(OfficialPopulation.population).where(
                OfficialPopulation.place_id == ids["astana"],
                OfficialPopulation.year == 2023,
                OfficialPopulation.measure == "start_of_year",
            )
        )
    assert doctors["iso37120.11.3"] == pytest.approx(
        doctors["kz_bns.doctors"] * 100_000 / next_january, abs=1e-3
    )

    # Provenance: the series of a value names publisher, table, file, sheet, unit and conversion.
    with database.session() as session:
        series = session.scalar(
            select(OfficialSeries).where(OfficialSeries.key == "bns.grp_per_capita.kzt")
        )
        assert series is not None
        assert series.publisher.startswith("Bureau of National Statistics")
        assert series.sheet == "тыс.тенге" and series.unit_published == "тыс.тенге"
        assert series.conversion == "published value × 1000"

    with database.session() as session:
        provenance = value_provenance(session, "astana", "kz_bns.grp_per_capita_kzt", 2022)
        assert provenance is not None and provenance["sheet"] == "тыс.тенге"
        assert "row" in provenance["note"]
        assert value_provenance(session, "temirtau", "iso37120.5.1", 2022) is None
        record = population_record(session, ids["temirtau"], 2024)
        assert record is not None and record.year == 2023 and record.population == 177_628
    assert value_kind(official=True, illustrative=False) == "official"
    assert value_kind(official=False, illustrative=True) == "illustrative"
    assert value_kind(official=False, illustrative=False) == "reported"

    before = _snapshot(database)
    # An illustrative import over official values leaves them official.
    import_frame(database, sample, file="sample again", illustrative=True)
    load_official(database)
    after = _snapshot(database)
    assert after["counts"] == before["counts"]
    assert after["populations"] == before["populations"]
    pd.testing.assert_frame_equal(after["values"], before["values"])


def _made_up_shared(tmp_path: Path) -> Path:
    """A shared folder holding a WGI file with one place name no mapping lists."""
    target = tmp_path / "shared" / "kz" / "wb_wgi_kazakhstan" / "wgi_kaz_long.csv"
    target.parent.mkdir(parents=True)
    text = gzip.decompress((BUNDLED / "wb_wgi_kazakhstan.csv.gz").read_bytes()).decode()
    lines = text.splitlines()
    header, first = lines[0], lines[1]
    made_up = first.replace("Kazakhstan,KZ,1996", "Kazakhstania,KZ,1997")
    target.write_text("\n".join([header, first, made_up]) + "\n", encoding="utf-8")
    return tmp_path / "shared"


def test_an_unknown_place_name_is_reported_with_file_and_row_and_not_written(
    sqlite_url: str, tmp_path: Path
) -> None:
    database = Database(sqlite_url)
    report = load_official(database, _made_up_shared(tmp_path))
    wgi = report.file("wb_wgi_kazakhstan")
    assert wgi.file.endswith("kz/wb_wgi_kazakhstan/wgi_kaz_long.csv")
    assert wgi.rows_read == 2 and wgi.rows_accounted == 2
    unknown = [p for p in wgi.problems if p.code == "unknown_place"]
    assert len(unknown) == 1
    assert unknown[0].row == 3 and unknown[0].file == wgi.file
    assert "Kazakhstania" in unknown[0].reason
    # The changed file is also reported as differing from the reviewed copy.
    assert any(p.code == "changed_file" for p in wgi.problems)
    with database.session() as session:
        years = session.scalars(
            select(IndicatorValue.year).where(IndicatorValue.indicator_id == "wgi.cc.estimate")
        ).all()
    assert years == [1996]


def test_a_population_that_is_not_a_number_is_reported_and_kept_out(
    sqlite_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "shared" / "kz" / "bns_population_regions_avg_2015_2025"
    target.mkdir(parents=True)
    name = "bns_population_regions_avg_2015_2025.csv.gz"
    lines = gzip.decompress((BUNDLED / name).read_bytes()).decode().splitlines()
    broken = lines[1].replace("655869.0", "x")
    (target / "population_avg_regions_long.csv").write_text(
        "\n".join([lines[0], broken, lines[2]]) + "\n", encoding="utf-8"
    )
    report = load_official(Database(sqlite_url), tmp_path / "shared")
    averages = report.file("bns_population_regions_avg_2015_2025")
    assert averages.rows_read == 2 and averages.population_figures == 1
    assert [(p.row, p.code) for p in averages.problems if p.row] == [(2, "out_of_range")]


@pytest.mark.shared
def test_the_shipped_copies_are_the_shared_files_and_load_the_same(
    sqlite_url: str, tmp_path: Path
) -> None:
    sources = load_sources()
    for meta in sources.datasets.values():
        shared = shared_file(meta["shared"])
        bundled = gzip.decompress((BUNDLED / meta["file"]).read_bytes())
        assert hashlib.sha256(shared.read_bytes()).hexdigest() == meta["sha256"]
        assert bundled == shared.read_bytes()
    # Populations equal the figures of the BNS file itself, read here without the loader.
    bulletin = shared_file(sources.datasets["bns_population_settlements_2023"]["shared"])
    with bulletin.open(encoding="utf-8") as handle:
        printed = {
            (r["place"]): int(r["value"])
            for r in csv.DictReader(handle)
            if r["indicator"] == "population_total" and r["source_sheet"] == "03"
        }
    assert {
        "astana": printed["Астана қаласы"],
        "karaganda": printed["Қарағанды қ.ә."],
        "temirtau": printed["Теміртау қ.ә."],
    } == BULLETIN_2023
    copy = tmp_path / "data"
    shutil.copytree(SHARED_DATA / "kz", copy / "kz", ignore=shutil.ignore_patterns("raw", "*.gz"))
    report = load_official(Database(sqlite_url), copy)
    assert all(f.file.startswith(str(copy)) for f in report.files)
    assert report.problems == []


def _changed_unemployment(tmp_path: Path) -> Path:
    """A shared folder whose regional indicators print Astana's 2022 unemployment as 4.9, not 4.6
    (a correction in the source file)."""
    name = "bns_regional_indicators.csv.gz"
    target = tmp_path / "shared" / "kz" / "bns_regional_indicators"
    target.mkdir(parents=True)
    text = gzip.decompress((BUNDLED / name).read_bytes()).decode("utf-8")
    printed = "Astana city,KZ-71,2022,year,Unemployment rate1),,4.6,"
    assert text.count(printed) == 1
    (target / "regional_indicators_long.csv").write_text(
        text.replace(printed, printed.replace(",4.6,", ",4.9,")), encoding="utf-8"
    )
    return tmp_path / "shared"


def test_the_values_the_ratings_read_are_published_as_releases(
    database_url: str, tmp_path: Path
) -> None:
    """The import publishes, per year, the official values of the rating frameworks' indicators
    through a data call (submitted as official by the import, evidence the BNS table, accepted,
    published); a reload with the same files publishes nothing and leaves every release byte for
    byte; a corrected file publishes a new release whose changelog shows the correction."""
    from qala.components.catalog.calls import (
        call_events,
        get_release,
        list_calls,
        list_releases,
        release_covering,
        release_frame,
    )
    from qala.components.catalog.opendata import release_files

    database = Database(database_url)
    report = load_official(database)
    regional = load_catalogue().framework("kz_regional").indicator_ids()
    number = report.releases[2022]
    assert number is not None and len(report.releases) == len(set(report.releases.values()))
    with database.session() as session:
        assert release_covering(session, regional, 2022).number == number  # type: ignore[union-attr]
        frame = release_frame(session, number)
        assert set(regional) <= set(frame["indicator"])
        assert frame["official"].all() and not frame["illustrative"].any()
        astana = frame[(frame["place"] == "astana") & (frame["indicator"] == "iso37120.5.1")]
        assert astana["value"].tolist() == [4.6]
        assert astana["note"].str.startswith("Bureau of National Statistics").all()
        assert "unemployment rate by region" in astana["note"].iloc[0]
        release = get_release(session, number)
        assert release.year == 2022 and release.published_by == LOADER
        actions = {e["action"] for e in call_events(session, release.call_id)}
        assert actions == {"open", "submit", "accept", "publish"}
        assert {c["official"] for c in list_calls(session)} == {True}  # the import's calls
        files = {n: release_files(session, n) for n in report.releases.values() if n}
        listed = list_releases(session)
    # The open data say the values are official statistics.
    rows = csv.DictReader(files[number]["values.csv"].decode("utf-8").splitlines())
    assert {row["kind"] for row in rows} == {"official"}

    again = load_official(database)
    assert set(again.releases.values()) == {None}
    with database.session() as session:
        assert list_releases(session) == listed
        assert {n: release_files(session, n) for n in files} == files

    corrected = load_official(database, _changed_unemployment(tmp_path))
    new = corrected.releases[2022]
    assert new is not None and new > max(files)
    assert {year for year, n in corrected.releases.items() if n is not None} == {2022}
    with database.session() as session:
        log = get_release(session, new).changelog
        assert log["previous"] == number and log["added"] == [] and log["removed"] == []
        assert [(c["place"], c["indicator"], c["old"], c["new"]) for c in log["changed"]] == [
            ("astana", "iso37120.5.1", 4.6, 4.9)
        ]
        assert release_covering(session, regional, 2022).number == new  # type: ignore[union-attr]
        assert {n: release_files(session, n) for n in files} == files  # the old ones unchanged
