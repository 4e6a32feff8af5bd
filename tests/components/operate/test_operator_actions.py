"""The operator API's incident actions: each route answers the incident as it now is, records
the step in the audit trail and announces it on the bus once committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from qala.events import Event

OperateApp = Any  # fixture from this folder's conftest

OPENED = datetime(2025, 12, 1, 8, 0, tzinfo=UTC)


def test_every_action_route_answers_audits_and_announces(operate_app: OperateApp) -> None:
    client, auth, context = operate_app.client, operate_app.auth, operate_app.context
    now = [OPENED]
    context.clock = lambda: now[0]
    events: list[tuple[str, object]] = []

    def record(event: Event) -> None:
        if event.name.startswith("operate.incident."):
            events.append((event.name.rsplit(".", 1)[1], event.payload["id"]))

    context.bus.subscribe("*", record)
    opened = client.post(
        "/api/v1/operate/incidents",
        json={"category": "water", "place_code": "astana-yesil-district"},
        headers=auth,
    ).json()
    incident = f"/api/v1/operate/incidents/{opened['id']}"
    steps: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
        ("acknowledge", {"note": "on it"}, "acknowledged", {"status": "acknowledged"}),
        ("assign", {"assignee": "crew-7"}, "assigned", {"assignee": "crew-7"}),
        (
            "reroute",
            {"service": "emergency", "reason": "flooding"},
            "rerouted",
            {"service": "emergency"},
        ),
        ("notes", {"text": "valve shut"}, "noted", {}),
        ("links", {"ref": "311-5", "note": "caller"}, "linked", {}),
        ("close", {"reason": "resolved", "note": "fixed"}, "closed", {"close_reason": "resolved"}),
    ]
    for path, body, announced, expected in steps:
        answer = client.post(f"{incident}/{path}", json=body, headers=auth)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert {k: data[k] for k in expected} == expected
        assert data["audit"][-1]["actor"] == "user:duty.operator"
        assert events[-1] == (announced, opened["id"])
    assert [a["action"] for a in client.get(f"{incident}/audit", headers=auth).json()] == [
        "opened",
        "acknowledged",
        "assigned",
        "rerouted",
        "note",
        "linked",
        "closed",
    ]
    assert client.get(incident, headers=auth).json()["links"] == [
        {"kind": "citizen_request", "ref": "311-5", "distance_m": None, "note": "caller"}
    ]
    # A refused step changes nothing and announces nothing.
    before = len(events)
    refused = client.post(f"{incident}/assign", json={"assignee": "x"}, headers=auth)
    assert refused.status_code == 409
    missing = client.post("/api/v1/operate/incidents/999/acknowledge", json={}, headers=auth)
    assert missing.status_code == 404
    assert len(events) == before


def test_escalation_run_announces_each_escalated_incident(operate_app: OperateApp) -> None:
    client, auth, context = operate_app.client, operate_app.auth, operate_app.context
    now = [OPENED]
    context.clock = lambda: now[0]
    events: list[str] = []
    context.bus.subscribe("operate.incident.escalated", lambda e: events.append(e.payload["id"]))
    ids = [
        client.post(
            "/api/v1/operate/incidents",
            json={"category": "gas_leak", "severity": "critical", "place_code": place},
            headers=auth,
        ).json()["id"]
        for place in ("astana-yesil-district", "astana-nura-district")
    ]
    assert client.post("/api/v1/operate/escalations/run", headers=auth).json() == {"escalated": []}
    now[0] = OPENED + timedelta(minutes=16)  # critical: 15 minutes to acknowledge
    run = client.post("/api/v1/operate/escalations/run", headers=auth)
    assert run.json() == {"escalated": ids} and events == ids
