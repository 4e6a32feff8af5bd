"""Which city and departments a staff account may work in: its :class:`StaffScope` applied to
the catalogue (a city's code → jurisdiction, department codes → ids)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from qala.components.accounts.scope import StaffScope
from qala.components.requests311.jurisdictions import JurisdictionInfo, pick_jurisdiction
from qala.components.requests311.lifecycle import Requests
from qala.events import EventBus


def staff_jurisdiction(
    known: dict[str, JurisdictionInfo], scope: StaffScope, code: str | None
) -> JurisdictionInfo:
    """The city ``code`` names (else the account's own); PermissionDeniedError outside the
    account's place."""
    chosen = pick_jurisdiction(known, scope.place_or(code))
    scope.require(chosen.code, f"city `{chosen.code}`")
    return chosen


def department_ids(jurisdiction: JurisdictionInfo, scope: StaffScope) -> frozenset[int] | None:
    """The ids of the departments the account works in (None: every department). Codes the
    city does not have match nothing, so a misconfigured account sees nothing rather than all."""
    if scope.departments is None:
        return None
    return frozenset(d.id for d in jurisdiction.departments.values() if d.code in scope.departments)


def scoped_requests(
    session: Session,
    known: dict[str, JurisdictionInfo],
    user: Any,
    code: str | None,
    *,
    now: Any,
    bus: EventBus | None = None,
) -> Requests:
    """Staff operations on the requests ``user`` may see in the city ``code`` names."""
    scope = StaffScope.of(user)
    jurisdiction = staff_jurisdiction(known, scope, code)
    return Requests(
        session,
        jurisdiction,
        actor=user.username,
        now=now,
        bus=bus,
        departments=department_ids(jurisdiction, scope),
    )
