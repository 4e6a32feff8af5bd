"""Reading places and what kind a value is: the catalogue's queries that need neither pandas
nor the import machinery, so a command that lists places starts without them.

``qala.components.catalog.services`` re-exports every name here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.catalog.models import (
    IndicatorValue,
    OfficialSeries,
    Place,
    PlacePopulation,
    SingleIndustryPeriod,
)
from qala.core.errors import NotFoundError


def place_lookup(session: Session) -> dict[str, int]:
    """Lower-cased codes and names (kk, ru, en) of every place → place id."""
    lookup: dict[str, int] = {}
    for place in session.scalars(select(Place)):
        for key in (place.name_en, place.name_ru, place.name_kk):
            if key:
                lookup.setdefault(key.strip().lower(), place.id)
    for place in session.scalars(select(Place)):  # codes win over names
        lookup[place.code.lower()] = place.id
    return lookup


def get_place(session: Session, code: str) -> Place:
    place = session.scalar(select(Place).where(Place.code == code.lower()))
    if place is None:
        lookup = place_lookup(session)
        place_id = lookup.get(code.strip().lower())
        place = session.get(Place, place_id) if place_id else None
    if place is None:
        raise NotFoundError(f"no place `{code}`; see `qala places list`")
    return place


def list_places(session: Session, *, level: str | None = None) -> list[Place]:
    query = select(Place).order_by(Place.level, Place.code)
    if level:
        query = query.where(Place.level == level)
    return list(session.scalars(query))


def single_industry_codes(session: Session, year: int) -> set[str]:
    rows = session.execute(
        select(Place.code)
        .join(SingleIndustryPeriod)
        .where(SingleIndustryPeriod.from_year <= year)
        .where((SingleIndustryPeriod.to_year.is_(None)) | (SingleIndustryPeriod.to_year >= year))
    )
    return {code for (code,) in rows}


def population(session: Session, place_id: int, year: int) -> int | None:
    """Population in ``year``, else the latest earlier figure, else the earliest later one."""
    rows = session.execute(
        select(PlacePopulation.year, PlacePopulation.population).where(
            PlacePopulation.place_id == place_id
        )
    ).all()
    if not rows:
        return None
    earlier = sorted((y, p) for y, p in rows if y <= year)
    return earlier[-1][1] if earlier else min(rows)[1]


def population_record(session: Session, place_id: int, year: int) -> PlacePopulation | None:
    """The population row ``population`` uses (figure, its year and its source, which says whether
    it is an official BNS figure and which one), or None."""
    rows = list(
        session.scalars(select(PlacePopulation).where(PlacePopulation.place_id == place_id))
    )
    if not rows:
        return None
    earlier = [r for r in rows if r.year <= year]
    return max(earlier, key=lambda r: r.year) if earlier else min(rows, key=lambda r: r.year)


VALUE_KINDS = ("official", "observed", "illustrative", "reported")
# Series datasets of measurements (monitoring stations), stored with a series like published
# statistics but not statistics themselves.
OBSERVED_DATASETS = frozenset({"airdata_kz_daily"})


def value_kind(*, official: bool, illustrative: bool, dataset: str | None = None) -> str:
    """What a stored value is: ``official`` (published statistics, see its series),
    ``observed`` (station measurements with a series, e.g. AirData.kz air quality; ``dataset`` is
    the series' dataset), ``illustrative`` (generated for the demo) or ``reported`` (imported by a
    city or computed by a component from operational data). Pages, reports and API answers label
    values with it."""
    if official:
        return "observed" if dataset in OBSERVED_DATASETS else "official"
    return "illustrative" if illustrative else "reported"


def value_provenance(
    session: Session, place_code: str, indicator_id: str, year: int
) -> dict[str, Any] | None:
    """Where an official value comes from (publisher, table, release, file, sheet, unit as
    published, conversion, licence, note), or None for a value that is not official."""
    row = session.execute(
        select(IndicatorValue, OfficialSeries)
        .join(Place, Place.id == IndicatorValue.place_id)
        .join(OfficialSeries, OfficialSeries.id == IndicatorValue.series_id)
        .where(
            Place.code == place_code.lower(),
            IndicatorValue.indicator_id == indicator_id,
            IndicatorValue.year == year,
            IndicatorValue.official.is_(True),
        )
    ).first()
    if row is None:
        return None
    value, series = row
    return {
        "kind": value_kind(official=True, illustrative=False, dataset=series.dataset),
        "series": series.key,
        "publisher": series.publisher,
        "table": series.table_ref,
        "release": series.release,
        "file": series.file,
        "sheet": series.sheet,
        "unit_published": series.unit_published,
        "conversion": series.conversion,
        "licence": series.licence,
        "note": value.note,
    }


def value_sources(
    session: Session,
    *,
    places: list[str] | None = None,
    indicators: list[str] | None = None,
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(place code, indicator, year) → kind and source (publisher, table, release, licence) of
    every stored value that has a series: what pages show beside an official or observed value.
    Values without a series are illustrative or reported (``value_kind``)."""
    query = (
        select(
            Place.code,
            IndicatorValue.indicator_id,
            IndicatorValue.year,
            OfficialSeries.dataset,
            OfficialSeries.publisher,
            OfficialSeries.table_ref,
            OfficialSeries.release,
            OfficialSeries.licence,
        )
        .join(Place, Place.id == IndicatorValue.place_id)
        .join(OfficialSeries, OfficialSeries.id == IndicatorValue.series_id)
        .where(IndicatorValue.official.is_(True))
    )
    if places is not None:
        query = query.where(Place.code.in_([p.lower() for p in places]))
    if indicators is not None:
        query = query.where(IndicatorValue.indicator_id.in_(indicators))
    return {
        (code, indicator, int(year)): {
            "kind": value_kind(official=True, illustrative=False, dataset=dataset),
            "publisher": publisher,
            "table": table,
            "release": release,
            "licence": licence,
        }
        for code, indicator, year, dataset, publisher, table, release, licence in session.execute(
            query
        )
    }
