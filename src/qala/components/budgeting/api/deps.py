"""What the budgeting routes share: who may call them and the shapes of their parameters."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated

from fastapi import Depends, Path, Query

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
Text3 = dict[str, str] | str
"""Text in Kazakh, Russian and English (``{"kk": …, "ru": …, "en": …}``; a string is Russian)."""


def today(context: Context) -> date:
    """The date in UTC by the platform's clock (projects are late or on time by it)."""
    return utc(context.clock()).date()
