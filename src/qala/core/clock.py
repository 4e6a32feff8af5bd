"""Time as Qala keeps it: every stored and compared moment is timezone-aware UTC.

Pages show times in the place's own zone; that conversion belongs to the shells. Here is only
what every layer shares: the current moment, and reading back what a store returned.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current moment, aware, in UTC (the default clock of a running platform)."""
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC time. SQLite hands back naive date-times, and every time Qala
    stores is UTC, so a naive one is read as UTC; an aware one is converted."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
