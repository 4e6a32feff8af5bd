"""Ingestion (idempotence, order, restart), incidents (routing, dedup, escalation, close, links,
audit) and indicators — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from qala.components.operate import incidents as incident_services
from qala.components.operate.ingest import RulesRunner, ingest, register_sensors
from qala.components.operate.models import (
    DetectorRecord,
    Entity,
    Finding,
    Incident,
    Observation,
)
from qala.components.operate.readings import Reading, readings_from_payload
from qala.core.errors import ConflictError, ValidationError
from qala.events import Event, publish_in_transaction
from qala.runtime import Context

T0 = 1_764_547_200_000_000  # 2025-12-01T00:00Z
HOUR = 3_600_000_000


def _hourly(sensor: str, values: list[float], start: int = T0) -> list[Reading]:
    return [Reading(sensor, "pm25", start + i * HOUR, v, "ug/m3") for i, v in enumerate(values)]


def _count(context: Context, model: type) -> int:
    with context.database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_repeated_readings_and_message_ids_are_stored_once(context: Context) -> None:
    readings = _hourly("st-1", [10.0, 11.0, 12.0])
    first = ingest(context, readings)
    again = ingest(context, [*readings, readings[0]])
    assert (first.stored, again.stored, again.duplicates) == (3, 0, 4)
    by_id = readings_from_payload(
        [
            {
                "id": "msg-1",
                "sensor": "st-2",
                "quantity": "pm25",
                "time": "2025-12-01T05:00:00+05:00",
                "value": 9,
            },
            {
                "id": "msg-1",
                "sensor": "st-2",
                "quantity": "pm25",
                "time": "2025-12-01T06:00:00+05:00",
                "value": 9,
            },
        ]
    )
    assert ingest(context, by_id).stored == 1  # the second carries a message id already seen
    assert _count(context, Observation) == 4


def test_bad_payload_names_item_and_field() -> None:
    with pytest.raises(ValidationError) as caught:
        readings_from_payload(
            [{"sensor": "s", "quantity": "pm25", "time": "2025-12-01T05:00:00", "value": "high"}]
        )
    problems = {(p.row, p.column) for p in caught.value.problems}
    assert problems == {(0, "time"), (0, "value")}


def test_saturated_sensor_opens_one_deduplicated_fault_incident_routed_by_district(
    context: Context,
) -> None:
    with context.database.transaction() as session:
        register_sensors(
            session,
            [
                {
                    "id": "st-9",
                    "place_code": "astana-yesil-district",
                    "lat": 51.10,
                    "lon": 71.42,
                    "group_id": "g",
                }
            ],
        )
    report = ingest(context, _hourly("st-9", [40.0, 42.0, 1000.0, 1000.0, 1000.0, 41.0]))
    assert report.stored == 6
    with context.database.session() as session:
        incidents = session.scalars(select(Incident)).all()
        faults = session.scalars(select(Finding).where(Finding.kind == "fault")).all()
    assert {f.rule_id for f in faults} >= {"fault.saturated"}
    fault_incidents = [i for i in incidents if i.category == "sensor_fault"]
    assert len(fault_incidents) == 1  # three saturated readings, one incident
    incident = fault_incidents[0]
    assert (incident.service, incident.unit) == ("ecology", "ecology:astana-yesil-district")
    assert not [i for i in incidents if i.category in ("air_quality", "air_pollution_episode")]
    # Re-ingesting the same readings changes nothing (findings are deduplicated).
    before = _count(context, Finding)
    assert ingest(context, _hourly("st-9", [40.0, 42.0, 1000.0])).stored == 0
    assert _count(context, Finding) == before


def test_rule_state_survives_a_restart(context: Context) -> None:
    """A fresh runner (new process) resumes from the stored records: one row per stream."""
    values = [30.0 + (i % 5) for i in range(30)]
    first = RulesRunner()
    ingest(context, _hourly("st-r", values[:10]), runner=first)
    ingest(context, _hourly("st-r", values[10:20], start=T0 + 10 * HOUR), runner=first)
    ingest(context, _hourly("st-q", values[:3]), runner=first)
    with context.database.session() as session:
        rows = {
            (r.kind, r.subject, r.quantity): r.version
            for r in session.scalars(select(DetectorRecord))
        }
    # Each stream its own row, written once per batch that changed it.
    assert rows[("stream", "st-r", "pm25")] == 2 and rows[("stream", "st-q", "pm25")] == 1
    resumed = RulesRunner()
    ingest(context, _hourly("st-r", values[20:], start=T0 + 20 * HOUR), runner=resumed)
    straight = RulesRunner()
    from qala.engines.detect import StreamingEvaluator

    reference = StreamingEvaluator(straight.rule_sets["air"])
    for r in _hourly("st-r", values):
        reference.feed_value(r.sensor, r.quantity, r.time_us, r.value, r.unit)
    evaluator = resumed.evaluator("air")
    assert evaluator.state()["streams"] == reference.state()["streams"]
    # The other stream was never needed by the resumed process: it was not even loaded.
    assert [s["sensor"] for s in evaluator.state()["streams"]] == ["st-r"]
    # And the first process, behind on st-r, reloads it (its version changed) before going on.
    ingest(context, _hourly("st-r", [31.0], start=T0 + 30 * HOUR), runner=first)
    reference.feed_value("st-r", "pm25", T0 + 30 * HOUR, 31.0, "ug/m3")
    mine = [s for s in first.evaluator("air").state()["streams"] if s["sensor"] == "st-r"]
    assert mine == [s for s in reference.state()["streams"] if s["sensor"] == "st-r"]


def test_operator_incident_lifecycle_with_audit_escalation_and_links(context: Context) -> None:
    opened = datetime(2025, 12, 3, 8, 0, tzinfo=UTC)
    with context.database.transaction() as session:
        first = incident_services.open_incident(
            session,
            category="water",
            severity="critical",
            now=opened,
            actor="user:a",
            place_code="astana-saryarka-district",
            lat=51.1935,
            lon=71.4021,
        )
        duplicate = incident_services.open_incident(
            session,
            category="water",
            severity="critical",
            now=opened + timedelta(minutes=3),
            actor="user:b",
            place_code="astana-saryarka-district",
            lat=51.19351,
            lon=71.40212,
        )
        assert (
            first.created and not duplicate.created and duplicate.incident.id == first.incident.id
        )
        incident_id = first.incident.id
        assert (first.incident.service, first.incident.unit) == (
            "utilities",
            "utilities:astana-saryarka-district",
        )
        # Critical: 15 minutes to acknowledge, 4 hours to resolve.
        assert incident_services.escalate_due(session, now=opened + timedelta(minutes=14)) == []
        assert [
            i.id
            for i in incident_services.escalate_due(session, now=opened + timedelta(minutes=16))
        ] == [incident_id]
        assert incident_services.escalate_due(session, now=opened + timedelta(minutes=30)) == []
        incident_services.acknowledge(
            session, incident_id, actor="user:a", now=opened + timedelta(minutes=20)
        )
        assert [
            i.escalation_level
            for i in incident_services.escalate_due(session, now=opened + timedelta(hours=5))
        ] == [2]
        with pytest.raises(ValidationError):
            incident_services.close(
                session, incident_id, reason="bored", actor="user:a", now=opened
            )
        incident_services.close(
            session, incident_id, reason="resolved", actor="user:a", now=opened + timedelta(hours=6)
        )
        with pytest.raises(ConflictError):
            incident_services.close(
                session, incident_id, reason="resolved", actor="user:a", now=opened
            )
    # A citizen request 50 m away the same day is linked through the bus event, not an import.
    from qala.components.operate.links import subscribe_to_citizen_requests

    subscribe_to_citizen_requests(context)
    with context.database.transaction() as session:
        live = incident_services.open_incident(
            session,
            category="flood",
            severity="major",
            now=opened,
            actor="user:a",
            lat=51.1500,
            lon=71.4300,
        ).incident.id
    # Announced inside the publisher's transaction: recorded and linked with its session.
    with context.database.transaction() as session:
        publish_in_transaction(
            session,
            Event(
                "requests311.created",
                {
                    "id": 4711,
                    "lat": 51.15045,
                    "lon": 71.4300,
                    "requested_datetime": "2025-12-03T10:00:00+05:00",
                },
            ),
            context.bus,
        )
        publish_in_transaction(
            session,
            Event("requests311.created", {"id": 4712, "lat": 51.2000, "lon": 71.4300}),
            context.bus,
        )
    # A later status event leaves the request's recorded time alone.
    context.bus.publish(Event("requests311.acknowledged", {"id": 4711, "jurisdiction": "astana"}))
    with context.database.session() as session:
        kept = session.get(Entity, "urn:ngsi-ld:ServiceRequest:4711")
        assert kept is not None
        assert kept.attrs["dateCreated"]["value"] == "2025-12-03T05:00:00+00:00"
        # its geometry box (what NGSI-LD geo-queries pre-filter by) is its point
        box = (kept.lat_min, kept.lat_max, kept.lon_min, kept.lon_max)
        assert box == (51.15045, 51.15045, 71.43, 71.43)
    with context.database.session() as session:
        view = incident_services.view(incident_services.get_incident(session, live))
        history = incident_services.view(incident_services.get_incident(session, incident_id))
    assert [(link["kind"], link["ref"]) for link in view.links] == [("citizen_request", "4711")]
    assert view.links[0]["distance_m"] == pytest.approx(50.0, abs=0.5)
    assert [a.action for a in history.audit] == [
        "opened",
        "duplicate_report",
        "escalated",
        "acknowledged",
        "escalated",
        "closed",
    ]
    assert history.audit[2].details["to"] == "utilities:supervisor"
    with context.database.session() as session:
        assert incident_services.count_incidents(session, status="active") == 1  # the flood
        assert incident_services.count_incidents(session, status="closed", service="utilities") == 1
    assert history.audit[4].details["to"] == "city:situation-centre"


def test_operator_api_requires_role_and_opens_incidents(database_url: str) -> None:
    from fastapi.testclient import TestClient

    from qala.api.app import create_app
    from qala.components.accounts.services import create_user, issue_token
    from qala.settings import Settings

    app = create_app(Settings(database_url=database_url, secret_key="t"))
    context: Context = app.state.context
    with context.database.transaction() as session:
        citizen = issue_token(
            session,
            create_user(
                session, username="resident", password="correct-horse-battery", role="citizen"
            ),
        )
        operator = issue_token(
            session,
            create_user(
                session, username="dispatcher", password="correct-horse-battery", role="operator"
            ),
        )
    client = TestClient(app)
    events: list[tuple[str, object]] = []

    def record(event: Event) -> None:
        if event.name.startswith("operate."):
            events.append((event.name, event.payload.get("id")))

    context.bus.subscribe("*", record)
    body = {
        "category": "gas_leak",
        "severity": "critical",
        "lat": 51.12,
        "lon": 71.43,
        "request_ids": ["311-9"],
    }
    assert client.post("/api/v1/operate/incidents", json=body).status_code == 401
    assert (
        client.post(
            "/api/v1/operate/incidents", json=body, headers={"Authorization": f"Bearer {citizen}"}
        ).status_code
        == 403
    )
    created = client.post(
        "/api/v1/operate/incidents", json=body, headers={"Authorization": f"Bearer {operator}"}
    )
    assert created.status_code == 201
    data = created.json()
    assert (data["service"], data["links"][0]["ref"], data["deduplicated"]) == (
        "emergency",
        "311-9",
        False,
    )
    again = client.post(
        "/api/v1/operate/incidents", json=body, headers={"Authorization": f"Bearer {operator}"}
    )
    assert again.status_code == 200 and again.json()["deduplicated"] is True
    registered = client.post(
        "/api/v1/operate/sensors",
        json=[{"id": "x1"}],
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert registered.json() == {"registered": 1}
    ingested = client.post(
        "/api/v1/operate/observations",
        json={
            "observations": [
                {
                    "sensor": "x1",
                    "quantity": "pm25",
                    "time": "2025-12-01T10:00:00+05:00",
                    "value": 12.5,
                }
            ]
        },
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert ingested.json()["stored"] == 1
    # A raw sensor gets a Device entity (current value) and a temporal history on the NGSI-LD side.
    device = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:x1").json()
    assert device["pm25"] == {
        "type": "Property",
        "value": 12.5,
        "observedAt": "2025-12-01T05:00:00Z",
        "unitCode": "GQ",
    }
    history = client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Device:x1").json()
    assert [i["value"] for i in history["pm25"]] == [12.5]
    closed = client.post(
        f"/api/v1/operate/incidents/{data['id']}/close",
        json={"reason": "resolved"},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert closed.json()["status"] == "closed"
    incident_id = data["id"]
    assert events == [
        ("operate.incident.opened", incident_id),
        ("operate.incident.reported", incident_id),
        ("operate.incident.closed", incident_id),
    ]
    context.database.dispose()


def test_indicators_from_history_and_incidents(context: Context) -> None:
    from qala.components.operate.indicators import compute_indicators

    with context.database.transaction() as session:
        register_sensors(
            session,
            [
                {"id": "a", "place_code": "astana-yesil-district"},
                {"id": "b", "place_code": "astana-nura-district"},
            ],
        )
    # Sensor a: 4 hours, one above the one-time limit 160 → 3 of 4 within. Sensor b: hours 0, 1, 3 (hour 2 missing).
    ingest(context, _hourly("a", [20.0, 170.0, 30.0, 40.0]))
    ingest(context, [Reading("b", "pm25", T0 + h * HOUR, 10.0, "ug/m3") for h in (0, 1, 3)])
    opened = datetime(2025, 3, 1, tzinfo=UTC)
    with context.database.transaction() as session:
        for minutes, hours in ((10, 2), (30, 6), (50, 10)):
            incident = incident_services.open_incident(
                session,
                category="power",
                severity="major",
                now=opened,
                actor="u",
                place_code="astana-nura-district",
                lat=51.0 + minutes / 1000,
                lon=71.4,
            ).incident
            incident_services.acknowledge(
                session, incident.id, actor="u", now=opened + timedelta(minutes=minutes)
            )
            incident_services.close(
                session,
                incident.id,
                reason="resolved",
                actor="u",
                now=opened + timedelta(hours=hours),
            )
    with context.database.session() as session:
        values = compute_indicators(session, city="astana", year=2025)
        from qala.components.catalog.services import get_place, population

        people = population(session, get_place(session, "astana").id, 2025)
    assert people
    assert values["kz_sc.air.share_hours_within_norms"] == pytest.approx(100 * 6 / 7, abs=0.01)
    assert values["kz_sc.sensors.availability"] == pytest.approx(100 * 7 / 8, abs=0.01)
    assert values["kz_sc.incidents.median_minutes_to_acknowledge"] == 30.0
    assert values["kz_sc.incidents.median_hours_to_resolve"] == 6.0
    # Three power incidents plus the air-quality incident the 170 µg/m³ reading opened.
    assert values["kz_sc.incidents.per_100000"] == pytest.approx(round(4 / people * 100_000, 3))


def test_concurrent_batches_from_api_threads_are_serialised(context: Context) -> None:
    """Worker threads share one runner; every reading is stored once and evaluated once."""
    import threading

    runner = RulesRunner()
    errors: list[BaseException] = []

    def post(worker: int) -> None:
        try:
            for batch in range(5):
                start = T0 + batch * 10 * HOUR
                ingest(
                    context,
                    _hourly(f"thr-{worker}", [20.0 + worker] * 10, start=start),
                    runner=runner,
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(context, Observation) == 4 * 5 * 10
    streams = runner.evaluator("air").state()["streams"]
    assert sorted(s["sensor"] for s in streams) == [f"thr-{w}" for w in range(4)]
    with context.database.session() as session:
        versions = {
            r.subject: r.version
            for r in session.scalars(select(DetectorRecord).where(DetectorRecord.kind == "stream"))
        }
    assert versions == {f"thr-{w}": 5 for w in range(4)}  # five batches each, none lost


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 30), st.floats(0, 400, allow_nan=False)),
        max_size=40,
    ),
    batch=st.integers(1, 12),
)
def test_any_batching_with_repeats_stores_each_reading_once(
    context: Context, items: list[tuple[int, int, float]], batch: int
) -> None:
    """Property: however readings are repeated and cut into batches, each (sensor, time) is stored
    once, with the value of its first arrival."""
    import uuid

    prefix = uuid.uuid4().hex[:8]
    readings = [Reading(f"{prefix}-{s}", "pm25", T0 + t * HOUR, v, "ug/m3") for s, t, v in items]
    runner = RulesRunner()
    stored = 0
    for start in range(0, len(readings), batch):
        stored += ingest(context, readings[start : start + batch], runner=runner).stored
    first: dict[tuple[str, int], float] = {}
    for r in readings:
        first.setdefault((r.sensor, r.time_us), r.value)
    assert stored == len(first)
    with context.database.session() as session:
        rows = session.execute(
            select(Observation.sensor, Observation.time_us, Observation.value).where(
                Observation.sensor.like(f"{prefix}-%")
            )
        ).all()
    assert {(s, t): v for s, t, v in rows} == first
