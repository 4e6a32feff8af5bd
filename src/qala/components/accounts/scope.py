"""Where a staff account may act: its place (a city's code, or the whole country) and, for
operators, its departments. Components check their own objects against it (a request's city and
department, an incident's place, an import's rows); this module only says what the account holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qala.core.errors import PermissionDeniedError

NATIONAL = None
"""The place of staff who work for the whole country."""


@dataclass(frozen=True)
class StaffScope:
    place: str | None
    """A place code (``karaganda``), or None for the national level."""
    departments: frozenset[str] | None
    """Department codes an operator works in; None: every department of the place."""

    @classmethod
    def of(cls, user: Any) -> StaffScope:
        """The scope of an account (a ``User``, or anything with ``place`` and ``department``)."""
        place = (getattr(user, "place", None) or "").strip().lower() or None
        raw = getattr(user, "department", None) or ""
        codes = frozenset(c.strip() for c in raw.split(",") if c.strip())
        return cls(place, codes or None)

    @property
    def national(self) -> bool:
        return self.place is None

    def covers(self, place_code: str | None) -> bool:
        """Whether the account may act in ``place_code`` (None: a national object, which only
        national staff may touch)."""
        return self.national or (place_code is not None and place_code.lower() == self.place)

    def require(self, place_code: str | None, what: str = "this") -> None:
        """PermissionDeniedError unless the account may act in ``place_code``."""
        if not self.covers(place_code):
            raise PermissionDeniedError(
                f"{what} is in {place_code or 'the national level'}; "
                f"this account works for {self.place}"
            )

    def place_or(self, asked: str | None) -> str | None:
        """The place a request names, else the account's own (checked either way)."""
        chosen = asked or self.place
        if chosen is not None:
            self.require(chosen)
        return chosen

    def covers_department(self, code: str | None) -> bool:
        return self.departments is None or (code is not None and code in self.departments)
