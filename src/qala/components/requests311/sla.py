"""Service levels: when an unclosed request is late and how far it has escalated.

An unclosed request reaches escalation level ``k`` (1–3) once ``k`` SLA periods have passed
since it was filed or reopened; :func:`escalate_overdue` raises every request to its level (the
timer in :mod:`~qala.components.requests311.escalation` runs it for every city).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.requests311.jurisdictions import JurisdictionInfo
from qala.components.requests311.lifecycle import Requests
from qala.components.requests311.models import Request
from qala.components.requests311.views import OPEN_STATUSES
from qala.core.clock import as_utc
from qala.events import EventBus

ESCALATION_LEVELS = 3


def escalation_level_due(expected_at: datetime, sla: timedelta, now: datetime) -> int:
    """The level an unclosed request with deadline ``expected_at`` has reached at ``now``: the
    whole SLA periods since its clock started (after a reopen it restarts at the deadline less
    the SLA), at most :data:`ESCALATION_LEVELS`."""
    start = expected_at - sla
    return min(ESCALATION_LEVELS, int((now - start) / sla))


def escalate_overdue(
    session: Session, jurisdiction: JurisdictionInfo, *, now: datetime, bus: EventBus | None = None
) -> list[tuple[int, int]]:
    """Raise the escalation level of every unclosed request past its SLA.

    Level ``k`` (1–3) is reached once ``k`` SLA periods have passed since the request (so level 1
    when the answer is late, level 2 at twice the SLA…). Returns (request id, new level) pairs;
    running it again changes nothing until more time passes.
    """
    staff = Requests(session, jurisdiction, actor="escalation", now=now, bus=bus)
    rows = session.execute(
        select(
            Request.id,
            Request.service_id,
            Request.requested_at,
            Request.expected_at,
            Request.escalation_level,
        ).where(
            Request.jurisdiction_id == jurisdiction.id,
            Request.status.in_(OPEN_STATUSES),
            Request.expected_at < now,
            Request.escalation_level < ESCALATION_LEVELS,
        )
    ).all()
    changed = []
    for request_id, service_id, _requested_at, expected_at, level in rows:
        sla = timedelta(hours=jurisdiction.sla_hours(service_id))
        target = escalation_level_due(as_utc(expected_at) or now, sla, now)
        if target > level:
            staff.escalate(request_id, level=target)
            changed.append((request_id, target))
    return changed
