"""Air quality from AirData.kz daily city means: annual means and days above daily limits.

AirData.kz publishes its cleaned daily means under CC BY-NC 4.0 (non-commercial), so Qala never
ships them: they are read from the shared data folder when it holds them
(``kz/airdata_kz_daily_CC-BY-NC/daily_<pollutant>_long.csv.gz``) and the demo works without them.

The daily means are measurements from monitoring stations (KazHydroMet, AirKaz, OpenAQ, WAQI), not
published statistics: their values are stored with a series like official ones (so each carries
its publisher, file and licence) and labelled ``observed`` (``queries.value_kind``).

For each town and year with a daily mean on at least ``MIN_COVERAGE`` of the days, the loader
writes the annual mean (ISO 37120 8.1 PM2.5, 8.2 PM10, 8.4 NO₂, 8.5 SO₂, 8.6 O₃) and, for PM2.5 and
PM10, the days above the WHO 2021 24-hour guideline and above Kazakhstan's daily norm
(``kz_air`` framework). Every daily row read ends in an annual value or a counted reason.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import Place
from qala.components.catalog.official import batch_for_file, series_row
from qala.components.catalog.services import sync_reference_data, write_values
from qala.components.catalog.validation import check_long
from qala.core.errors import Problem, ValidationError
from qala.store.database import Database

AIR_DATASET = "airdata_kz_daily"
AIR_FOLDER = "kz/airdata_kz_daily_CC-BY-NC"
PUBLISHER = (
    "AirData.kz, Open Air Quality Dataset for Kazakhstan, Global Shapers Almaty Hub "
    "(daily means of KazHydroMet, AirKaz, OpenAQ and WAQI stations)"
)
RELEASE = "qazybekb/AirDatakz-OpenData @0fe9a615 (2026-05-01)"
LICENCE = "CC BY-NC 4.0: non-commercial; read from the shared folder only, never shipped with Qala"
MIN_COVERAGE = 0.75
"""Share of a year's days that must have a daily mean for the year to count (as the EU and WHO
data-capture rules ask of an annual mean); a shorter year would bias both the mean and the count
of days above a limit."""


class Limit(NamedTuple):
    indicator: str
    threshold: float  # µg/m³, a day counts when its mean is strictly above


class Pollutant(NamedTuple):
    annual_mean: str
    limits: tuple[Limit, ...] = ()


# Pollutant code as printed in the files → catalogue indicators. Limits: WHO 2021 24-hour AQG
# levels and Kazakhstan's average daily maximum permissible concentrations (kz_air.yaml).
POLLUTANTS: dict[str, Pollutant] = {
    "pm25": Pollutant(
        "iso37120.8.1",
        (Limit("kz_air.pm25_days_above_who", 15), Limit("kz_air.pm25_days_above_kz_norm", 35)),
    ),
    "pm10": Pollutant(
        "iso37120.8.2",
        (Limit("kz_air.pm10_days_above_who", 45), Limit("kz_air.pm10_days_above_kz_norm", 60)),
    ),
    "no2": Pollutant("iso37120.8.4"),
    "so2": Pollutant("iso37120.8.5"),
    "o3": Pollutant("iso37120.8.6"),
}
# rest_of_kz files print PM2.5 as `pm2_5` (README quirk): the same pollutant.
ALIASES = {"pm2_5": "pm25"}


@dataclass
class AirFileReport:
    """What became of one daily file: every row read is aggregated or kept out with a reason."""

    file: str
    sha256: str
    rows_read: int = 0
    rows_aggregated: int = 0
    values: int = 0
    values_written: int = 0
    kept_out: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    @property
    def rows_accounted(self) -> int:
        return self.rows_aggregated + sum(self.kept_out.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": AIR_DATASET,
            "file": self.file,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "rows_aggregated": self.rows_aggregated,
            "values": self.values,
            "values_written": self.values_written,
            "kept_out": dict(self.kept_out),
            "problems": [p.as_dict() for p in self.problems],
        }


@dataclass
class AirLoadReport:
    folder: str | None
    files: list[AirFileReport] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return [p for f in self.files for p in f.problems]

    def summary(self) -> str:
        if self.folder is None:
            return "AirData.kz daily files not found: no air-quality values loaded"
        values = sum(f.values for f in self.files)
        return f"{values} observed air-quality values from {len(self.files)} AirData.kz files"

    def as_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "files": [f.as_dict() for f in self.files]}


@lru_cache(maxsize=1)
def air_places() -> dict[str, tuple[str, str]]:
    """Printed town name → (Qala place code or "" when kept out, note): the reviewed mapping."""
    text = (
        resources.files("qala.components.catalog") / "data" / "official" / "air_places.csv"
    ).read_text(encoding="utf-8")
    return {row["printed"]: (row["code"], row["note"]) for row in csv.DictReader(io.StringIO(text))}


def air_folder(shared_dir: Path | str | None) -> Path | None:
    """The AirData.kz folder inside the shared data folder, or None when it is not there."""
    if shared_dir is None:
        return None
    folder = Path(shared_dir) / AIR_FOLDER
    return folder if any(folder.glob("daily_*_long.csv.gz")) else None


def load_air_quality(
    database: Database, shared_dir: Path | str | None, *, progress: Any = None
) -> AirLoadReport:
    """Load the AirData.kz annual values when the shared folder holds the files (idempotent).

    ``progress(done, total)`` is called after each file."""
    folder = air_folder(shared_dir)
    report = AirLoadReport(None if folder is None else str(folder))
    if folder is None:
        return report
    catalogue = load_catalogue()
    paths = sorted(folder.glob("daily_*_long.csv.gz"))
    with database.transaction() as session:
        sync_reference_data(session, catalogue=catalogue)
        place_ids = {code: id_ for id_, code in session.execute(select(Place.id, Place.code))}
        for done, path in enumerate(paths, start=1):
            report.files.append(_load_file(session, path, place_ids))
            if progress is not None:
                progress(done, len(paths))
    return report


def _load_file(session: Session, path: Path, place_ids: dict[str, int]) -> AirFileReport:
    content = path.read_bytes()
    report = AirFileReport(str(path), hashlib.sha256(content).hexdigest())
    frame = pd.read_csv(io.BytesIO(content), compression="gzip", dtype=str, keep_default_na=False)
    report.rows_read = len(frame)
    frame["row"] = range(2, len(frame) + 2)
    pollutant_codes = frame["indicator"].map(lambda code: ALIASES.get(code, code))
    known = pollutant_codes.isin(list(POLLUTANTS))
    for code, count in pollutant_codes[~known].value_counts().items():
        report.kept_out[f"pollutant {code}: no catalogue indicator"] += int(count)
    frame = frame[known].assign(pollutant=pollutant_codes[known])
    frame = _resolve_places(report, frame, place_ids)
    frame = _checked_numbers(report, frame)
    values = _annual_values(report, frame)
    _write(session, report, path, values, place_ids)
    return report


def _resolve_places(
    report: AirFileReport, frame: pd.DataFrame, place_ids: dict[str, int]
) -> pd.DataFrame:
    mapping = air_places()
    blank = frame["place"].str.strip() == ""
    if blank.any():
        report.kept_out["town blank in the source"] += int(blank.sum())
    frame = frame[~blank]
    codes = []
    for printed, row in zip(frame["place"], frame["row"], strict=True):
        code = mapping.get(printed, (None, ""))[0]
        if code is None:
            report.problems.append(
                Problem(
                    f"unknown town {printed!r}: not in air_places.csv",
                    file=report.file,
                    row=int(row),
                    column="place",
                    value=printed,
                    code="unknown_place",
                )
            )
            report.kept_out["unknown town (reported)"] += 1
        elif not code:
            report.kept_out[f"not a Qala place: {printed}"] += 1
        elif code not in place_ids:
            report.kept_out[f"place {code} is not in the store"] += 1
            code = ""
        codes.append(code or "")
    frame = frame.assign(code=codes)
    return frame[frame["code"] != ""]


def _checked_numbers(report: AirFileReport, frame: pd.DataFrame) -> pd.DataFrame:
    values = pd.to_numeric(frame["value"], errors="coerce")
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    bad = values.isna() | (values < 0) | dates.isna()
    for printed, row in zip(frame.loc[bad, "value"], frame.loc[bad, "row"], strict=True):
        report.problems.append(
            Problem(
                "a daily mean must be a non-negative number on a valid date",
                file=report.file,
                row=int(row),
                column="value",
                value=printed,
                code="out_of_range",
            )
        )
    if bad.any():
        report.kept_out["failed the number or date check (reported)"] += int(bad.sum())
    frame = frame[~bad].assign(concentration=values[~bad], day=dates[~bad])
    duplicated = frame.duplicated(["code", "pollutant", "day"], keep="first")
    if duplicated.any():
        report.kept_out["second row for the same town, pollutant and day"] += int(duplicated.sum())
    return frame[~duplicated]


def _annual_values(report: AirFileReport, frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    frame = frame.assign(year=frame["day"].dt.year)
    for (code, pollutant, year), days in frame.groupby(["code", "pollutant", "year"]):
        days_in_year = 366 if calendar.isleap(int(year)) else 365
        if len(days) < MIN_COVERAGE * days_in_year:
            report.kept_out[
                f"year with daily means on fewer than {MIN_COVERAGE:.0%} of its days"
            ] += len(days)
            continue
        report.rows_aggregated += len(days)
        first_row = int(days["row"].min())
        spec = POLLUTANTS[str(pollutant)]
        note = (
            f"observed (AirData.kz): {Path(report.file).name}, {len(days)} daily means "
            f"of {days_in_year} days from row {first_row}"
        )
        rows.append(
            {
                "place": code,
                "indicator": spec.annual_mean,
                "year": int(year),
                "value": round(float(days["concentration"].mean()), 2),
                "note": f"{note}; annual mean of the daily means",
                "series": f"airdata.{pollutant}.annual_mean",
            }
        )
        for limit in spec.limits:
            rows.append(
                {
                    "place": code,
                    "indicator": limit.indicator,
                    "year": int(year),
                    "value": int((days["concentration"] > limit.threshold).sum()),
                    "note": f"{note}; days with a mean above {limit.threshold:g} µg/m³",
                    "series": f"airdata.{pollutant}.days_above_{limit.threshold:g}",
                }
            )
    return rows


def _write(
    session: Session,
    report: AirFileReport,
    path: Path,
    values: list[dict[str, Any]],
    place_ids: dict[str, int],
) -> None:
    if not values:
        return
    frame = pd.DataFrame(values)
    frame["source"] = f"{PUBLISHER}, {path.name}"[:500]
    result = check_long(
        frame.drop(columns=["series"]),
        pd.Series(range(1, len(frame) + 1)),
        file=report.file,
        catalogue=load_catalogue(),
        place_ids=place_ids,
    )
    if result.problems:
        raise ValidationError(result.problems, f"air-quality values from {path.name} are invalid")
    checked = result.values
    series = dict(zip(range(1, len(frame) + 1), frame["series"], strict=True))
    series_ids = {
        key: _series(session, key, path, indicator)
        for key, indicator in zip(frame["series"], frame["indicator"], strict=True)
    }
    checked["official"] = True
    checked["series_id"] = [series_ids[series[int(r)]] for r in checked["source_row"]]
    batch_id = batch_for_file(session, str(path), report.sha256, len(checked), None)
    report.values = len(checked)
    report.values_written = write_values(session, checked, batch_id=batch_id)


def _series(session: Session, key: str, path: Path, indicator: str) -> int:
    row = series_row(session, key)
    row.dataset = AIR_DATASET
    row.publisher = PUBLISHER
    row.table_ref = "daily city means of ambient concentrations (µg/m³)"
    row.release = RELEASE
    row.file = f"{AIR_FOLDER}/{path.name}"
    row.sheet = None
    row.title = key
    row.unit_published = "µg/m³ (daily mean)"
    row.conversion = (
        "annual mean of the daily means"
        if key.endswith("annual_mean")
        else "count of days whose mean is above the limit"
    ) + f" (years with daily means on at least {MIN_COVERAGE:.0%} of days)"
    row.indicator_id = indicator
    row.licence = LICENCE
    session.flush()
    return row.id
