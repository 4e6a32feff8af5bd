"""Subscriptions honour ``NGSILD-Tenant`` (a city): one made under a tenant is notified only of
that city's entities, and is seen, changed and deleted only under that tenant; without the
header every subscription is seen (the national view)."""

from __future__ import annotations

from typing import Any

OperateApp = Capture = Any  # fixtures from this folder's conftest

BASE = "/ngsi-ld/v1"
ASTANA = "urn:ngsi-ld:Streetlight:astana-1"
KARAGANDA = "urn:ngsi-ld:Streetlight:karaganda-1"
SUBSCRIPTION = "urn:ngsi-ld:Subscription:astana-lights"
IN_ASTANA = {"NGSILD-Tenant": "astana"}
IN_KARAGANDA = {"NGSILD-Tenant": "karaganda"}


def _light(entity_id: str, place: str) -> dict[str, Any]:
    return {
        "id": entity_id,
        "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on"},
        "placeCode": {"type": "Property", "value": place},
    }


def _switch_off(app: OperateApp, entity_id: str) -> None:
    body = {"powerState": {"type": "Property", "value": "off"}}
    changed = app.client.patch(f"{BASE}/entities/{entity_id}/attrs", json=body, headers=app.auth)
    assert changed.status_code == 204, changed.text


def test_a_tenants_subscription_is_told_and_shown_only_within_its_city(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    app = operate_app
    notifier = notifier_for(app.context)
    for entity in (_light(ASTANA, "astana"), _light(KARAGANDA, "karaganda")):
        created = app.client.post(f"{BASE}/entities", json=entity, headers=app.auth)
        assert created.status_code == 201, created.text
    notifier.drain()
    subscription = {
        "id": SUBSCRIPTION,
        "type": "Subscription",
        "entities": [{"type": "Streetlight"}],
        "notification": {"endpoint": {"uri": capture_server.url, "accept": "application/json"}},
    }
    made = app.client.post(
        f"{BASE}/subscriptions", json=subscription, headers={**app.auth, **IN_ASTANA}
    )
    assert made.status_code == 201, made.text

    _switch_off(app, KARAGANDA)
    notifier.drain()
    assert capture_server.received == []  # another city's entity

    _switch_off(app, ASTANA)
    notifier.drain()
    assert capture_server.event.wait(5)
    (notification,) = capture_server.received
    assert notification["subscriptionId"] == SUBSCRIPTION
    assert [e["id"] for e in notification["data"]] == [ASTANA]

    def listed(headers: dict[str, str]) -> list[str]:
        response = app.client.get(f"{BASE}/subscriptions", headers={**app.auth, **headers})
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()]

    assert listed(IN_ASTANA) == [SUBSCRIPTION]
    assert listed(IN_KARAGANDA) == []
    assert listed({}) == [SUBSCRIPTION]  # the national view
    url = f"{BASE}/subscriptions/{SUBSCRIPTION}"
    hidden = app.client.get(url, headers={**app.auth, **IN_KARAGANDA})
    assert hidden.status_code == 404
    assert hidden.json()["type"].endswith("/ResourceNotFound")
    assert app.client.get(url, headers={**app.auth, **IN_ASTANA}).status_code == 200
    patch = {"isActive": False}
    foreign = app.client.patch(url, json=patch, headers={**app.auth, **IN_KARAGANDA})
    assert foreign.status_code == 404
    assert app.client.delete(url, headers={**app.auth, **IN_KARAGANDA}).status_code == 404
    unknown = app.client.get(f"{BASE}/subscriptions", headers={**app.auth, "NGSILD-Tenant": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith("/NonexistentTenant")
    assert app.client.delete(url, headers={**app.auth, **IN_ASTANA}).status_code == 204


def test_a_tenants_periodic_subscription_tells_only_its_citys_entities(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    app = operate_app
    for entity in (_light(ASTANA, "astana"), _light(KARAGANDA, "karaganda")):
        created = app.client.post(f"{BASE}/entities", json=entity, headers=app.auth)
        assert created.status_code == 201, created.text
    periodic = {
        "id": SUBSCRIPTION,
        "type": "Subscription",
        "entities": [{"type": "Streetlight"}],
        "timeInterval": 1,
        "notification": {"endpoint": {"uri": capture_server.url, "accept": "application/json"}},
    }
    made = app.client.post(
        f"{BASE}/subscriptions", json=periodic, headers={**app.auth, **IN_ASTANA}
    )
    assert made.status_code == 201, made.text
    assert capture_server.event.wait(6)
    notification = capture_server.received[0]
    assert [e["id"] for e in notification["data"]] == [ASTANA]
