"""Demo data: a simulated week of Astana's air stations and heat points (illustrative), replayed
through ingestion and rules, a few operator-reported incidents, and the indicators written back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from qala.components.operate import incidents as incident_services
from qala.components.operate.ingest import RulesRunner, register_sensors
from qala.components.operate.models import Entity, Observation
from qala.components.operate.readings import Reading
from qala.components.operate.replay import ObservationTable, replay
from qala.components.operate.simulator import demo_scenario, simulate
from qala.runtime import Context

DEMO_ENTITIES = [
    {
        "id": "urn:ngsi-ld:Organization:astana-akimat",
        "type": "Organization",
        "name": {"type": "Property", "value": "Akimat of Astana"},
    },
    {
        "id": "urn:ngsi-ld:Service:astana-ecology",
        "type": "Service",
        "name": {"type": "Property", "value": "Управление экологии (иллюстративно)"},
        "refProvider": {"type": "Relationship", "object": "urn:ngsi-ld:Organization:astana-akimat"},
    },
    {
        "id": "urn:ngsi-ld:Streetlight:astana-yesil-0001",
        "type": "Streetlight",
        "status": {"type": "Property", "value": "ok"},
        "powerState": {"type": "Property", "value": "on"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [71.4205, 51.1012]},
        },
    },
]


def load_demo(context: Context) -> str:
    """Load the illustrative Operate week (safe to run again: observations are deduplicated)."""
    from qala.components.operate.entities import upsert_entity
    from qala.components.operate.ngsi import parse_entity

    with context.database.session() as session:
        if (session.scalar(select(func.count()).select_from(Observation)) or 0) > 0:
            return "operate demo already loaded"
    scenario = demo_scenario()
    frame = simulate(scenario)
    readings = [
        Reading(s, q, int(t), float(v), u)
        for s, q, t, v, u in frame[["sensor", "quantity", "time_us", "value", "unit"]].itertuples(
            index=False
        )
    ]
    runner = RulesRunner()
    with context.database.transaction() as session:
        register_sensors(session, [s.record() for s in scenario.sensors])
        for body in DEMO_ENTITIES:
            upsert_entity(session, parse_entity(body), runner=runner)
    report = replay(
        context, ObservationTable(readings, []), batch_size=2000, runner=runner, illustrative=True
    )
    base = scenario.start
    with context.database.transaction() as session:
        burst = incident_services.open_incident(
            session,
            category="water",
            severity="major",
            now=base + timedelta(days=2, hours=3),
            actor="user:demo-operator",
            description="Жители сообщили о прорыве трубы на улице Кенесары (иллюстративно)",
            place_code="astana-saryarka-district",
            lat=51.1935,
            lon=71.4021,
            illustrative=True,
        ).incident
        incident_services.acknowledge(
            session,
            burst.id,
            actor="user:demo-operator",
            now=base + timedelta(days=2, hours=3, minutes=12),
        )
        incident_services.close(
            session,
            burst.id,
            reason="resolved",
            actor="user:demo-operator",
            now=base + timedelta(days=2, hours=9),
        )
        incident_services.open_incident(
            session,
            category="road_accident",
            severity="critical",
            now=base + timedelta(days=6, hours=2),
            actor="user:demo-operator",
            description="Столкновение на перекрёстке (иллюстративно)",
            place_code="astana-yesil-district",
            lat=51.0982,
            lon=71.4188,
            illustrative=True,
        )
        incident_services.escalate_due(session, now=datetime(2025, 12, 8, tzinfo=UTC))
        entities = session.scalar(select(func.count()).select_from(Entity)) or 0
    from qala.components.operate.indicators import write_indicators

    try:
        written = f"{write_indicators(context, city='astana', year=2025, illustrative=True).rows_written} indicators written"
    except Exception as exc:  # the catalogue write must not stop the rest of the demo; say why
        written = f"indicators NOT written ({exc.__class__.__name__}: {exc})"
    return (
        f"{written}; "
        f"{report.stored} illustrative observations from {len(scenario.sensors)} simulated sensors, "
        f"{report.findings} findings, {len(set(report.incidents_opened))} rule incidents, {entities} entities"
    )
