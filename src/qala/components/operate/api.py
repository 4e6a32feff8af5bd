"""Operator API under ``/api/v1/operate``: HTTP batch ingestion, sensors, findings, incidents
(open, acknowledge, assign, reroute, close, link, audit), escalation and indicator write-back.
Operators and administrators only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from qala.components.accounts.deps import (
    DATA_SET_BODY,
    CallerFirstRoute,
    ContextDep,
    Limit,
    Offset,
    RowId,
    require_roles,
)
from qala.components.accounts.models import User
from qala.components.accounts.scope import StaffScope
from qala.components.operate import incident_actions, incidents as incident_services, queries
from qala.components.operate.indicators import write_indicators
from qala.components.operate.ingest import check_silence, ingest_payload, register_sensors
from qala.core.bounds import Code, Name, Text
from qala.core.errors import ValidationError
from qala.core.i18n import Translator, parse_accept_language
from qala.core.jsontext import load_json
from qala.runtime import Context

PREFIX = "/api/v1/operate"


class IncidentCreate(BaseModel):
    category: Code = Field(
        description="e.g. water, heating, fire, road_accident (see routing.yaml)"
    )
    severity: Literal["info", "warning", "major", "critical"] = "major"
    title: Name | None = None
    description: Text = ""
    place_code: Code | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    request_ids: list[Code] = Field(
        default_factory=list, max_length=1000, description="citizen requests about the same thing"
    )


class Acknowledge(BaseModel):
    note: Text | None = None


class Assign(BaseModel):
    assignee: Name


class Reroute(BaseModel):
    service: Literal["emergency", "utilities", "police", "ecology"]
    reason: Text


class Close(BaseModel):
    reason: str = Field(
        description="resolved, false_alarm, duplicate, sensor_fault, no_action_needed, transferred",
        max_length=100,
    )
    note: Text | None = None


class Note(BaseModel):
    text: Text


class LinkIn(BaseModel):
    kind: Code = "citizen_request"
    ref: Code
    note: Text | None = None


class SensorIn(BaseModel):
    id: str = Field(..., min_length=1, max_length=200, pattern=r"^\S+$")
    name: str | None = Field(None, max_length=200)
    place_code: str | None = Field(None, max_length=80)
    group_id: str | None = Field(None, max_length=200)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


Operator = Annotated[User, Depends(require_roles("operator", "administrator"))]

router = APIRouter(route_class=CallerFirstRoute, prefix=PREFIX, tags=["operate"])


def reader_language(request: Request) -> Translator:
    """The reader's language for texts in answers: ``Accept-Language`` (kk, ru, en), else
    English. Machine fields (ids, codes, numbers, ``description_message``) never change."""
    return Translator(parse_accept_language(request.headers.get("accept-language")) or "en")


Reader = Annotated[Translator, Depends(reader_language)]


def actor(user: User) -> str:
    """How the audit trail names a signed-in user."""
    return f"user:{user.username}"


async def json_body(request: Request) -> Any:
    """The request body decoded as any JSON value (observations come in several shapes)."""
    raw = await request.body()
    try:
        return load_json(raw)
    except ValueError as exc:
        raise ValidationError.single(f"the body is not valid JSON: {exc}") from None


# ---- ingestion ----------------------------------------------------------------------------------


@router.post("/observations", max_body_size=DATA_SET_BODY)
def post_observations(
    payload: Annotated[Any, Depends(json_body)], _user: Operator, context: ContextDep
) -> dict[str, Any]:
    """Ingest a batch of observations (or Smart Data Models entities) in one transaction."""
    # All or nothing: a bad item refuses the batch (422, each problem names its item and field).
    return ingest_payload(context, payload, source="request body").as_dict()


@router.post("/sensors")
def post_sensors(sensors: list[SensorIn], _user: Operator, context: ContextDep) -> dict[str, int]:
    with context.database.transaction() as session:
        count = register_sensors(session, [s.model_dump() for s in sensors])
    return {"registered": count}


@router.get("/sensors")
def get_sensors(_user: Operator, context: ContextDep) -> list[dict[str, Any]]:
    with context.database.session() as session:
        return [s.as_dict() for s in queries.list_sensors(session)]


@router.get("/findings")
def get_findings(
    _user: Operator,
    context: ContextDep,
    reader: Reader,
    sensor: Code | None = None,
    kind: Code | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    with context.database.session() as session:
        found = queries.list_findings(session, sensor=sensor, kind=kind, limit=limit, offset=offset)
        return [f.as_dict(reader) for f in found]


@router.post("/rules/silence")
def post_silence(_user: Operator, context: ContextDep) -> dict[str, Any]:
    """Check every stream for silence now (the ingester also does it every minute)."""
    return check_silence(context).as_dict()


# ---- incidents ----------------------------------------------------------------------------------


@router.get("/incidents")
def get_incidents(
    user: Operator,
    context: ContextDep,
    reader: Reader,
    status: Code | None = None,
    service: Code | None = None,
    category: Code | None = None,
    place: Code | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    with context.database.session() as session:
        rows = incident_services.list_incidents(
            session,
            status=status,
            service=service,
            category=category,
            place_code=StaffScope.of(user).place_or(place),
            limit=limit,
            offset=offset,
        )
        return [r.as_dict(reader) for r in rows]


@router.post("/incidents", status_code=201)
def post_incident(
    body: IncidentCreate, user: Operator, response: Response, context: ContextDep
) -> dict[str, Any]:
    fields = body.model_dump()
    fields["place_code"] = StaffScope.of(user).place_or(body.place_code)
    reported = incident_actions.report_incident(context, actor=actor(user), **fields)
    if not reported.created:
        response.status_code = 200
    return {**reported.incident.as_dict(), "deduplicated": not reported.created}


@router.get("/incidents/{incident_id}")
def get_incident(
    incident_id: RowId, user: Operator, context: ContextDep, reader: Reader
) -> dict[str, Any]:
    with context.database.session() as session:
        incident = incident_services.incident_in_scope(session, incident_id, StaffScope.of(user))
        return incident_services.view(incident).as_dict(reader)


def _act(
    context: Context, incident_id: int, action: str, user: User, body: BaseModel
) -> dict[str, Any]:
    """Every action route: the body's fields are the action's arguments (on an incident of the
    account's place)."""
    with context.database.session() as session:
        incident_services.incident_in_scope(session, incident_id, StaffScope.of(user))
    return incident_actions.take_action(
        context, incident_id, action, actor=actor(user), **body.model_dump()
    ).as_dict()


@router.post("/incidents/{incident_id}/acknowledge")
def post_ack(
    incident_id: RowId, body: Acknowledge, user: Operator, context: ContextDep
) -> dict[str, Any]:
    return _act(context, incident_id, "acknowledge", user, body)


@router.post("/incidents/{incident_id}/assign")
def post_assign(
    incident_id: RowId, body: Assign, user: Operator, context: ContextDep
) -> dict[str, Any]:
    return _act(context, incident_id, "assign", user, body)


@router.post("/incidents/{incident_id}/reroute")
def post_reroute(
    incident_id: RowId, body: Reroute, user: Operator, context: ContextDep
) -> dict[str, Any]:
    return _act(context, incident_id, "reroute", user, body)


@router.post("/incidents/{incident_id}/close")
def post_close(
    incident_id: RowId, body: Close, user: Operator, context: ContextDep
) -> dict[str, Any]:
    return _act(context, incident_id, "close", user, body)


@router.post("/incidents/{incident_id}/notes")
def post_note(
    incident_id: RowId, body: Note, user: Operator, context: ContextDep
) -> dict[str, Any]:
    return _act(context, incident_id, "note", user, body)


@router.post("/incidents/{incident_id}/links")
def post_link(
    incident_id: RowId, body: LinkIn, user: Operator, context: ContextDep
) -> dict[str, Any]:
    return _act(context, incident_id, "link", user, body)


@router.get("/incidents/{incident_id}/audit")
def get_audit(incident_id: RowId, user: Operator, context: ContextDep) -> list[dict[str, Any]]:
    with context.database.session() as session:
        incident = incident_services.view(
            incident_services.incident_in_scope(session, incident_id, StaffScope.of(user))
        )
    audit: list[dict[str, Any]] = incident.as_dict()["audit"]
    return audit


@router.post("/escalations/run")
def post_escalate(user: Operator, context: ContextDep) -> dict[str, Any]:
    StaffScope.of(user).require(None, "escalating every city's incidents")
    return {"escalated": incident_actions.escalate(context)}


@router.post("/indicators/write")
def post_indicators(
    user: Operator, context: ContextDep, year: Annotated[int, Query(ge=1900, le=2100)], place: Code
) -> dict[str, Any]:
    StaffScope.of(user).require(place, f"place `{place}`")
    return write_indicators(context, year=year, city=place).as_dict()


@router.get("/summary")
def get_summary(_user: Operator, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return queries.summary(session, now=context.clock()).as_dict()
