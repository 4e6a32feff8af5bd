"""Tables of the rating: stored index specs and the results built with them.

A result row keeps the exact spec text that made it (not only a link to a spec that may change),
the catalogue version, the year and filters, and whether any input value was illustrative.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qala.store.base import Base, utcnow


class RatingSpec(Base):
    """A named index spec (YAML text) kept in the store so results can point to it."""

    __tablename__ = "rating_spec"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, index=True)
    text: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RatingRun(Base):
    """One built index: which spec (and its text at the time), which data, which filters."""

    __tablename__ = "rating_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec_id: Mapped[int | None] = mapped_column(ForeignKey("rating_spec.id"), index=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    spec_text: Mapped[str] = mapped_column(Text)
    framework: Mapped[str] = mapped_column(String(60))
    catalogue_version: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str | None] = mapped_column(String(24))
    """None (all places of the level), ``city`` or ``single_industry``."""
    region: Mapped[str | None] = mapped_column(String(80))
    places: Mapped[int] = mapped_column(Integer)
    indicators: Mapped[int] = mapped_column(Integer)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    illustrative_share: Mapped[float] = mapped_column(Float, default=0.0)
    replications: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    release: Mapped[int | None] = mapped_column(Integer)
    """The number of the published release the run read (None: the store's live values)."""
    levels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Aggregate codes of the structure by level, and their names: {"codes": {...}, "names": {...}}."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    entries: Mapped[list[RatingEntry]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="RatingEntry.rank"
    )


class RatingEntry(Base):
    """One place in one run: index score and rank, Monte Carlo rank interval, area scores."""

    __tablename__ = "rating_entry"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("rating_run.id", ondelete="CASCADE"), primary_key=True
    )
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id"), primary_key=True)
    score: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)
    rank_median: Mapped[float | None] = mapped_column(Float)
    rank_q05: Mapped[float | None] = mapped_column(Float)
    rank_q95: Mapped[float | None] = mapped_column(Float)
    single_industry: Mapped[bool] = mapped_column(Boolean, default=False)
    region: Mapped[str | None] = mapped_column(String(80))
    imputed: Mapped[int] = mapped_column(Integer, default=0)
    """How many of the place's indicator values were imputed."""
    illustrative_share: Mapped[float] = mapped_column(Float, default=0.0)
    areas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Every aggregate's score and rank: {code: {"score": x, "rank": r}}."""

    run: Mapped[RatingRun] = relationship(back_populates="entries")
