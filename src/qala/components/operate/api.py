"""Operator API under ``/api/v1/operate``: HTTP batch ingestion, sensors, findings, incidents
(open, acknowledge, assign, reroute, close, link, audit), escalation and indicator write-back.
Operators and administrators only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from qala.components.accounts.deps import require_roles
from qala.components.accounts.models import User
from qala.components.operate import incidents as incident_services
from qala.components.operate import queries
from qala.components.operate.ingest import check_silence, ingest
from qala.components.operate.links import link_requests_near
from qala.components.operate.readings import readings_from_payload
from qala.events import Event
from qala.runtime import Context

PREFIX = "/api/v1/operate"


class IncidentCreate(BaseModel):
    category: str = Field(description="e.g. water, heating, fire, road_accident (see routing.yaml)")
    severity: Literal["info", "warning", "major", "critical"] = "major"
    title: str | None = None
    description: str = ""
    place_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    request_ids: list[str] = Field(
        default_factory=list, description="citizen requests about the same thing"
    )


class Acknowledge(BaseModel):
    note: str | None = None


class Assign(BaseModel):
    assignee: str


class Reroute(BaseModel):
    service: Literal["emergency", "utilities", "police", "ecology"]
    reason: str


class Close(BaseModel):
    reason: str = Field(
        description="resolved, false_alarm, duplicate, sensor_fault, no_action_needed, transferred"
    )
    note: str | None = None


class Note(BaseModel):
    text: str


class LinkIn(BaseModel):
    kind: str = "citizen_request"
    ref: str
    note: str | None = None


class SensorIn(BaseModel):
    id: str
    name: str | None = None
    place_code: str | None = None
    group_id: str | None = None
    lat: float | None = None
    lon: float | None = None


Operator = Annotated[User, Depends(require_roles("operator", "administrator"))]


def build_router(context: Context) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["operate"])

    def actor(user: User) -> str:
        return f"user:{user.username}"

    # ---- ingestion ------------------------------------------------------------------------------

    @router.post("/observations")
    def post_observations(
        payload: Annotated[Any, Depends(_json_body)], _user: Operator
    ) -> dict[str, Any]:
        """Ingest a batch of observations (or Smart Data Models entities) in one transaction."""
        readings = readings_from_payload(payload, source="request body")
        return ingest(context, readings).as_dict()

    @router.post("/sensors")
    def post_sensors(sensors: list[SensorIn], _user: Operator) -> dict[str, int]:
        from qala.components.operate.ingest import register_sensors

        with context.database.transaction() as session:
            count = register_sensors(session, [s.model_dump() for s in sensors])
        return {"registered": count}

    @router.get("/sensors")
    def get_sensors(_user: Operator) -> list[dict[str, Any]]:
        with context.database.session() as session:
            return [s.as_dict() for s in queries.list_sensors(session)]

    @router.get("/findings")
    def get_findings(
        _user: Operator,
        sensor: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        with context.database.session() as session:
            return [
                f.as_dict()
                for f in queries.list_findings(
                    session, sensor=sensor, kind=kind, limit=limit, offset=offset
                )
            ]

    @router.post("/rules/silence")
    def post_silence(_user: Operator) -> dict[str, Any]:
        """Check every stream for silence now (the ingester also does it every minute)."""
        return check_silence(context).as_dict()

    # ---- incidents ------------------------------------------------------------------------------

    @router.get("/incidents")
    def get_incidents(
        _user: Operator,
        status: str | None = None,
        service: str | None = None,
        category: str | None = None,
        place: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        with context.database.session() as session:
            rows = incident_services.list_incidents(
                session,
                status=status,
                service=service,
                category=category,
                place_code=place,
                limit=limit,
                offset=offset,
            )
            return [r.as_dict() for r in rows]

    @router.post("/incidents", status_code=201)
    def post_incident(body: IncidentCreate, user: Operator, response: Response) -> dict[str, Any]:
        now = context.clock()
        with context.database.transaction() as session:
            result = incident_services.open_incident(
                session,
                category=body.category,
                severity=body.severity,
                now=now,
                actor=actor(user),
                source="operator",
                title=body.title,
                description=body.description,
                place_code=body.place_code,
                lat=body.lat,
                lon=body.lon,
            )
            for ref in body.request_ids:
                incident_services.link(
                    session,
                    result.incident.id,
                    kind="citizen_request",
                    ref=ref,
                    actor=actor(user),
                    now=now,
                )
            if result.created and body.lat is not None and body.lon is not None:
                link_requests_near(session, result.incident, now=now)
            data = incident_services.view(result.incident).as_dict()
        if not result.created:
            response.status_code = 200
        data["deduplicated"] = not result.created
        publish("opened" if result.created else "reported", result.incident.id)
        return data

    @router.get("/incidents/{incident_id}")
    def get_incident(incident_id: int, _user: Operator) -> dict[str, Any]:
        with context.database.session() as session:
            return incident_services.view(
                incident_services.get_incident(session, incident_id)
            ).as_dict()

    def publish(action: str, incident_id: int) -> None:
        """Tell the rest of the platform (the operator board, …) after the change committed."""
        context.bus.publish(Event(f"operate.incident.{action}", {"id": incident_id}))

    def _change(incident_id: int, apply: Any, action: str) -> dict[str, Any]:
        with context.database.transaction() as session:
            apply(session)
            data = incident_services.view(
                incident_services.get_incident(session, incident_id)
            ).as_dict()
        publish(action, incident_id)
        return data

    @router.post("/incidents/{incident_id}/acknowledge")
    def post_ack(incident_id: int, body: Acknowledge, user: Operator) -> dict[str, Any]:
        return _change(
            incident_id,
            lambda s: incident_services.acknowledge(
                s, incident_id, actor=actor(user), now=context.clock(), note=body.note
            ),
            "acknowledged",
        )

    @router.post("/incidents/{incident_id}/assign")
    def post_assign(incident_id: int, body: Assign, user: Operator) -> dict[str, Any]:
        return _change(
            incident_id,
            lambda s: incident_services.assign(
                s, incident_id, assignee=body.assignee, actor=actor(user), now=context.clock()
            ),
            "assigned",
        )

    @router.post("/incidents/{incident_id}/reroute")
    def post_reroute(incident_id: int, body: Reroute, user: Operator) -> dict[str, Any]:
        return _change(
            incident_id,
            lambda s: incident_services.reroute(
                s,
                incident_id,
                service=body.service,
                actor=actor(user),
                now=context.clock(),
                reason=body.reason,
            ),
            "rerouted",
        )

    @router.post("/incidents/{incident_id}/close")
    def post_close(incident_id: int, body: Close, user: Operator) -> dict[str, Any]:
        return _change(
            incident_id,
            lambda s: incident_services.close(
                s,
                incident_id,
                reason=body.reason,
                actor=actor(user),
                now=context.clock(),
                note=body.note,
            ),
            "closed",
        )

    @router.post("/incidents/{incident_id}/notes")
    def post_note(incident_id: int, body: Note, user: Operator) -> dict[str, Any]:
        return _change(
            incident_id,
            lambda s: incident_services.add_note(
                s, incident_id, text=body.text, actor=actor(user), now=context.clock()
            ),
            "noted",
        )

    @router.post("/incidents/{incident_id}/links")
    def post_link(incident_id: int, body: LinkIn, user: Operator) -> dict[str, Any]:
        return _change(
            incident_id,
            lambda s: incident_services.link(
                s,
                incident_id,
                kind=body.kind,
                ref=body.ref,
                actor=actor(user),
                now=context.clock(),
                note=body.note,
            ),
            "linked",
        )

    @router.get("/incidents/{incident_id}/audit")
    def get_audit(incident_id: int, _user: Operator) -> list[dict[str, Any]]:
        with context.database.session() as session:
            incident = incident_services.get_incident(session, incident_id)
            audit: list[dict[str, Any]] = incident_services.view(incident).as_dict()["audit"]
            return audit

    @router.post("/escalations/run")
    def post_escalate(_user: Operator) -> dict[str, Any]:
        with context.database.transaction() as session:
            escalated = [i.id for i in incident_services.escalate_due(session, now=context.clock())]
        for incident_id in escalated:
            publish("escalated", incident_id)
        return {"escalated": escalated}

    @router.post("/indicators/write")
    def post_indicators(_user: Operator, year: int, place: str) -> dict[str, Any]:
        from qala.components.operate.indicators import write_indicators

        return write_indicators(context, year=year, city=place).as_dict()

    @router.get("/summary")
    def get_summary(_user: Operator) -> dict[str, Any]:
        with context.database.session() as session:
            return queries.summary(session, now=context.clock()).as_dict()

    return router


async def _json_body(request: Request) -> Any:
    import json

    from qala.core.errors import ValidationError

    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValidationError.single(f"the body is not valid JSON: {exc}") from None
