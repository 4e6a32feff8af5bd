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
        client.post(f"{BASE}/subscriptions", json=subscription(capture_server, suffix), headers=auth)
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
