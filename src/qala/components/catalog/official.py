"""Official statistics in the store: BNS populations and regional series, World Bank WGI.

The tidy files come with Qala (``data/official/*.csv.gz``, exact copies of the cited files the
licences allow to ship; see ``data/official/SOURCES.md``) or, when a ``shared_dir`` holds a newer
copy of a dataset, from there. Two reviewed files decide everything the loader does:

- ``data/official/places.csv`` resolves each printed place name of each dataset to a Qala place
  code (or keeps the row out, with the reason). A name it does not list is reported with its file
  and row and not written: nothing is matched by guess.
- ``data/official/series.yaml`` names, for every series in the files, the indicator or population
  measure it becomes and the unit conversion, or why it is kept out.

Every row read ends in exactly one place: a value, a population figure, or a counted reason in the
report (``OfficialLoadReport``). Values are written ``official`` with a link to their
``OfficialSeries`` (publisher, table, release, file, sheet, unit as published, conversion).
Per-capita and per-10 000 values are computed here from the official population of the same place
and date, never copied. Loading again rewrites the same rows: the store ends up the same.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import Catalogue, load_catalogue
from qala.components.catalog.models import (
    ImportBatch,
    IndicatorValue,
    OfficialPopulation,
    OfficialSeries,
    Place,
)
from qala.components.catalog.services import (
    apply_official_populations,
    sync_reference_data,
    write_values,
)
from qala.components.catalog.validation import check_long
from qala.core.errors import Problem, ValidationError
from qala.core.yamltext import load_yaml
from qala.store.database import Database

LOADER = "qala-official-loader"
# Measures of a 2023 bulletin row, by the row's kind in places.csv.
BULLETIN_MEASURES = {
    "country": "bulletin",
    "region": "bulletin",
    "city_administration": "city_administration",
    "city_proper": "city_proper",
    "town": "town",
}


@dataclass(frozen=True)
class PlaceMapping:
    code: str
    figure: str
    iso_3166_2: str
    note: str


@dataclass(frozen=True)
class SeriesRule:
    key: str
    dataset: str
    match: dict[str, str]
    indicator: str | None = None
    population: str | None = None
    kept_out: str | None = None
    table: str = ""
    unit_published: str = ""
    factor: float = 1.0

    def matches(self, row: dict[str, str]) -> bool:
        fields = {
            "file": row.get("source_file", ""),
            "sheet": row.get("source_sheet", ""),
            "title": row.get("indicator", ""),
            "subgroup": row.get("subgroup", ""),
            "period": row.get("period", ""),
        }
        for name, wanted in self.match.items():
            actual = fields[name]
            if wanted.endswith("*"):
                if not actual.startswith(wanted[:-1]):
                    return False
            elif actual != wanted:
                return False
        return True

    def conversion(self) -> str:
        if self.factor == 1:
            return "none: stored as published"
        return f"published value × {self.factor:g}"


@dataclass(frozen=True)
class DerivedRule:
    key: str
    source: str
    indicator: str
    per: float
    scale: float
    population_year_offset: int
    description: str


@dataclass(frozen=True)
class OfficialSources:
    datasets: dict[str, dict[str, str]]
    series: list[SeriesRule]
    derived: list[DerivedRule]
    places: dict[tuple[str, str], PlaceMapping]


@dataclass
class FileReport:
    """What the loader did with one file: every row read is accounted for."""

    dataset: str
    file: str
    sha256: str
    rows_read: int = 0
    values_mapped: int = 0
    """Rows that became an indicator value (``values_written`` counts what the store changed)."""
    values_written: int = 0
    population_figures: int = 0
    kept_out: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    """Rows kept out that someone must look at: unknown places, unmapped series, failed checks."""

    @property
    def rows_accounted(self) -> int:
        return self.values_mapped + self.population_figures + sum(self.kept_out.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "file": self.file,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "values": self.values_mapped,
            "values_written": self.values_written,
            "population_figures": self.population_figures,
            "kept_out": dict(self.kept_out),
            "problems": [p.as_dict() for p in self.problems],
        }


@dataclass
class OfficialLoadReport:
    files: list[FileReport]
    derived: dict[str, int] = field(default_factory=dict)
    derived_kept_out: Counter[str] = field(default_factory=Counter)
    releases: dict[int, int | None] = field(default_factory=dict)
    """Per year, the release that published the rating frameworks' official values (None: the
    same values as the call's last release, nothing published)."""

    def file(self, dataset: str) -> FileReport:
        return next(f for f in self.files if f.dataset == dataset)

    @property
    def problems(self) -> list[Problem]:
        return [p for f in self.files for p in f.problems]

    def summary(self) -> str:
        values = sum(f.values_mapped for f in self.files) + sum(self.derived.values())
        figures = sum(f.population_figures for f in self.files)
        published = [n for n in self.releases.values() if n is not None]
        return (
            f"{values} official indicator values and {figures} official population figures "
            f"from {len(self.files)} files ({len(self.problems)} rows reported); "
            f"{len(published)} new release(s) of the values the ratings read"
            + (f" ({', '.join(map(str, published))})" if published else " (none changed)")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": [f.as_dict() for f in self.files],
            "derived": self.derived,
            "derived_kept_out": dict(self.derived_kept_out),
            "releases": {str(year): number for year, number in self.releases.items()},
        }


# ---------------------------------------------------------------------------------------------
# The reviewed mapping files


def _official_dir() -> Any:
    return resources.files("qala.components.catalog") / "data" / "official"


def parse_sources(series_text: str, places_text: str) -> OfficialSources:
    document = load_yaml(series_text)
    series = [
        SeriesRule(
            key=str(raw["key"]),
            dataset=str(raw["dataset"]),
            match={k: str(v) for k, v in raw["match"].items()},
            indicator=raw.get("indicator"),
            population=raw.get("population"),
            kept_out=raw.get("kept_out"),
            table=str(raw.get("table") or document["datasets"][raw["dataset"]]["table"]),
            unit_published=str(raw.get("unit_published") or ""),
            factor=float(raw.get("factor", 1)),
        )
        for raw in document["series"]
    ]
    derived = [
        DerivedRule(
            key=str(raw["key"]),
            source=str(raw["from"]),
            indicator=str(raw["indicator"]),
            per=float(raw.get("per", 1)),
            scale=float(raw.get("scale", 1)),
            population_year_offset=int(raw.get("population_year_offset", 0)),
            description=str(raw["description"]),
        )
        for raw in document.get("derived") or []
    ]
    places = {
        (row["dataset"], row["printed"]): PlaceMapping(
            row["code"], row["figure"], row["iso_3166_2"], row["note"]
        )
        for row in csv.DictReader(io.StringIO(places_text))
    }
    return OfficialSources(document["datasets"], series, derived, places)


@lru_cache(maxsize=1)
def load_sources() -> OfficialSources:
    """The reviewed series and place mappings shipped with Qala."""
    folder = _official_dir()
    return parse_sources(
        (folder / "series.yaml").read_text(encoding="utf-8"),
        (folder / "places.csv").read_text(encoding="utf-8"),
    )


def check_sources(sources: OfficialSources, catalogue: Catalogue, codes: set[str]) -> list[str]:
    """Mistakes in the mapping files: unknown indicators, places or datasets (empty when sound)."""
    mistakes = []
    for rule in sources.series:
        if rule.dataset not in sources.datasets:
            mistakes.append(f"series {rule.key}: unknown dataset {rule.dataset}")
        if sum(x is not None for x in (rule.indicator, rule.population, rule.kept_out)) != 1:
            mistakes.append(f"series {rule.key}: needs one of indicator, population, kept_out")
        if rule.indicator and rule.indicator not in catalogue.indicators:
            mistakes.append(f"series {rule.key}: indicator {rule.indicator} not in the catalogue")
    series_keys = {rule.key for rule in sources.series}
    for derived in sources.derived:
        if derived.indicator not in catalogue.indicators:
            mistakes.append(
                f"derived {derived.key}: indicator {derived.indicator} not in the catalogue"
            )
        if derived.source not in series_keys:
            mistakes.append(f"derived {derived.key}: no series {derived.source}")
    for (dataset, printed), mapping in sources.places.items():
        if mapping.code and mapping.code not in codes:
            mistakes.append(f"places.csv {dataset} {printed!r}: no place {mapping.code}")
        if not mapping.code and not mapping.note:
            mistakes.append(f"places.csv {dataset} {printed!r}: kept out without a reason")
    return mistakes


# ---------------------------------------------------------------------------------------------
# Reading


def _read_dataset(dataset: str, meta: dict[str, str], shared_dir: Path | None) -> tuple[str, bytes]:
    """(file name as reported, raw CSV bytes): the shared copy when present, else the bundled one."""
    if shared_dir is not None:
        path = Path(shared_dir) / meta["shared"]
        if path.is_file():
            return str(path), path.read_bytes()
    entry = _official_dir() / meta["file"]
    return f"data/official/{meta['file']}", gzip.decompress(entry.read_bytes())


@dataclass
class _Pass:
    """Rows of one file sorted into values and population figures."""

    values: list[dict[str, Any]] = field(default_factory=list)
    populations: list[tuple[int, int, str, float, str, int]] = field(default_factory=list)
    sheets: dict[str, set[str]] = field(default_factory=dict)


def _sort_rows(
    report: FileReport,
    rows: list[dict[str, str]],
    sources: OfficialSources,
    place_ids: dict[str, int],
) -> _Pass:
    sorted_rows = _Pass()
    rules = [r for r in sources.series if r.dataset == report.dataset]
    for number, row in enumerate(rows, start=2):
        report.rows_read += 1
        rule = next((r for r in rules if r.matches(row)), None)
        if rule is None:
            report.problems.append(
                Problem(
                    f"series not in series.yaml: {row.get('indicator')!r} "
                    f"({row.get('subgroup')!r}, {row.get('period')!r})",
                    file=report.file,
                    row=number,
                    column="indicator",
                    code="unmapped_series",
                )
            )
            report.kept_out["unmapped series (reported)"] += 1
            continue
        if rule.kept_out:
            report.kept_out[rule.kept_out] += 1
            continue
        if row.get("flag", "").startswith("SUSPECT") or "; SUSPECT" in row.get("flag", ""):
            report.kept_out["flagged SUSPECT in the source"] += 1
            continue
        code = _resolve_place(report, sources, place_ids, row, number)
        if code is None:
            continue
        sorted_rows.sheets.setdefault(rule.key, set()).add(row.get("source_sheet", ""))
        if rule.population:
            if not (_is_number(row["value"]) and float(row["value"]) > 0 and row["year"].isdigit()):
                report.problems.append(
                    Problem(
                        "a population must be a positive number with a whole year",
                        file=report.file,
                        row=number,
                        column="value",
                        value=row["value"],
                        code="out_of_range",
                    )
                )
                report.kept_out["failed the population check (reported)"] += 1
                continue
            mapping = sources.places[(report.dataset, row["place"])]
            measure = (
                BULLETIN_MEASURES[mapping.figure]
                if rule.population == "bulletin"
                else rule.population
            )
            sorted_rows.populations.append(
                (place_ids[code], int(row["year"]), measure, float(row["value"]), rule.key, number)
            )
            report.population_figures += 1
            continue
        sorted_rows.values.append(
            {
                "place": code,
                "indicator": rule.indicator,
                "year": row["year"],
                "value": round(float(row["value"]) * rule.factor, 6)
                if _is_number(row["value"])
                else row["value"],
                "series": rule.key,
                "row": number,
                "flag": row.get("flag", ""),
                "place_note": sources.places[(report.dataset, row["place"])].note,
            }
        )
        report.values_mapped += 1
    return sorted_rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _resolve_place(
    report: FileReport,
    sources: OfficialSources,
    place_ids: dict[str, int],
    row: dict[str, str],
    number: int,
) -> str | None:
    """The place code of a row by places.csv, else None with the row counted (and reported)."""
    printed = row.get("place", "")
    mapping = sources.places.get((report.dataset, printed))
    iso = row.get("iso_3166_2", "")
    if mapping is not None and not mapping.code:
        report.kept_out[f"not a Qala place: {mapping.note}"] += 1
        return None
    if mapping is None:
        reason = f"unknown place name {printed!r}: not in places.csv for {report.dataset}"
    elif mapping.iso_3166_2 and iso and mapping.iso_3166_2 != iso:
        reason = (
            f"ambiguous place {printed!r}: code {iso} in the file, "
            f"{mapping.iso_3166_2} in places.csv"
        )
    elif mapping.code not in place_ids:
        reason = f"place {mapping.code} of {printed!r} is not in the store"
    else:
        return mapping.code
    report.problems.append(
        Problem(
            reason,
            file=report.file,
            row=number,
            column="place",
            value=printed,
            code="unknown_place",
        )
    )
    report.kept_out["unknown or ambiguous place (reported)"] += 1
    return None


# ---------------------------------------------------------------------------------------------
# Writing


def load_official(
    database: Database,
    shared_dir: Path | str | None = None,
    *,
    sources: OfficialSources | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> OfficialLoadReport:
    """Load every official dataset into the store (idempotent) and report what became of each row.

    ``shared_dir`` is the shared data folder (holding ``kz/…``); a dataset found there is read
    from it, the others from the copies bundled with Qala. ``progress(done, total)`` is called
    after each dataset.
    """
    sources = sources or load_sources()
    catalogue = load_catalogue()
    report = OfficialLoadReport(files=[])
    with database.transaction() as session:
        sync_reference_data(session, catalogue=catalogue)
        place_ids = {code: id_ for id_, code in session.execute(select(Place.id, Place.code))}
        mistakes = check_sources(sources, catalogue, set(place_ids))
        if mistakes:
            raise ValidationError(
                [Problem(m, file="data/official") for m in mistakes],
                "the official data mappings are invalid",
            )
        accepted: list[pd.DataFrame] = []
        series_ids: dict[str, int] = {}
        for done, (dataset, meta) in enumerate(sources.datasets.items(), start=1):
            frame = _load_dataset(
                session, report, sources, dataset, meta, shared_dir, place_ids, series_ids
            )
            accepted.append(frame)
            if progress is not None:
                progress(done, len(sources.datasets))
        session.flush()
        apply_official_populations(session)
        _derive(session, report, sources, catalogue, place_ids, accepted, series_ids)
        _publish(session, report, catalogue)
    return report


RELEASE_TITLE = "Official statistics {year}: the values the ratings read (BNS, World Bank)"


def _publish(session: Session, report: OfficialLoadReport, catalogue: Catalogue) -> None:
    """Publish, per year, the official values of every rating framework's indicators as a
    release of the data call (``calls.publish_import``): the import answers the call as official
    statistics, the evidence names the publisher's table, and only a change since the last
    release of that year's call publishes a new release (with its changelog)."""
    from qala.components.catalog.calls import publish_import

    indicators = sorted(
        {
            code
            for framework in catalogue.frameworks.values()
            if framework.purpose == "rating"
            for code in framework.indicator_ids()
        }
    )
    rows = session.execute(
        select(
            Place.code,
            IndicatorValue.indicator_id,
            IndicatorValue.year,
            IndicatorValue.value,
            IndicatorValue.source,
        )
        .join(Place, Place.id == IndicatorValue.place_id)
        .where(IndicatorValue.official.is_(True), IndicatorValue.indicator_id.in_(indicators))
        .order_by(IndicatorValue.year, Place.code, IndicatorValue.indicator_id)
    ).all()
    frame = pd.DataFrame(rows, columns=["place", "indicator", "year", "value", "evidence"])
    for year, values in frame.groupby("year", sort=True):
        release = publish_import(
            session,
            values.drop(columns="year"),
            year=int(year),
            title=RELEASE_TITLE.format(year=int(year)),
            actor=LOADER,
            official=True,
            file="official statistics import",
        )
        report.releases[int(year)] = None if release is None else release.number


def _load_dataset(
    session: Session,
    report: OfficialLoadReport,
    sources: OfficialSources,
    dataset: str,
    meta: dict[str, str],
    shared_dir: Path | str | None,
    place_ids: dict[str, int],
    series_ids: dict[str, int],
) -> pd.DataFrame:
    file_name, content = _read_dataset(dataset, meta, Path(shared_dir) if shared_dir else None)
    digest = hashlib.sha256(content).hexdigest()
    file_report = FileReport(dataset, file_name, digest)
    report.files.append(file_report)
    if digest != meta["sha256"]:
        file_report.problems.append(
            Problem(
                f"the file differs from the reviewed copy (sha256 {meta['sha256'][:12]}…): "
                "check series.yaml and places.csv against it",
                file=file_name,
                code="changed_file",
            )
        )
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    sorted_rows = _sort_rows(file_report, rows, sources, place_ids)
    for rule in sources.series:
        if rule.dataset == dataset and not rule.kept_out:
            series_ids[rule.key] = _upsert_series(
                session, sources, rule, file_name, sorted_rows.sheets.get(rule.key, set())
            )
    _write_populations(session, sorted_rows.populations, series_ids, dataset, sources)
    frame = _checked_values(file_report, sorted_rows.values, sources, place_ids, series_ids)
    batch_id = batch_for_file(session, file_name, digest, len(frame), file_report)
    file_report.values_written = write_values(session, frame, batch_id=batch_id)
    return frame


def batch_for_file(
    session: Session, file_name: str, digest: str | None, accepted: int, report: FileReport | None
) -> int:
    """The import batch of this exact file, reused when it was loaded before (so a reload adds
    nothing), else a new one."""
    batch = session.scalar(
        select(ImportBatch).where(
            ImportBatch.file_name == file_name,
            ImportBatch.imported_by == LOADER,
            ImportBatch.sha256.is_(None) if digest is None else ImportBatch.sha256 == digest,
        )
    )
    if batch is None:
        batch = ImportBatch(
            file_name=file_name, file_format="csv", sha256=digest, imported_by=LOADER
        )
        session.add(batch)
    batch.rows_accepted = accepted
    batch.rows_rejected = sum(report.kept_out.values()) if report else 0
    batch.problems = [p.as_dict() for p in report.problems] if report else []
    session.flush()
    return batch.id


def _upsert_series(
    session: Session,
    sources: OfficialSources,
    rule: SeriesRule,
    file_name: str,
    sheets: set[str],
) -> int:
    meta = sources.datasets[rule.dataset]
    row = series_row(session, rule.key)
    raw_file = rule.match.get("file")
    row.dataset = rule.dataset
    row.publisher = meta["publisher"]
    row.table_ref = rule.table
    row.release = meta["release"]
    row.file = f"{file_name} (from {raw_file})" if raw_file else file_name
    row.sheet = ", ".join(sorted(s for s in sheets if s)) or rule.match.get("sheet")
    row.title = "; ".join(f"{k}: {v}" for k, v in rule.match.items())
    row.unit_published = rule.unit_published
    row.conversion = rule.conversion()
    row.indicator_id = rule.indicator
    row.licence = meta["licence"]
    session.flush()
    return row.id


def _write_populations(
    session: Session,
    figures: list[tuple[int, int, str, float, str, int]],
    series_ids: dict[str, int],
    dataset: str,
    sources: OfficialSources,
) -> None:
    ids = [series_ids[r.key] for r in sources.series if r.dataset == dataset and r.population]
    if ids:
        session.execute(delete(OfficialPopulation).where(OfficialPopulation.series_id.in_(ids)))
    session.add_all(
        OfficialPopulation(
            place_id=place_id,
            year=year,
            measure=measure,
            population=value,
            series_id=series_ids[key],
            source_row=number,
        )
        for place_id, year, measure, value, key, number in figures
    )
    session.flush()


def _checked_values(
    report: FileReport,
    values: list[dict[str, Any]],
    sources: OfficialSources,
    place_ids: dict[str, int],
    series_ids: dict[str, int],
) -> pd.DataFrame:
    """Run the import checks (unit range, whole counts, duplicates) on the mapped values; a row
    that fails is reported with its file and row and kept out."""
    if not values:
        return pd.DataFrame()
    rules = {r.key: r for r in sources.series}
    frame = pd.DataFrame(values)
    frame["source"] = [
        f"{sources.datasets[rules[k].dataset]['publisher']}: {rules[k].table}"[:500]
        for k in frame["series"]
    ]
    frame["note"] = [
        _value_note(report.file, int(row), rules[k], flag, place_note)
        for k, row, flag, place_note in zip(
            frame["series"], frame["row"], frame["flag"], frame["place_note"], strict=True
        )
    ]
    result = check_long(
        frame,
        frame["row"],
        file=report.file,
        catalogue=load_catalogue(),
        place_ids=place_ids,
    )
    rejected = len(result.rejected_rows)
    duplicates = len(result.warnings)
    report.problems.extend(result.problems)
    report.values_mapped -= rejected + duplicates
    if rejected:
        report.kept_out["failed the unit, range or duplicate check (reported)"] += rejected
    if duplicates:
        report.kept_out["same value as another row for the place and year (counted once)"] += (
            duplicates
        )
    accepted = result.values
    series_of_row = dict(zip(frame["row"], frame["series"], strict=True))
    accepted["official"] = True
    accepted["series_id"] = [series_ids[series_of_row[r]] for r in accepted["source_row"]]
    accepted["series"] = [series_of_row[r] for r in accepted["source_row"]]
    return accepted


def _value_note(file: str, row: int, rule: SeriesRule, flag: str, place_note: str) -> str:
    parts = [
        f"official ({rule.key}): {file}, row {row}",
        f"unit as published: {rule.unit_published}",
        f"conversion: {rule.conversion()}",
    ]
    if flag:
        parts.append(f"source flag: {flag}")
    if place_note:
        parts.append(f"place: {place_note}")
    return "; ".join(parts)


def _derive(
    session: Session,
    report: OfficialLoadReport,
    sources: OfficialSources,
    catalogue: Catalogue,
    place_ids: dict[str, int],
    accepted: list[pd.DataFrame],
    series_ids: dict[str, int],
) -> None:
    """Per-capita and per-10 000 values from official counts and official populations."""
    values = pd.concat([f for f in accepted if not f.empty], ignore_index=True)
    populations = {
        (place_id, year): population
        for place_id, year, population in session.execute(
            select(
                OfficialPopulation.place_id, OfficialPopulation.year, OfficialPopulation.population
            ).where(OfficialPopulation.measure == "start_of_year")
        )
    }
    code_of = {id_: code for code, id_ in place_ids.items()}
    for rule in sources.derived:
        source = values[values["series"] == rule.source]
        rows = []
        for place_id, year, value in zip(
            source["place_id"], source["year"], source["value"], strict=True
        ):
            population = populations.get((int(place_id), int(year) + rule.population_year_offset))
            if not population:
                report.derived_kept_out[
                    f"{rule.key}: no BNS 1 January population for the place and date"
                ] += 1
                continue
            rows.append(
                {
                    "place": code_of[int(place_id)],
                    "indicator": rule.indicator,
                    "year": int(year),
                    "value": round(float(value) * rule.scale * rule.per / population, 4),
                    "source": f"Qala, computed from official figures: {rule.description}"[:500],
                    "note": f"official ({rule.key}), computed from {rule.source}",
                }
            )
        series_ids[rule.key] = _upsert_derived_series(session, rule, catalogue)
        frame = pd.DataFrame(rows)
        if frame.empty:
            report.derived[rule.key] = 0
            continue
        result = check_long(
            frame,
            pd.Series(range(1, len(frame) + 1)),
            file=rule.key,
            catalogue=catalogue,
            place_ids=place_ids,
        )
        if result.problems:
            raise ValidationError(result.problems, f"computed values of {rule.key} are invalid")
        checked = result.values
        checked["official"] = True
        checked["series_id"] = series_ids[rule.key]
        batch_id = batch_for_file(session, f"computed: {rule.key}", None, len(checked), None)
        write_values(session, checked, batch_id=batch_id)
        report.derived[rule.key] = len(checked)


def series_row(session: Session, key: str) -> OfficialSeries:
    """The stored series with this key, or a new one (so a reload updates, never duplicates)."""
    row = session.scalar(select(OfficialSeries).where(OfficialSeries.key == key))
    if row is None:
        row = OfficialSeries(key=key)
        session.add(row)
    return row


def _upsert_derived_series(session: Session, rule: DerivedRule, catalogue: Catalogue) -> int:
    row = series_row(session, rule.key)
    row.dataset = "computed"
    row.publisher = "Qala, computed from official figures only"
    row.table_ref = rule.description
    row.release = "computed at each load from the series and populations above"
    row.file = f"series {rule.source} and BNS table 6584"
    row.sheet = None
    row.title = rule.key
    row.unit_published = catalogue.indicators[rule.indicator].unit
    row.conversion = rule.description
    row.indicator_id = rule.indicator
    row.licence = "as the source figures"
    session.flush()
    return row.id
