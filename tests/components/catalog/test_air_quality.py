"""AirData.kz air quality: annual means and days above daily limits, every daily row accounted,
values labelled observed with their source; the command `qala data load-official` reports it."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from statistics import mean

import pytest
from sqlalchemy import select
from tests.conftest import SHARED_DATA, shared_file
from typer.testing import CliRunner

from qala.cli.main import app
from qala.components.catalog.air import AIR_FOLDER, load_air_quality
from qala.components.catalog.models import IndicatorValue, Place
from qala.components.catalog.services import value_provenance
from qala.store.database import Database

runner = CliRunner()


def _stored(database: Database, place: str, indicator: str) -> dict[int, float]:
    with database.session() as session:
        rows = session.execute(
            select(IndicatorValue.year, IndicatorValue.value)
            .join(Place, Place.id == IndicatorValue.place_id)
            .where(Place.code == place, IndicatorValue.indicator_id == indicator)
        )
        return {int(year): float(value) for year, value in rows}


def _write_daily(folder: Path, name: str, rows: list[tuple[str, str, str]]) -> Path:
    """A daily file in the AirData.kz tidy layout: (place, date, value) rows."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pollutant = name.removeprefix("daily_").removesuffix("_long.csv.gz")
    with gzip.open(path, "wt", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "place",
                "year",
                "date",
                "indicator",
                "value",
                "unit",
                "n_stations",
                "source_file",
                "flag",
            ]
        )
        for place, day, value in rows:
            writer.writerow([place, day[:4], day, pollutant, value, "µg/m³", 1, "x.csv.gz", ""])
    return path


def _year(place: str, year: int, values: list[float]) -> list[tuple[str, str, str]]:
    from datetime import date, timedelta

    start = date(year, 1, 1)
    return [
        (place, (start + timedelta(days=i)).isoformat(), f"{v:.2f}") for i, v in enumerate(values)
    ]


def test_hand_made_files_give_means_counts_and_reasons(context, tmp_path: Path) -> None:
    folder = tmp_path / AIR_FOLDER
    # Taraz 2023: 300 days (82 %), 100 of them at 40 µg/m³ (above both PM2.5 limits), 100 at
    # exactly 15 (not above the WHO level: a day counts when strictly above), 100 at 10.
    taraz = _year("Taraz", 2023, [40.0] * 100 + [15.0] * 100 + [10.0] * 100)
    # Aktau 2023: 200 days only (55 %): too short a year, kept out with its reason.
    aktau = _year("Aktau", 2023, [20.0] * 200)
    odd = [
        ("", "2023-05-01", "12.00"),  # town blank
        ("Atlantis", "2023-05-01", "12.00"),  # unknown town: reported
        ("Glubokoe", "2023-05-01", "12.00"),  # not a Qala place
        ("Taraz", "2023-12-30", "minus"),  # not a number: reported
        ("Taraz", "2023-01-01", "99.00"),  # a second row for a day already read
    ]
    _write_daily(folder, "daily_pm2_5_long.csv.gz", taraz + aktau + odd)
    _write_daily(folder, "daily_co_long.csv.gz", _year("Taraz", 2023, [500.0] * 3))

    report = load_air_quality(context.database, tmp_path)

    pm, co = sorted(report.files, key=lambda f: f.file, reverse=True)
    assert pm.rows_read == 505 and pm.rows_accounted == 505
    assert pm.rows_aggregated == 300 and pm.values == 3
    assert pm.kept_out == {
        "year with daily means on fewer than 75% of its days": 200,
        "town blank in the source": 1,
        "unknown town (reported)": 1,
        "not a Qala place: Glubokoe": 1,
        "failed the number or date check (reported)": 1,
        "second row for the same town, pollutant and day": 1,
    }
    assert [(p.code, p.row) for p in pm.problems] == [("unknown_place", 503), ("out_of_range", 505)]
    assert co.rows_read == 3 and co.kept_out == {"pollutant co: no catalogue indicator": 3}
    assert _stored(context.database, "taraz", "iso37120.8.1") == {2023: round(65 * 100 / 300, 2)}
    assert _stored(context.database, "taraz", "kz_air.pm25_days_above_who") == {2023: 100}
    assert _stored(context.database, "taraz", "kz_air.pm25_days_above_kz_norm") == {2023: 100}
    assert _stored(context.database, "aktau", "iso37120.8.1") == {}
    with context.database.session() as session:
        provenance = value_provenance(session, "taraz", "iso37120.8.1", 2023)
    assert provenance is not None
    assert provenance["kind"] == "observed"
    assert provenance["publisher"].startswith("AirData.kz")
    assert "CC BY-NC" in provenance["licence"]

    load_air_quality(context.database, tmp_path)  # again: the same rows, no new ones
    with context.database.session() as session:
        taraz = session.scalars(
            select(IndicatorValue).join(Place).where(Place.code == "taraz")
        ).all()
    assert sorted((v.indicator_id, v.value) for v in taraz if v.official) == [
        ("iso37120.8.1", 21.67),
        ("kz_air.pm25_days_above_kz_norm", 100),
        ("kz_air.pm25_days_above_who", 100),
    ]


def test_without_the_shared_files_nothing_is_loaded(sqlite_context, tmp_path: Path) -> None:
    report = load_air_quality(sqlite_context.database, tmp_path)
    assert report.folder is None and report.files == []
    assert load_air_quality(sqlite_context.database, None).folder is None


@pytest.mark.shared
def test_airdata_files_every_row_accounted_and_almaty_as_computed_by_hand(
    sqlite_context,
) -> None:
    pm25 = shared_file(f"{AIR_FOLDER}/daily_pm25_long.csv.gz")
    report = load_air_quality(sqlite_context.database, SHARED_DATA)
    assert len(report.files) == 11
    assert all(f.rows_accounted == f.rows_read for f in report.files)
    assert report.problems == []
    # The oracle: Almaty's 2019 daily PM2.5 means, read with the csv module.
    with gzip.open(pm25, "rt", encoding="utf-8") as handle:
        days = [
            float(row["value"])
            for row in csv.DictReader(handle)
            if row["place"] == "Almaty" and row["date"].startswith("2019-")
        ]
    assert len(days) >= 274
    database = sqlite_context.database
    assert _stored(database, "almaty", "iso37120.8.1")[2019] == pytest.approx(round(mean(days), 2))
    assert _stored(database, "almaty", "kz_air.pm25_days_above_who")[2019] == sum(
        d > 15 for d in days
    )
    assert _stored(database, "almaty", "kz_air.pm25_days_above_kz_norm")[2019] == sum(
        d > 35 for d in days
    )
    # Published values as computed on the 2026-05-01 snapshot (a change of the file shows here).
    assert _stored(database, "almaty", "iso37120.8.1")[2019] == 47.7
    assert _stored(database, "almaty", "kz_air.pm25_days_above_who")[2019] == 314
    # The Karaganda cluster (five towns' stations) is not Karaganda: kept out, by name.
    pm25_report = next(f for f in report.files if f.file.endswith("daily_pm25_long.csv.gz"))
    assert any("Karaganda (KazHydroMet" in reason for reason in pm25_report.kept_out)


def test_load_official_command_reports_every_file(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("QALA_SHARED_DATA", raising=False)  # the command's default source
    _write_daily(
        tmp_path / AIR_FOLDER, "daily_pm10_long.csv.gz", _year("Uralsk", 2022, [50.0] * 365)
    )
    result = runner.invoke(app, ["data", "load-official", "--source", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    official = {f["dataset"]: f for f in report["official"]["files"]}
    assert official["wb_wgi_kazakhstan"]["rows_read"] == 900
    assert official["wb_wgi_kazakhstan"]["values"] == 300
    (air,) = report["air_quality"]["files"]
    assert (air["rows_read"], air["rows_aggregated"], air["values"]) == (365, 365, 3)

    table = runner.invoke(app, ["data", "load-official"])
    assert table.exit_code == 0, table.output
    # The table's width follows the terminal: compare with line breaks and folds taken out.
    flat = " ".join(table.output.split())
    assert "Rows per file" in flat and "│ 900 │" in flat
    assert "AirData.kz files not found" in flat

    missing = runner.invoke(
        app, ["data", "load-official", "--source", str(tmp_path / "no")], env={"COLUMNS": "250"}
    )
    assert missing.exit_code == 2
    assert "is not a folder" in " ".join(missing.output.replace("│", " ").split())
