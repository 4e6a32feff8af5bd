"""What operators do to incidents, as whole units of work: each step runs in its own transaction
and, once committed, is announced on the bus as ``operate.incident.<what happened>`` (the
operator board and other listeners follow these events).

The operator API's routes are thin calls to these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qala.components.operate import incidents
from qala.components.operate.incidents import IncidentView
from qala.components.operate.links import link_requests_near
from qala.events import Event
from qala.runtime import Context


@dataclass(frozen=True)
class IncidentAction:
    """One step of an incident's life: the service applying it and the event announcing it."""

    apply: Callable[..., object]
    """Called as ``apply(session, incident_id, actor=…, now=…, **fields)``."""
    announced_as: str
    """Past tense: published as ``operate.incident.<announced_as>``."""


ACTIONS: dict[str, IncidentAction] = {
    "acknowledge": IncidentAction(incidents.acknowledge, "acknowledged"),
    "assign": IncidentAction(incidents.assign, "assigned"),
    "reroute": IncidentAction(incidents.reroute, "rerouted"),
    "close": IncidentAction(incidents.close, "closed"),
    "note": IncidentAction(incidents.add_note, "noted"),
    "link": IncidentAction(incidents.link, "linked"),
}
"""The steps an operator takes on an existing incident, by name."""


def announce(context: Context, what: str, incident_id: int) -> None:
    """Tell the rest of the platform about a change (call it after the change committed)."""
    context.bus.publish(Event(f"operate.incident.{what}", {"id": incident_id}))


def take_action(
    context: Context, incident_id: int, action: str, *, actor: str, **fields: object
) -> IncidentView:
    """Apply ``ACTIONS[action]`` with ``fields`` (its service's own keyword arguments, e.g.
    ``assignee`` or ``reason``) in one transaction, announce it and return the incident as it now
    is, audit trail included."""
    step = ACTIONS[action]
    with context.database.transaction() as session:
        step.apply(session, incident_id, actor=actor, now=context.clock(), **fields)
        changed = incidents.view(incidents.get_incident(session, incident_id))
    announce(context, step.announced_as, incident_id)
    return changed


@dataclass(frozen=True)
class Reported:
    """An operator's report: the incident it opened or was added to, and which of the two."""

    incident: IncidentView
    created: bool


def report_incident(
    context: Context,
    *,
    actor: str,
    category: str,
    severity: str,
    title: str | None = None,
    description: str = "",
    place_code: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    request_ids: Sequence[str] = (),
) -> Reported:
    """Open an incident an operator reports, or add the report to the open incident with the same
    deduplication key; link the citizen requests named in ``request_ids`` and, for a new incident
    with a position, those already known near it. Announced as ``opened`` or ``reported``."""
    now = context.clock()
    with context.database.transaction() as session:
        result = incidents.open_incident(
            session,
            category=category,
            severity=severity,
            now=now,
            actor=actor,
            source="operator",
            title=title,
            description=description,
            place_code=place_code,
            lat=lat,
            lon=lon,
        )
        incident_id = result.incident.id
        for ref in request_ids:
            incidents.link(
                session, incident_id, kind="citizen_request", ref=ref, actor=actor, now=now
            )
        if result.created and lat is not None and lon is not None:
            link_requests_near(session, result.incident, now=now)
        reported = Reported(incidents.view(result.incident), result.created)
    announce(context, "opened" if result.created else "reported", incident_id)
    return reported


def escalate(context: Context) -> list[int]:
    """Escalate every incident past its deadline now (see ``incidents.escalate_due``); returns
    their ids, each announced as ``escalated``."""
    with context.database.transaction() as session:
        escalated = [i.id for i in incidents.escalate_due(session, now=context.clock())]
    for incident_id in escalated:
        announce(context, "escalated", incident_id)
    return escalated
