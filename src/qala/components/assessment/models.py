"""Tables of the assessment: readiness questionnaire responses and their answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qala.store.base import Base, utcnow


class ReadinessResponse(Base):
    """One filled-in readiness questionnaire for a place and year."""

    __tablename__ = "assessment_readiness_response"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    respondent: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(Text)
    """File name, ``api`` or ``web``."""
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    answers: Mapped[list[ReadinessAnswer]] = relationship(
        back_populates="response", cascade="all, delete-orphan"
    )


class ReadinessAnswer(Base):
    __tablename__ = "assessment_readiness_answer"

    response_id: Mapped[int] = mapped_column(
        ForeignKey("assessment_readiness_response.id", ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(String(120), primary_key=True)
    """A statement id of the ``chourabi2012`` framework."""
    score: Mapped[float | None] = mapped_column(Float)
    """1–5; None = don't know."""
    evidence: Mapped[str | None] = mapped_column(Text)

    response: Mapped[ReadinessResponse] = relationship(back_populates="answers")
