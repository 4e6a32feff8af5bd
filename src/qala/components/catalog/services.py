"""What the foundation does: keep reference data in the store, check, import and export values.

Writes go through one transaction each: an import either writes every accepted row (and records
its batch and rejected rows) or nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import Catalogue, load_catalogue
from qala.components.catalog.models import (
    ImportBatch,
    Indicator,
    IndicatorValue,
    OfficialPopulation,
    OfficialSeries,
    Place,
    PlacePopulation,
    SingleIndustryPeriod,
)
from qala.components.catalog.places import Gazetteer, load_gazetteer

# Re-exported: the queries live in their own module so that listing places needs no pandas.
from qala.components.catalog.queries import (
    VALUE_KINDS as VALUE_KINDS,
    get_place as get_place,
    list_places as list_places,
    place_lookup,
    population as population,
    population_record as population_record,
    single_industry_codes as single_industry_codes,
    value_kind as value_kind,
    value_provenance as value_provenance,
    value_sources as value_sources,
)
from qala.components.catalog.tabular import FileFormat, read_table, wide_to_long, write_table
from qala.components.catalog.validation import CheckResult, check_long
from qala.core.errors import PermissionDeniedError, Problem, ValidationError
from qala.core.messages import msg
from qala.store.base import utcnow
from qala.store.database import Database

# ---------------------------------------------------------------------------------------------
# Reference data


def sync_reference_data(
    session: Session, *, catalogue: Catalogue | None = None, gazetteer: Gazetteer | None = None
) -> dict[str, int]:
    """Upsert the bundled places and catalogue indicators into the store (idempotent)."""
    catalogue = catalogue or load_catalogue()
    gazetteer = gazetteer or load_gazetteer()
    existing = {p.code: p for p in session.scalars(select(Place))}
    for record in gazetteer.places:
        place = existing.get(record.code) or Place(code=record.code)
        place.level, place.kind, place.significance = record.level, record.kind, record.significance
        place.name_kk, place.name_ru, place.name_en = (record.names[k] for k in ("kk", "ru", "en"))
        place.lat, place.lon, place.geonames_id, place.source = (
            record.lat,
            record.lon,
            record.geonames_id,
            record.source,
        )
        if record.code not in existing:
            session.add(place)
            existing[record.code] = place
    session.flush()
    for record in gazetteer.places:
        parent = existing.get(record.parent_code) if record.parent_code else None
        existing[record.code].parent_id = parent.id if parent else None
    session.execute(delete(PlacePopulation))
    session.execute(delete(SingleIndustryPeriod))
    session.add_all(
        PlacePopulation(
            place_id=existing[r.code].id, year=r.year, population=r.population, source=r.source
        )
        for r in gazetteer.populations
    )
    session.add_all(
        SingleIndustryPeriod(
            place_id=existing[r.code].id,
            from_year=r.from_year,
            to_year=r.to_year,
            source=r.source,
            note=r.note,
        )
        for r in gazetteer.single_industry
    )
    session.flush()
    apply_official_populations(session)
    stored = {i.id: i for i in session.scalars(select(Indicator))}
    for definition in catalogue.indicators.values():
        row = stored.get(definition.id) or Indicator(id=definition.id)
        row.framework, row.area = definition.framework, definition.area
        row.name_kk, row.name_ru, row.name_en = (definition.name(k) for k in ("kk", "ru", "en"))
        row.unit, row.polarity, row.category = (
            definition.unit,
            definition.polarity,
            definition.category,
        )
        row.catalogue_version = catalogue.version
        if definition.id not in stored:
            session.add(row)
    session.flush()
    return {"places": len(gazetteer.places), "indicators": len(catalogue.indicators)}


# The official figure a place's population takes, best first: a city's own administration (the
# territory its akimat governs and reports for), a town of district significance, the city proper,
# then the 1 January 2023 bulletin total and BNS table 6584 (regions, republican cities, country).
# Annual averages (table 6576) are a different measure and never used here.
PRIMARY_MEASURES = ("city_administration", "town", "city_proper", "bulletin", "start_of_year")
MEASURE_NAMES = {
    "city_administration": "city administration (қ.ә.: the city with its subordinate settlements)",
    "town": "town (қ.)",
    "city_proper": "city proper (қаласы)",
    "bulletin": "total",
    "start_of_year": "population at the start of the year",
    "annual_average": "average annual population",
}


def apply_official_populations(session: Session) -> int:
    """Put the official population of each place and year into ``place_population``.

    The figure follows ``PRIMARY_MEASURES``; its source names the BNS table and which figure it
    is, and the other figure of a city (city proper or administration) where BNS prints both.
    GeoNames figures of a place with any official figure are removed. Returns the figures set.
    """
    rows = session.execute(
        select(
            OfficialPopulation.place_id,
            OfficialPopulation.year,
            OfficialPopulation.measure,
            OfficialPopulation.population,
            OfficialSeries.table_ref,
        ).join(OfficialSeries, OfficialSeries.id == OfficialPopulation.series_id)
    ).all()
    by_key: dict[tuple[int, int], dict[str, tuple[float, str]]] = {}
    for place_id, year, measure, figure, table in rows:
        if measure in PRIMARY_MEASURES:
            by_key.setdefault((place_id, year), {})[measure] = (figure, table)
    if not by_key:
        return 0
    official_places = {place_id for place_id, _ in by_key}
    session.execute(
        delete(PlacePopulation).where(
            PlacePopulation.place_id.in_(official_places),
            PlacePopulation.source.like("GeoNames%"),
        )
    )
    for (place_id, year), figures in by_key.items():
        measure = next(m for m in PRIMARY_MEASURES if m in figures)
        figure, table = figures[measure]
        source = f"Bureau of National Statistics, {table}: {MEASURE_NAMES[measure]}"
        others = [
            f"{MEASURE_NAMES[m]} {figures[m][0]:,.0f}"
            for m in ("city_administration", "city_proper")
            if m in figures and m != measure
        ]
        if others:
            source += f" (also published: {'; '.join(others)})"
        row = session.get(PlacePopulation, (place_id, year)) or PlacePopulation(
            place_id=place_id, year=year
        )
        row.population, row.source = round(figure), source
        session.add(row)
    session.flush()
    return len(by_key)


# ---------------------------------------------------------------------------------------------
# Checking and importing files


@dataclass
class ImportReport:
    """What an import did (or, with nothing written, would have done)."""

    check: CheckResult
    written: bool
    batch_id: int | None = None
    rows_written: int = 0
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.check.file,
            "rows": self.check.rows_total,
            "accepted": len(self.check.values),
            "rejected_rows": self.check.rejected_rows,
            "written": self.written,
            "rows_written": self.rows_written,
            "batch_id": self.batch_id,
            "problems": [p.as_dict() for p in self.check.problems],
            "warnings": [p.as_dict() for p in self.check.warnings],
        }


def check_frame(
    session: Session,
    frame: pd.DataFrame,
    *,
    file: str,
    layout: str = "long",
    rows: pd.Series | None = None,
    illustrative: bool = False,
    catalogue: Catalogue | None = None,
) -> CheckResult:
    catalogue = catalogue or load_catalogue()
    if rows is None:
        rows = pd.Series(range(2, len(frame) + 2))
    column_of_value = None
    if layout == "wide":
        from qala.components.catalog.tabular import RawTable

        long, rows = wide_to_long(RawTable(frame, file, "csv", "wide", rows))
        column_of_value = long["indicator"].astype(str)
        frame = long
    return check_long(
        frame,
        rows,
        file=file,
        catalogue=catalogue,
        place_ids=place_lookup(session),
        illustrative=illustrative,
        column_of_value=column_of_value,
    )


def check_file(
    database: Database, path: Path | str, *, illustrative: bool = False, name: str | None = None
) -> CheckResult:
    """Check a city data file without writing; ``name`` is what messages call it (an upload's
    own name rather than the server's temporary path)."""
    table = read_table(path, name=name)
    with database.session() as session:
        result = check_frame(
            session,
            table.frame,
            file=table.file,
            layout=table.layout,
            rows=table.rows,
            illustrative=illustrative,
        )
    result.encoding = table.encoding
    return result


def import_file(
    database: Database,
    path: Path | str,
    *,
    partial: bool = False,
    illustrative: bool = False,
    imported_by: str | None = None,
    name: str | None = None,
    place_scope: str | None = None,
) -> ImportReport:
    """Import a city data file. With problems, nothing is written unless ``partial``. ``name``
    is what messages and the import batch call the file (an upload's own name). With
    ``place_scope`` (the importer's city) a file with rows of any other place is refused
    (PermissionDeniedError), even with ``partial``."""
    table = read_table(path, name=name)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    with database.transaction() as session:
        result = check_frame(
            session,
            table.frame,
            file=table.file,
            layout=table.layout,
            rows=table.rows,
            illustrative=illustrative,
        )
        result.encoding = table.encoding
        if place_scope is not None:
            refuse_outside(session, result, place_scope)
        if result.problems and not partial:
            return ImportReport(result, written=False)
        batch = ImportBatch(
            file_name=name or Path(path).name,
            file_format=table.file_format,
            sha256=digest,
            imported_by=imported_by,
            rows_accepted=len(result.values),
            rows_rejected=len(result.rejected_rows),
            problems=[p.as_dict() for p in result.problems],
        )
        session.add(batch)
        session.flush()
        written = write_values(session, result.values, batch_id=batch.id)
        return ImportReport(result, written=True, batch_id=batch.id, rows_written=written)


def place_and_descendants(session: Session, code: str) -> dict[int, str]:
    """The place ``code`` and every place under it (its districts), by id."""
    rows = session.execute(select(Place.id, Place.code, Place.parent_id)).all()
    children: dict[int | None, list[tuple[int, str]]] = {}
    for place_id, place_code, parent_id in rows:
        children.setdefault(parent_id, []).append((place_id, place_code))
    found = {place_id: place_code for place_id, place_code, _ in rows if place_code == code}
    frontier = list(found)
    while frontier:
        for child_id, child_code in children.get(frontier.pop(), []):
            found[child_id] = child_code
            frontier.append(child_id)
    return found


def refuse_outside(session: Session, result: CheckResult, place: str) -> None:
    """PermissionDeniedError naming the rows of places outside ``place`` (and its districts):
    an account imports only its own city's data, and a file with any other is refused whole."""
    if result.values.empty:
        return
    allowed = place_and_descendants(session, place)
    outside = result.values[~result.values["place_id"].isin(list(allowed))]
    if outside.empty:
        return
    codes = {int(i): str(c) for i, c in session.execute(select(Place.id, Place.code))}
    named = [
        f"row {row['source_row']}: `{codes.get(int(row['place_id']), row['place_id'])}`"
        for _, row in outside.head(5).iterrows()
    ]
    more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
    raise PermissionDeniedError(
        f"{result.file}: places outside {place}, the place this account works for"
        f" ({'; '.join(named)}{more}); nothing was imported"
    ).with_message(
        msg(
            "import.outside_place",
            place=place,
            rows=", ".join(str(row["source_row"]) for _, row in outside.head(5).iterrows())
            + (" …" if len(outside) > 5 else ""),
        )
    )


def import_frame(
    database: Database,
    frame: pd.DataFrame,
    *,
    file: str,
    illustrative: bool = False,
    imported_by: str | None = None,
) -> ImportReport:
    """Import long-format values from a DataFrame (used by components writing computed indicators)."""
    with database.transaction() as session:
        result = check_frame(session, frame, file=file, illustrative=illustrative)
        if result.problems:
            raise ValidationError(result.problems, f"values for {file} are invalid")
        batch = ImportBatch(
            file_name=file,
            file_format="frame",
            imported_by=imported_by,
            rows_accepted=len(result.values),
        )
        session.add(batch)
        session.flush()
        written = write_values(session, result.values, batch_id=batch.id)
        return ImportReport(result, written=True, batch_id=batch.id, rows_written=written)


_UPSERT_COLUMNS = (
    "place_id",
    "indicator_id",
    "year",
    "value",
    "source",
    "note",
    "illustrative",
    "official",
    "series_id",
    "batch_id",
    "source_row",
    "updated_at",
)
# An official value is replaced only by another official value: an import of illustrative or
# city-reported values for the same place, indicator and year leaves it as it is (and is not
# counted as written).
_KEEP_OFFICIAL_SQL = "(NOT indicator_value.official OR {incoming})"


def write_values(session: Session, values: pd.DataFrame, *, batch_id: int | None) -> int:
    """Upsert checked values in bulk: the fast path behind every import. Returns the number of
    values inserted or updated (official values are never replaced by other kinds).

    ``values`` has the columns of ``validation.VALUE_COLUMNS``; the official loader adds
    ``official`` and ``series_id`` (absent, a value is not official)."""
    if values.empty:
        return 0
    # Sorted by the unique key, index pages are filled in order instead of at random.
    frame = values.sort_values(["place_id", "indicator_id", "year"], kind="stable")
    if "official" not in frame.columns:
        frame["official"] = False
    if "series_id" not in frame.columns:
        frame["series_id"] = None
    frame["batch_id"] = batch_id
    connection = session.connection()
    dialect = connection.dialect.name
    now = utcnow()
    # The raw driver gets what SQLAlchemy's DateTime would send: SQLite stores its own text format.
    stamp: object = now if dialect == "postgresql" else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    records = [(*record, stamp) for record in _records(frame[list(_UPSERT_COLUMNS[:-1])])]
    columns = ", ".join(_UPSERT_COLUMNS)
    if dialect == "postgresql":
        updates = ", ".join(f"{c} = excluded.{c}" for c in _UPSERT_COLUMNS[3:])
        return _copy_upsert_postgres(connection, records, columns, updates)
    return _split_upsert_sqlite(connection, frame, records, columns)


def _split_upsert_sqlite(
    connection: Any, frame: pd.DataFrame, records: list[tuple[Any, ...]], columns: str
) -> int:
    """Insert new keys and update existing ones as two plain statements.

    SQLite's ``INSERT … ON CONFLICT DO UPDATE`` is about three times slower than a plain insert
    when foreign keys are enforced (measured in bench/catalog_import.py), so the keys already
    stored are looked up first and the rows split.
    """
    cursor = connection.connection.driver_connection.cursor()
    # A bigger page cache for this connection keeps the indexes in memory during bulk loads.
    cursor.execute("PRAGMA cache_size = -262144")
    indicators = sorted(set(frame["indicator_id"]))
    existing: set[tuple[int, str, int]] = set()
    for start in range(0, len(indicators), 500):
        chunk = indicators[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        existing.update(
            cursor.execute(
                "SELECT place_id, indicator_id, year FROM indicator_value "
                f"WHERE indicator_id IN ({marks})",
                chunk,
            ).fetchall()
        )
    fresh = [r for r in records if (r[0], r[1], r[2]) not in existing]
    stored = [(*r[3:], *r[:3]) for r in records if (r[0], r[1], r[2]) in existing]
    placeholders = ", ".join("?" for _ in _UPSERT_COLUMNS)
    cursor.executemany(f"INSERT INTO indicator_value ({columns}) VALUES ({placeholders})", fresh)
    written = len(fresh)
    if stored:
        assignments = ", ".join(f"{c} = ?" for c in _UPSERT_COLUMNS[3:])
        keep_official = _KEEP_OFFICIAL_SQL.format(incoming="?")
        cursor.executemany(
            f"UPDATE indicator_value SET {assignments} "
            f"WHERE place_id = ? AND indicator_id = ? AND year = ? AND {keep_official}",
            [(*r, r[_UPSERT_COLUMNS.index("official") - 3]) for r in stored],
        )
        written += cursor.rowcount
    cursor.close()
    return written


def _records(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    columns: list[list[Any]] = []
    for name in frame.columns:
        column = frame[name]
        if name in ("place_id", "year", "source_row", "batch_id", "series_id"):
            columns.append([None if pd.isna(v) else int(v) for v in column.tolist()])
        elif name in ("illustrative", "official"):
            columns.append([bool(v) for v in column.tolist()])
        elif name == "value":
            columns.append([float(v) for v in column.tolist()])
        else:
            columns.append(
                [
                    None
                    if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v))
                    else str(v)
                    for v in column.tolist()
                ]
            )
    return list(zip(*columns, strict=True))


def _copy_upsert_postgres(
    connection: Any, records: Sequence[tuple[Any, ...]], columns: str, updates: str
) -> int:
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS indicator_value_incoming "
            "(LIKE indicator_value INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        cursor.execute("TRUNCATE indicator_value_incoming")
        with cursor.copy(f"COPY indicator_value_incoming ({columns}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)
        cursor.execute(
            f"INSERT INTO indicator_value ({columns}) SELECT {columns} FROM indicator_value_incoming "
            f"ON CONFLICT (place_id, indicator_id, year) DO UPDATE SET {updates} "
            f"WHERE {_KEEP_OFFICIAL_SQL.format(incoming='excluded.official')}"
        )
        return int(cursor.rowcount)


# ---------------------------------------------------------------------------------------------
# Reading values back


EXPORT_COLUMNS = [
    "place",
    "indicator",
    "year",
    "value",
    "unit",
    "source",
    "note",
    "illustrative",
    "official",
]


def data_version(session: Session) -> tuple[Any, ...]:
    """A fingerprint of the stored values, places, populations and single-industry periods: it
    changes when a value is written, updated or deleted, or a place or period is added or removed,
    so results computed from them can be cached until it does. (Reference data changed in place
    by a newer release is synced at start-up, which starts with empty caches.)"""
    counted = [IndicatorValue, Place, PlacePopulation, SingleIndustryPeriod]
    row = session.execute(
        select(
            *(select(func.count()).select_from(model).scalar_subquery() for model in counted),
            select(func.max(IndicatorValue.id)).scalar_subquery(),
            select(func.max(IndicatorValue.updated_at)).scalar_subquery(),
        )
    ).one()
    return tuple(row)


def values_frame(
    session: Session,
    *,
    places: Iterable[str] | None = None,
    indicators: Iterable[str] | None = None,
    years: Iterable[int] | None = None,
    framework: str | None = None,
) -> pd.DataFrame:
    """Stored values in long format (``EXPORT_COLUMNS``), sorted by place, indicator and year."""
    query = (
        select(
            Place.code,
            IndicatorValue.indicator_id,
            IndicatorValue.year,
            IndicatorValue.value,
            Indicator.unit,
            IndicatorValue.source,
            IndicatorValue.note,
            IndicatorValue.illustrative,
            IndicatorValue.official,
        )
        .join(Place, Place.id == IndicatorValue.place_id)
        .join(Indicator, Indicator.id == IndicatorValue.indicator_id)
        .order_by(Place.code, IndicatorValue.indicator_id, IndicatorValue.year)
    )
    if places is not None:
        query = query.where(Place.code.in_([p.lower() for p in places]))
    if indicators is not None:
        query = query.where(IndicatorValue.indicator_id.in_(list(indicators)))
    if years is not None:
        query = query.where(IndicatorValue.year.in_(list(years)))
    if framework is not None:
        ids = load_catalogue().framework(framework).indicator_ids()
        query = query.where(IndicatorValue.indicator_id.in_(ids))
    rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
    # Fixed dtypes whatever the rows hold (pandas infers differently for all-empty columns).
    frame = frame.astype(
        {"year": "int64", "value": "float64", "illustrative": bool, "official": bool}
    )
    for column in ("place", "indicator", "unit", "source", "note"):
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None)
    return frame


def to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per place-year, one column per indicator (the wide import layout)."""
    if long.empty:
        return pd.DataFrame(columns=["place", "year"])
    wide = long.pivot_table(
        index=["place", "year"], columns="indicator", values="value", aggfunc="first"
    )
    wide.columns.name = None
    return wide.reset_index()


def export_values(
    database: Database,
    out: Path | str | None,
    *,
    file_format: FileFormat = "csv",
    wide: bool = False,
    **filters: Any,
) -> bytes | None:
    with database.session() as session:
        frame = values_frame(session, **filters)
    if wide:
        frame = to_wide(frame)
    elif file_format == "csv":
        frame["value"] = frame["value"].map(repr)  # full precision: export → import loses nothing
    return write_table(frame, out, file_format)


def problems_table(problems: Sequence[Problem]) -> pd.DataFrame:
    return pd.DataFrame(
        [p.as_dict() for p in problems],
        columns=["file", "row", "column", "value", "code", "reason"],
    )
