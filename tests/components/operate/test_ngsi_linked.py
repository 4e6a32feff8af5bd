"""Linked-entity retrieval at /ngsi-ld/v1 (clause 4.5.23): join=flat|inline, joinLevel, and
pick/omit braces that project the linked entities."""

from __future__ import annotations

import re
from typing import Any

import pytest

OperateApp = Any  # fixture from this folder's conftest

BASE = "/ngsi-ld/v1"


def _create(app: OperateApp, entity: dict[str, Any]) -> None:
    response = app.client.post(f"{BASE}/entities", json=entity, headers=app.auth)
    assert response.status_code == 201, response.text


@pytest.fixture
def linked(operate_app: OperateApp) -> OperateApp:
    """A building in a city in a country (two relationships deep)."""
    _create(
        operate_app,
        {
            "id": "urn:ngsi-ld:Building:b1",
            "type": "Building",
            "name": {"type": "Property", "value": "Bayterek"},
            "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:astana"},
        },
    )
    _create(
        operate_app,
        {
            "id": "urn:ngsi-ld:City:astana",
            "type": "City",
            "name": {"type": "Property", "value": "Astana"},
            "isInCountry": {"type": "Relationship", "object": "urn:ngsi-ld:Country:kz"},
        },
    )
    _create(
        operate_app,
        {
            "id": "urn:ngsi-ld:Country:kz",
            "type": "Country",
            "name": {"type": "Property", "value": "Kazakhstan"},
        },
    )
    return operate_app


def _get(app: OperateApp, path: str, **params: str) -> Any:
    response = app.client.get(f"{BASE}{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_inline_join_places_the_linked_entity_in_the_relationship(linked: OperateApp) -> None:
    body = _get(linked, "/entities/urn:ngsi-ld:Building:b1", join="inline", joinLevel="1")
    assert body["locatedAt"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:City:astana",
        "entity": {
            "id": "urn:ngsi-ld:City:astana",
            "type": "City",
            "name": {"type": "Property", "value": "Astana"},
            "isInCountry": {"type": "Relationship", "object": "urn:ngsi-ld:Country:kz"},
        },
    }
    deep = _get(linked, "/entities/urn:ngsi-ld:Building:b1", join="inline", joinLevel="2")
    country = deep["locatedAt"]["entity"]["isInCountry"]["entity"]
    assert country["name"]["value"] == "Kazakhstan"
    simple = _get(linked, "/entities/urn:ngsi-ld:Building:b1", join="inline", options="keyValues")
    assert simple["locatedAt"]["id"] == "urn:ngsi-ld:City:astana"
    assert simple["locatedAt"]["isInCountry"] == "urn:ngsi-ld:Country:kz"


def test_flat_join_lists_linked_entities_after_the_entity(linked: OperateApp) -> None:
    body = _get(linked, "/entities/urn:ngsi-ld:Building:b1", join="flat", joinLevel="2")
    assert [e["id"] for e in body] == [
        "urn:ngsi-ld:Building:b1",
        "urn:ngsi-ld:City:astana",
        "urn:ngsi-ld:Country:kz",
    ]
    assert "entity" not in body[0]["locatedAt"]
    # Nothing linked found: the entity alone, as without join.
    alone = _get(linked, "/entities/urn:ngsi-ld:Country:kz", join="flat")
    assert alone["id"] == "urn:ngsi-ld:Country:kz"


def test_pick_and_omit_braces_project_linked_entities(linked: OperateApp) -> None:
    picked = _get(
        linked,
        "/entities/urn:ngsi-ld:Building:b1",
        join="inline",
        joinLevel="2",
        pick="id,locatedAt{id,name}",
    )
    assert picked == {
        "id": "urn:ngsi-ld:Building:b1",
        "locatedAt": {
            "type": "Relationship",
            "object": "urn:ngsi-ld:City:astana",
            "entity": {
                "id": "urn:ngsi-ld:City:astana",
                "name": {"type": "Property", "value": "Astana"},
            },
        },
    }
    omitted = _get(
        linked,
        "/entities/urn:ngsi-ld:Building:b1",
        join="flat",
        joinLevel="2",
        omit="type,locatedAt{name,isInCountry{name}}",
    )
    assert omitted[0] == {
        "id": "urn:ngsi-ld:Building:b1",
        "name": {"type": "Property", "value": "Bayterek"},
        "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:astana"},
    }
    assert set(omitted[1]) == {"id", "type", "isInCountry"}
    assert omitted[2] == {"id": "urn:ngsi-ld:Country:kz", "type": "Country"}


def test_query_joins_each_entity_and_lists_shared_links_once(linked: OperateApp) -> None:
    _create(
        linked,
        {
            "id": "urn:ngsi-ld:Building:b2",
            "type": "Building",
            "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:astana"},
        },
    )
    flat = _get(linked, "/entities", type="Building", join="flat")
    assert [e["id"] for e in flat] == [
        "urn:ngsi-ld:Building:b1",
        "urn:ngsi-ld:Building:b2",
        "urn:ngsi-ld:City:astana",
    ]
    posted = linked.client.post(
        f"{BASE}/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "Building"}], "join": "inline"},
    )
    assert posted.status_code == 200
    assert all(e["locatedAt"]["entity"]["type"] == "City" for e in posted.json())


def test_bad_join_parameters_are_refused(linked: OperateApp) -> None:
    for params in ({"join": "sideways"}, {"join": "flat", "joinLevel": "0"}):
        response = linked.client.get(f"{BASE}/entities/urn:ngsi-ld:Building:b1", params=params)
        assert response.status_code == 400
        assert response.json()["type"].endswith("BadRequestData")


# ---- replace one attribute, paths without an entity id -------------------------------------


def test_put_attribute_replaces_the_instance_whole(linked: OperateApp) -> None:
    path = f"{BASE}/entities/urn:ngsi-ld:City:astana/attrs/name"
    replaced = linked.client.put(
        path, json={"type": "Property", "value": "Nur-Sultan"}, headers=linked.auth
    )
    assert replaced.status_code == 204, replaced.text
    body = _get(linked, "/entities/urn:ngsi-ld:City:astana")
    assert body["name"] == {"type": "Property", "value": "Nur-Sultan"}
    as_relationship = {"type": "Relationship", "object": "urn:ngsi-ld:City:almaty"}
    assert (
        linked.client.put(
            f"{BASE}/entities/urn:ngsi-ld:City:astana/attrs/isInCountry",
            json=as_relationship,
            headers=linked.auth,
        ).status_code
        == 204
    )
    assert _get(linked, "/entities/urn:ngsi-ld:City:astana")["isInCountry"] == as_relationship
    refusals = [
        ("urn:ngsi-ld:City:astana/attrs/population", {"type": "Property", "value": 1}, 404),
        ("urn:ngsi-ld:City:nowhere/attrs/name", {"type": "Property", "value": 1}, 404),
        ("urn:ngsi-ld:City:astana/attrs/scope", {"scope": "/kz"}, 400),
        ("urn:ngsi-ld:City:astana/attrs/@name", {"type": "Property", "value": 1}, 400),
        ("urn:ngsi-ld:City:astana/attrs/name", {"value": 1}, 400),
        (
            "urn:ngsi-ld:City:astana/attrs/name",
            {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:x"},
            404,
        ),
    ]
    for where, attribute, status in refusals:
        response = linked.client.put(
            f"{BASE}/entities/{where}", json=attribute, headers=linked.auth
        )
        assert response.status_code == status, (where, response.text)


def test_paths_without_an_entity_id_are_bad_requests(linked: OperateApp) -> None:
    fragment = {"name": {"type": "Property", "value": "x"}}
    for method, path in [
        ("POST", "/entities//attrs"),
        ("PATCH", "/entities//attrs/"),
        ("PATCH", "/entities//attrs/name"),
        ("DELETE", "/entities//attrs/name"),
        ("PATCH", "/entities/"),
        ("PUT", "/entities/"),
    ]:
        response = linked.client.request(
            method, f"{BASE}{path}", json=fragment, headers=linked.auth
        )
        assert response.status_code == 400, (method, path, response.status_code)
        assert response.json()["type"].endswith("BadRequestData")


def test_attributes_keep_their_own_system_timestamps(linked: OperateApp) -> None:
    path = f"{BASE}/entities/urn:ngsi-ld:City:astana"
    before = _get(linked, "/entities/urn:ngsi-ld:City:astana", options="sysAttrs")
    created = before["name"]["createdAt"]
    assert before["name"]["modifiedAt"] == created
    assert "createdAt" not in _get(linked, "/entities/urn:ngsi-ld:City:astana")["name"]
    replaced = linked.client.put(
        f"{path}/attrs/name", json={"type": "Property", "value": "Nur-Sultan"}, headers=linked.auth
    )
    assert replaced.status_code == 204
    added = linked.client.post(
        f"{path}/attrs",
        json={"population": {"type": "Property", "value": 1_350_000}},
        headers=linked.auth,
    )
    assert added.status_code == 204
    after = _get(linked, "/entities/urn:ngsi-ld:City:astana", options="sysAttrs")
    assert after["name"]["createdAt"] == created
    assert after["name"]["modifiedAt"] >= created
    assert after["population"]["createdAt"] >= after["name"]["createdAt"]
    assert after["isInCountry"] == before["isInCountry"]


def test_partial_update_cannot_change_an_attribute_type(linked: OperateApp) -> None:
    response = linked.client.patch(
        f"{BASE}/entities/urn:ngsi-ld:City:astana/attrs/name",
        json={"type": "Relationship", "object": "urn:ngsi-ld:City:x"},
        headers=linked.auth,
    )
    assert response.status_code == 400
    assert _get(linked, "/entities/urn:ngsi-ld:City:astana")["name"]["type"] == "Property"


def test_notifications_carry_linked_entities(linked: OperateApp, capture_server: Any) -> None:
    from qala.components.operate.subscriptions import notifier_for

    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {
            "endpoint": {"uri": capture_server.url, "accept": "application/json"},
            "join": "inline",
            "joinLevel": 2,
            "attributes": ["locatedAt"],
        },
    }
    created = linked.client.post(f"{BASE}/subscriptions", json=subscription, headers=linked.auth)
    assert created.status_code == 201, created.text
    updated = linked.client.patch(
        f"{BASE}/entities/urn:ngsi-ld:Building:b1/attrs",
        json={"name": {"type": "Property", "value": "Baiterek"}},
        headers=linked.auth,
    )
    assert updated.status_code == 204
    notifier_for(linked.context).drain()
    assert capture_server.event.wait(5)
    (entity,) = capture_server.received[0]["data"]
    assert set(entity) == {"id", "type", "locatedAt"}
    city = entity["locatedAt"]["entity"]
    assert city["id"] == "urn:ngsi-ld:City:astana"
    assert city["isInCountry"]["entity"]["name"]["value"] == "Kazakhstan"
    bad = dict(subscription, notification={**subscription["notification"], "join": "sideways"})
    refused = linked.client.post(f"{BASE}/subscriptions", json=bad, headers=linked.auth)
    assert refused.status_code == 400


def test_an_appending_update_notifies_linked_entities_with_system_times(
    linked: OperateApp, capture_server: Any
) -> None:
    """ETSI 046_23/046_28: an update that adds an attribute (204) is notified with the linked
    entities, and sysAttrs are NGSI-LD DateTimes (UTC with `Z`) on every store."""
    from qala.components.operate.subscriptions import notifier_for

    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {
            "endpoint": {"uri": capture_server.url, "accept": "application/json"},
            "join": "flat",
            "sysAttrs": True,
        },
    }
    created = linked.client.post(f"{BASE}/subscriptions", json=subscription, headers=linked.auth)
    assert created.status_code == 201, created.text
    updated = linked.client.patch(
        f"{BASE}/entities/urn:ngsi-ld:Building:b1/attrs",
        json={"height": {"type": "Property", "value": 97}},
        headers=linked.auth,
    )
    assert updated.status_code == 204, updated.text
    notifier_for(linked.context).drain()
    assert capture_server.event.wait(5)
    building, city = capture_server.received[0]["data"]
    assert building["height"]["value"] == 97 and city["id"] == "urn:ngsi-ld:City:astana"
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
    for entity in (building, city):
        assert stamp.fullmatch(entity["createdAt"]) and stamp.fullmatch(entity["modifiedAt"])
    assert stamp.fullmatch(building["height"]["createdAt"])


def test_a_change_older_than_the_subscription_is_not_notified(
    linked: OperateApp, capture_server: Any
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Country"}],
        "notification": {"endpoint": {"uri": capture_server.url, "accept": "application/json"}},
    }
    created = linked.client.post(f"{BASE}/subscriptions", json=subscription, headers=linked.auth)
    assert created.status_code == 201
    from datetime import timedelta

    from qala.components.operate.changes import EntityChange
    from qala.components.operate.outbox import stage
    from qala.core.clock import utc_now

    with linked.context.database.transaction() as session:  # a change made before, told late
        change = EntityChange("urn:ngsi-ld:Country:kz", known=False)
        stage(session, {change.entity_id: change}, utc_now() - timedelta(seconds=1))
    notifier = notifier_for(linked.context)
    notifier.drain()
    assert capture_server.received == []
    updated = linked.client.patch(
        f"{BASE}/entities/urn:ngsi-ld:Country:kz/attrs",
        json={"name": {"type": "Property", "value": "Qazaqstan"}},
        headers=linked.auth,
    )
    assert updated.status_code == 204
    notifier.drain()
    assert capture_server.event.wait(5)
    assert capture_server.received[0]["data"][0]["name"]["value"] == "Qazaqstan"
