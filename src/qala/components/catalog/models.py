"""Tables of the foundation: places, the indicator catalogue, indicator values and their provenance."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from qala.core.errors import ConflictError
from qala.store.base import Base, utcnow


class Place(Base):
    """A territorial unit: country, region (oblys), city or district."""

    __tablename__ = "place"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("place.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    significance: Mapped[str | None] = mapped_column(String(16))
    name_kk: Mapped[str] = mapped_column(String(200))
    name_ru: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    geonames_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)

    parent: Mapped[Place | None] = relationship(remote_side=[id])
    populations: Mapped[list[PlacePopulation]] = relationship(
        back_populates="place", cascade="all, delete-orphan", order_by="PlacePopulation.year"
    )
    single_industry_periods: Mapped[list[SingleIndustryPeriod]] = relationship(
        back_populates="place", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("level in ('country','region','city','district')", name="level_known"),
    )

    def name(self, language: str) -> str:
        return str(getattr(self, f"name_{language}", None) or self.name_en)


class PlacePopulation(Base):
    __tablename__ = "place_population"

    place_id: Mapped[int] = mapped_column(ForeignKey("place.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    population: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)

    place: Mapped[Place] = relationship(back_populates="populations")


class SingleIndustryPeriod(Base):
    """A span of years during which a town was on the official single-industry (monotown) list."""

    __tablename__ = "single_industry_period"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id"), index=True)
    from_year: Mapped[int] = mapped_column(Integer)
    to_year: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)

    place: Mapped[Place] = relationship(back_populates="single_industry_periods")


class Indicator(Base):
    """The store's copy of a catalogue indicator (the catalogue files are the authority)."""

    __tablename__ = "indicator"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    framework: Mapped[str] = mapped_column(String(60), index=True)
    area: Mapped[str] = mapped_column(String(120))
    name_kk: Mapped[str] = mapped_column(Text)
    name_ru: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(40))
    polarity: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(16), index=True)
    catalogue_version: Mapped[str] = mapped_column(String(64))


class ImportBatch(Base):
    """One import: which file, when, and what it did. Every value points back to its batch."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    imported_by: Mapped[str | None] = mapped_column(String(120))
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)


class IndicatorValue(Base):
    """The value of one indicator for one place in one year, with where it came from."""

    __tablename__ = "indicator_value"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id"))
    indicator_id: Mapped[str] = mapped_column(ForeignKey("indicator.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    """Generated for demonstration, never official statistics; shown as such everywhere."""
    official: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Published by a statistics office or the World Bank and loaded as published (or computed
    from such figures only); ``series_id`` says from which table. Never set with ``illustrative``."""
    series_id: Mapped[int | None] = mapped_column(ForeignKey("official_series.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))
    source_row: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("place_id", "indicator_id", "year"),
        Index("ix_indicator_value_indicator_year", "indicator_id", "year"),
        # data_version() asks for the newest change on every cached page: without the index
        # that is a scan of every value (27 ms of a 150 ms page budget at 92,000 values).
        Index("ix_indicator_value_updated_at", "updated_at"),
        CheckConstraint("NOT (official AND illustrative)", name="official_or_illustrative"),
    )


class OfficialSeries(Base):
    """One published series of an official table: who published it, where, and how Qala reads it.

    Official values and populations point here, so every figure can be traced to its publisher,
    table, release, file, sheet and printed title, with the unit as printed and the conversion
    Qala applied to reach the catalogue unit.
    """

    __tablename__ = "official_series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    """Stable id of the series in ``data/official/series.csv`` (or the population measure)."""
    dataset: Mapped[str] = mapped_column(String(80))
    publisher: Mapped[str] = mapped_column(Text)
    table_ref: Mapped[str] = mapped_column(Text)
    release: Mapped[str] = mapped_column(Text)
    file: Mapped[str] = mapped_column(Text)
    sheet: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    """The series' title as printed (with its subgroup and period)."""
    unit_published: Mapped[str] = mapped_column(Text)
    conversion: Mapped[str] = mapped_column(Text)
    indicator_id: Mapped[str | None] = mapped_column(String(120))
    licence: Mapped[str] = mapped_column(Text)


class OfficialPopulation(Base):
    """A population figure as an official table publishes it, kept apart by measure.

    ``measure`` is ``start_of_year`` (1 January count), ``annual_average`` (a different measure:
    the mean over the year), or for cities ``city_administration`` (қ.ә.: the city with its
    subordinate settlements) and ``city_proper`` (қаласы). The figure a place uses for
    per-capita values is copied into ``place_population`` (see ``official.PRIMARY_MEASURES``).
    """

    __tablename__ = "official_population"

    place_id: Mapped[int] = mapped_column(ForeignKey("place.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    measure: Mapped[str] = mapped_column(String(24), primary_key=True)
    population: Mapped[float] = mapped_column(Float)
    series_id: Mapped[int] = mapped_column(ForeignKey("official_series.id"))
    source_row: Mapped[int | None] = mapped_column(Integer)


class DataCall(Base):
    """The yearly data call: which places report which indicators for a year, by a deadline."""

    __tablename__ = "data_call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    indicators: Mapped[list[str]] = mapped_column(JSON)
    places: Mapped[list[str]] = mapped_column(JSON)
    deadline: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CallValue(Base):
    """One value a place submitted to a call, with its evidence, plausibility flags and review."""

    __tablename__ = "call_value"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("data_call.id", ondelete="CASCADE"))
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id"))
    indicator_id: Mapped[str] = mapped_column(ForeignKey("indicator.id"))
    value: Mapped[float] = mapped_column(Float)
    evidence: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Plausibility warnings (they flag, never reject): year-on-year jump, outside similar places,
    a part above its whole; each ``{"code", "text", …numbers}``."""
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    """submitted, accepted or returned (with ``review_reason``)."""
    submitted_by: Mapped[str] = mapped_column(String(120))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(120))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answer: Mapped[str | None] = mapped_column(Text)
    """The submitter's answer to the last return (cleared when the value is returned again)."""
    official: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Submitted by the official-statistics import: the value as its publisher printed it (only
    a national actor may submit official values; a place's submitter never does)."""

    __table_args__ = (UniqueConstraint("call_id", "place_id", "indicator_id"),)


class CallEvent(Base):
    """The audit trail of a call: every submission, review and publication, by whom and when."""

    __tablename__ = "call_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("data_call.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Release(Base):
    """A published, numbered and immutable set of accepted values. A correction is a new release
    with a changelog against the previous one; nothing in a release is ever updated."""

    __tablename__ = "data_release"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("data_call.id"))
    year: Mapped[int] = mapped_column(Integer)
    published_by: Mapped[str] = mapped_column(String(120))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    incomplete_reason: Mapped[str | None] = mapped_column(Text)
    """Why the call was published with places or indicators missing (required then)."""
    changelog: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """added, changed (old → new) and removed values against the previous release of the call."""
    sha256: Mapped[str] = mapped_column(String(64))
    """Of the release's values in canonical order: any later change shows."""


class ReleaseValue(Base):
    __tablename__ = "data_release_value"

    release_id: Mapped[int] = mapped_column(
        ForeignKey("data_release.id", ondelete="RESTRICT"), primary_key=True
    )
    place_code: Mapped[str] = mapped_column(String(80), primary_key=True)
    indicator_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(40))
    evidence: Mapped[str | None] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(String(120))
    approved_by: Mapped[str] = mapped_column(String(120))
    official: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """An official statistic (published by BNS or the World Bank, or computed from such figures
    only), released through the official-statistics import's call: a run on the release reads it
    as official. Values a place reported are not."""


@event.listens_for(Session, "before_flush")
def _releases_are_immutable(session: Session, _context: object, _instances: object) -> None:
    for row in (*session.dirty, *session.deleted):
        if isinstance(row, (Release, ReleaseValue)) and (
            row in session.deleted or session.is_modified(row)
        ):
            raise ConflictError(
                "a published release cannot be changed; publish a new release with the correction"
            )
