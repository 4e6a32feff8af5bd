"""Subscription notifications of ETSI GS CIM 009 clause 5.8.6 and the subscription members
that steer them (issue #21): ``notificationTrigger``, deletion notifications, ``showChanges``,
``timeInterval``, and the subscription list's paging links."""

from __future__ import annotations

import time
from typing import Any

OperateApp = Capture = Any  # fixtures from this folder's conftest

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def subscription(capture: Capture, suffix: str, **members: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Subscription:{suffix}",
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": capture.url, "accept": "application/json"}},
        **members,
    }


def received(capture: Capture, count: int = 1, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The notifications received once ``count`` have come (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while len(capture.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(capture.received)


def test_notification_trigger_is_checked_and_shown_with_its_default(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    client, auth = operate_app.client, operate_app.auth
    for bad in (["entityExploded"], [], "entityCreated"):
        answer = client.post(
            f"{BASE}/subscriptions",
            json=subscription(capture_server, "bad", notificationTrigger=bad),
            headers=auth,
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"] == ERRORS + "BadRequestData"
        assert "notificationTrigger" in answer.json()["detail"]
    for suffix in ("one", "two", "three"):
        client.post(
            f"{BASE}/subscriptions", json=subscription(capture_server, suffix), headers=auth
        )
    shown = client.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:one", headers=auth).json()
    assert shown["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    page = client.get(f"{BASE}/subscriptions", params={"limit": 1, "offset": 1}, headers=auth)
    links = page.headers["link"].replace(" ", "").split(",")
    assert '</ngsi-ld/v1/subscriptions?limit=1&offset=0>;rel="prev";type="application/ld+json"' in (
        links
    )
    assert '</ngsi-ld/v1/subscriptions?limit=1&offset=2>;rel="next";type="application/ld+json"' in (
        links
    )


def building(suffix: str) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Building:{suffix}",
        "type": "Building",
        "name": {"type": "Property", "value": "Eiffel Tower"},
        "street": {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place"}},
        "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"},
    }


def test_deletions_are_notified_to_the_triggers_that_ask(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    client, auth = operate_app.client, operate_app.auth
    notifier = notifier_for(operate_app.context)
    client.post(f"{BASE}/entities", json=building("d1"), headers=auth)
    notifier.drain()
    url = f"{BASE}/entities/urn:ngsi-ld:Building:d1"
    for suffix, members in (
        ("default", {}),  # attributeCreated, attributeUpdated: no deletion
        (
            "name-deleted",
            {"watchedAttributes": ["name"], "notificationTrigger": ["attributeDeleted"]},
        ),
        (
            "street-deleted",
            {"watchedAttributes": ["street"], "notificationTrigger": ["attributeDeleted"]},
        ),
        ("entity-deleted", {"notificationTrigger": ["entityDeleted"]}),
    ):
        sub = subscription(capture_server, suffix, **members)
        assert client.post(f"{BASE}/subscriptions", json=sub, headers=auth).status_code == 201

    assert client.delete(f"{url}/attrs/name", headers=auth).status_code == 204
    notifier.drain()
    (notification,) = received(capture_server)
    assert notification["subscriptionId"] == "urn:ngsi-ld:Subscription:name-deleted"
    shown = notification["data"][0]
    assert shown["name"] == {"type": "Property", "value": "urn:ngsi-ld:null"}
    assert shown["locatedAt"]["object"] == "urn:ngsi-ld:City:Paris"  # the rest as it is

    capture_server.received.clear()
    assert client.delete(url, headers=auth).status_code == 204
    notifier.drain()
    notifications = received(capture_server, 2)
    by_subscription = {n["subscriptionId"].rsplit(":", 1)[-1]: n["data"] for n in notifications}
    assert set(by_subscription) == {"street-deleted", "entity-deleted"}
    (gone,) = by_subscription["entity-deleted"]
    assert set(gone) == {"id", "type", "deletedAt"} and gone["deletedAt"].endswith("Z")
    (street,) = by_subscription["street-deleted"]
    assert street["street"] == {
        "type": "LanguageProperty",
        "languageMap": {"@none": "urn:ngsi-ld:null"},
    }
    assert "locatedAt" not in street  # a deleted entity shows only the watched attributes


def test_show_changes_tells_the_previous_values(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    client, auth = operate_app.client, operate_app.auth
    notifier = notifier_for(operate_app.context)
    client.post(f"{BASE}/entities", json=building("c1"), headers=auth)
    notifier.drain()
    sub = subscription(capture_server, "changes")
    sub["notification"]["showChanges"] = True
    client.post(f"{BASE}/subscriptions", json=sub, headers=auth)
    url = f"{BASE}/entities/urn:ngsi-ld:Building:c1"
    client.patch(
        f"{url}/attrs",
        json={
            "name": {"type": "Property", "value": "Tour Eiffel"},
            "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:Lyon"},
        },
        headers=auth,
    )
    notifier.drain()
    (notification,) = received(capture_server)
    shown = notification["data"][0]
    assert shown["name"] == {
        "type": "Property",
        "value": "Tour Eiffel",
        "previousValue": "Eiffel Tower",
    }
    assert shown["locatedAt"]["previousObject"] == "urn:ngsi-ld:City:Paris"
    assert "previousLanguageMap" not in shown["street"]  # not changed

    capture_server.received.clear()
    client.post(
        f"{BASE}/entities",
        json={**building("c2"), "id": "urn:ngsi-ld:Building:c2"},
        headers=auth,
    )
    notifier.drain()
    (created,) = received(capture_server)
    assert "previousValue" not in created["data"][0]["name"]  # nothing was there before


def test_type_selection_q_escapes_and_dataset_filter(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    client, auth = operate_app.client, operate_app.auth
    notifier = notifier_for(operate_app.context)
    selected = subscription(
        capture_server,
        "towers",
        entities=[{"type": "(Tower|Building)"}],
        q='name=="Eiffel%20Tower"',  # as copied from a URL
        datasetId=["urn:ngsi-ld:Dataset:fr"],
    )
    answer = client.post(f"{BASE}/subscriptions", json=selected, headers=auth)
    assert answer.status_code == 201, answer.text
    bad = subscription(capture_server, "bad", datasetId="urn:ngsi-ld:Dataset:fr")
    assert client.post(f"{BASE}/subscriptions", json=bad, headers=auth).status_code == 400
    entity = building("t1")
    entity["street"] = [
        {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place"}},
        {
            "type": "LanguageProperty",
            "languageMap": {"fr": "Place d'Armes"},
            "datasetId": "urn:ngsi-ld:Dataset:fr",
        },
    ]
    assert client.post(f"{BASE}/entities", json=entity, headers=auth).status_code == 201
    notifier.drain()
    (notification,) = received(capture_server)
    (shown,) = notification["data"]
    assert shown["street"] == entity["street"][1]  # only the instance of the dataset asked
    assert "name" not in shown  # no instance of that dataset


def test_time_interval_notifies_periodically_from_the_store(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    from datetime import timedelta

    from qala.components.operate.models import Subscription
    from qala.components.operate.subscriptions import claim_periodic, notifier_for
    from qala.core.clock import utc_now

    client, auth = operate_app.client, operate_app.auth
    context = operate_app.context
    client.post(f"{BASE}/entities", json=building("p1"), headers=auth)
    notifier_for(context).drain()
    periodic = subscription(capture_server, "periodic", timeInterval=1)
    assert client.post(f"{BASE}/subscriptions", json=periodic, headers=auth).status_code == 201
    notifications = received(capture_server, 2, timeout_s=6)
    assert len(notifications) >= 2
    assert all(n["data"][0]["id"] == "urn:ngsi-ld:Building:p1" for n in notifications)
    shown = client.get(f"{BASE}/subscriptions/{periodic['id']}", headers=auth).json()
    assert shown["notification"]["timesSent"] >= 2

    # The next time is kept in the store and claimed once: a second process looking at the
    # same moment finds nothing due, and after a long pause the next is an interval away.
    later = utc_now() + timedelta(hours=1)
    assert claim_periodic(context, later, limit=5) == [periodic["id"]]
    assert claim_periodic(context, later, limit=5) == []
    with context.database.session() as session:
        due = session.get(Subscription, periodic["id"]).periodic_due_at
    assert due is not None and due.replace(tzinfo=None) > later.replace(tzinfo=None)
    client.patch(
        f"{BASE}/subscriptions/{periodic['id']}", json={"timeInterval": None}, headers=auth
    )
    with context.database.session() as session:
        assert session.get(Subscription, periodic["id"]).periodic_due_at is None
