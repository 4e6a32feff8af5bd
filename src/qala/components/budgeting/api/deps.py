"""What the budgeting routes share: who may call them and the shapes of their parameters."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated

from fastapi import Depends, Path, Query
from pydantic import Field, StringConstraints

from qala.components.accounts.deps import require_roles
from qala.components.accounts.models import User
from qala.components.budgeting.core import utc
from qala.runtime import Context

PREFIX = "/api/v1/budgeting"
TAGS: list[str | Enum] = ["budgeting"]
MAX_ID = 2**31 - 1

Citizen = Annotated[User, Depends(require_roles("citizen"))]
Official = Annotated[User, Depends(require_roles("operator", "administrator"))]
Analyst = Annotated[User, Depends(require_roles("operator", "analyst", "administrator"))]
Administrator = Annotated[User, Depends(require_roles("administrator"))]

Code = Annotated[str, Path(max_length=80, description="A process, project or consultation code.")]
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
PlaceFilter = Annotated[str | None, Query(max_length=80)]
MAX_TENGE = 10**15
"""Amounts in whole tenge stay below a quadrillion: beyond any budget, within a 64-bit column."""
ProjectChoice = Annotated[str, StringConstraints(max_length=40)]
"""A proposal's code on a ballot."""
Points = Annotated[int, Field(ge=0, le=100_000)]
"""Points a cumulative ballot gives one proposal."""
_Words = Annotated[str, StringConstraints(max_length=10_000)]
_Language = Annotated[str, StringConstraints(max_length=8)]
Text3 = dict[_Language, _Words] | _Words
"""Text in Kazakh, Russian and English (``{"kk": …, "ru": …, "en": …}``; a string is Russian)."""


def today(context: Context) -> date:
    """The date in UTC by the platform's clock (projects are late or on time by it)."""
    return utc(context.clock()).date()
