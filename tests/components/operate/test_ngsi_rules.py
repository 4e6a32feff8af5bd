"""Rules of ETSI GS CIM 009 that the conformance suites check (issue #21): paths, content
negotiation, validation with the right ProblemDetails, merge/purge/query, projections,
multi-attributes and the subscription lifecycle."""

from __future__ import annotations

import time
from typing import Any

OperateApp = Capture = Any  # fixtures from this folder's conftest

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def building(suffix: str, **attrs: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Building:{suffix}",
        "type": "Building",
        "name": {"type": "Property", "value": f"Building {suffix}"},
        **attrs,
    }


def problem(response: Any, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["type"] == ERRORS + kind, response.json()


def test_trailing_slash_is_the_same_resource(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    created = client.post(f"{BASE}/entities/", json=building("b1"), headers=auth)
    assert created.status_code == 201  # not 307: clients do not follow a redirect on POST
    listed = client.get(f"{BASE}/entities/", params={"type": "Building"})
    assert [e["id"] for e in listed.json()] == ["urn:ngsi-ld:Building:b1"]


def test_content_negotiation(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    client.post(f"{BASE}/entities", json=building("b2"), headers=auth)
    url = f"{BASE}/entities/urn:ngsi-ld:Building:b2"
    problem(client.get(url, headers={"Accept": "application/xml"}), 406, "NotAcceptable")
    assert (
        client.get(url, headers={"Accept": "*/*"})
        .headers["content-type"]
        .startswith("application/json")
    )
    ld = client.get(url, headers={"Accept": "application/ld+json, application/json"})
    assert ld.headers["content-type"].startswith("application/ld+json") and "@context" in ld.json()
    weighted = client.get(url, headers={"Accept": "application/json, application/ld+json;q=0.8"})
    assert weighted.headers["content-type"].startswith("application/json")
    text = client.post(
        f"{BASE}/entities", content="<x/>", headers={**auth, "Content-Type": "application/xml"}
    )
    problem(text, 415, "UnsupportedMediaType")


def test_invalid_input_is_refused_with_its_kind(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    post = f"{BASE}/entities"
    cases = [
        building("x1", **{"P?|{{": {"type": "Property", "value": 1}}),
        building("x2", P1={"type": "Property", "value": None}),
        building("x3", R1={"type": "Relationship", "object": None}),
        building("x4", P1={"type": "abcdef", "value": 34}),
        building("x5", price={"type": "Property", "value": 10.9, "currency": "EUR"}),
    ]
    for body in cases:
        problem(client.post(post, json=body, headers=auth), 400, "BadRequestData")
    assert client.get(f"{BASE}/entities", params={"type": "Building"}).json() == []
    problem(client.get(f"{BASE}/entities/not-a-uri"), 400, "BadRequestData")
    problem(client.delete(f"{BASE}/entities/not-a-uri", headers=auth), 400, "BadRequestData")
    problem(
        client.get(f"{BASE}/entities", params={"type": "B", "bogus": "1"}), 400, "InvalidRequest"
    )
    problem(client.get(f"{BASE}/entities"), 400, "BadRequestData")  # no filter at all
    problem(
        client.get(f"{BASE}/entities", params={"type": "B", "attrs": "id"}), 400, "BadRequestData"
    )
    problem(
        client.get(f"{BASE}/entities", params={"type": "B", "options": "x"}), 400, "InvalidRequest"
    )
    for operation in ("create", "upsert", "update", "delete", "merge"):
        empty = client.post(f"{BASE}/entityOperations/{operation}", json=[], headers=auth)
        problem(empty, 400, "BadRequestData")
    client.post(post, json=building("x6"), headers=auth)
    empty_fragment = client.post(
        f"{BASE}/entities/urn:ngsi-ld:Building:x6/attrs", json={}, headers=auth
    )
    problem(empty_fragment, 400, "BadRequestData")


def test_merge_purge_and_post_query(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    client.post(
        f"{BASE}/entities",
        json=building("m1", height={"type": "Property", "value": 30, "unitCode": "MTR"}),
        headers=auth,
    )
    url = f"{BASE}/entities/urn:ngsi-ld:Building:m1"
    merged = client.patch(
        url,
        json={"height": {"type": "Property", "value": 35}, "name": "urn:ngsi-ld:null", "floors": 9},
        headers=auth,
    )
    assert merged.status_code == 204
    entity = client.get(url).json()
    assert entity["height"] == {"type": "Property", "value": 35, "unitCode": "MTR"}
    assert "name" not in entity and entity["floors"] == {"type": "Property", "value": 9}
    problem(
        client.patch(f"{BASE}/entities/urn:ngsi-ld:Building:none", json={"a": 1}, headers=auth),
        404,
        "ResourceNotFound",
    )

    client.post(f"{BASE}/entities", json=building("m2"), headers=auth)
    query = {"type": "Query", "entities": [{"type": "Building"}], "attrs": ["floors"]}
    found = client.post(f"{BASE}/entityOperations/query", json=query, params={"count": "true"})
    assert [e["id"] for e in found.json()] == ["urn:ngsi-ld:Building:m1"]
    assert found.headers["NGSILD-Results-Count"] == "1"
    assert (
        client.delete(f"{BASE}/entities", params={"type": "Building"}, headers=auth).status_code
        == 204
    )
    assert client.get(f"{BASE}/entities", params={"type": "Building"}).json() == []


def test_pick_omit_and_formats(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    client.post(
        f"{BASE}/entities",
        json=building("p1", floors={"type": "Property", "value": 4}),
        headers=auth,
    )
    url = f"{BASE}/entities/urn:ngsi-ld:Building:p1"
    assert client.get(url, params={"pick": "id,floors"}).json() == {
        "id": "urn:ngsi-ld:Building:p1",
        "floors": {"type": "Property", "value": 4},
    }
    assert set(client.get(url, params={"omit": "type,name"}).json()) == {"id", "floors"}
    problem(client.get(url, params={"pick": "name", "omit": "name"}), 400, "BadRequestData")
    problem(client.get(url, params={"pick": "name", "attrs": "name"}), 400, "BadRequestData")
    problem(client.get(url, params={"pick": "na{me"}), 400, "BadRequestData")
    problem(client.get(url, params={"omit": "id,type,name,floors"}), 404, "ResourceNotFound")
    assert client.get(url, params={"format": "simplified"}).json()["floors"] == 4
    assert client.get(url, params={"format": "concise"}).json()["floors"] == 4
    # `format` wins over a representation in `options`
    assert client.get(url, params={"format": "normalized", "options": "keyValues"}).json()[
        "floors"
    ] == {"type": "Property", "value": 4}


def test_multi_attributes_by_dataset_id(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    speed = [
        {"type": "Property", "value": 55, "datasetId": "urn:ngsi-ld:Dataset:speedometer"},
        {"type": "Property", "value": 54.5, "datasetId": "urn:ngsi-ld:Dataset:gps"},
    ]
    body = {"id": "urn:ngsi-ld:Vehicle:v1", "type": "Vehicle", "speed": speed}
    assert client.post(f"{BASE}/entities", json=body, headers=auth).status_code == 201
    url = f"{BASE}/entities/urn:ngsi-ld:Vehicle:v1"
    assert client.get(url).json()["speed"] == speed
    twice = {"id": "urn:ngsi-ld:Vehicle:v2", "type": "Vehicle", "speed": [speed[0], speed[0]]}
    problem(client.post(f"{BASE}/entities", json=twice, headers=auth), 400, "BadRequestData")
    default = {"speed": {"type": "Property", "value": 50}}
    assert client.post(f"{url}/attrs", json=default, headers=auth).status_code == 204
    assert len(client.get(url).json()["speed"]) == 3
    gone = client.delete(
        f"{url}/attrs/speed", params={"datasetId": "urn:ngsi-ld:Dataset:gps"}, headers=auth
    )
    assert gone.status_code == 204
    values = sorted(i["value"] for i in client.get(url).json()["speed"])
    assert values == [50, 55]
    assert (
        client.delete(f"{url}/attrs/speed", params={"deleteAll": "true"}, headers=auth).status_code
        == 204
    )
    assert "speed" not in client.get(url).json()


def test_subscription_rules_and_lifecycle(operate_app: OperateApp, capture_server: Capture) -> None:
    from qala.components.operate.subscriptions import notifier_for

    client, auth = operate_app.client, operate_app.auth
    endpoint = {"uri": capture_server.url, "accept": "application/json"}
    base = {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": endpoint},
    }
    for bad in (
        {**base, "watchedAttributes": []},
        {**base, "entities": []},
        {**base, "isActive": "foo"},
        {**base, "expiresAt": "2001-01-01T00:00:00Z"},
        {**base, "id": ""},
        {**base, "throttling": -1},
    ):
        problem(client.post(f"{BASE}/subscriptions", json=bad, headers=auth), 400, "BadRequestData")
    problem(client.get(f"{BASE}/subscriptions/not-a-uri", headers=auth), 400, "BadRequestData")

    watched = {
        **base,
        "id": "urn:ngsi-ld:Subscription:watch-floors",
        "watchedAttributes": ["floors"],
        "notification": {
            "endpoint": {**endpoint, "receiverInfo": [{"key": "X-City", "value": "Astana"}]}
        },
    }
    assert client.post(f"{BASE}/subscriptions", json=watched, headers=auth).status_code == 201
    client.post(
        f"{BASE}/entities",
        json=building("s1", floors={"type": "Property", "value": 4}),
        headers=auth,
    )
    notifier = notifier_for(operate_app.context)
    notifier.drain()
    assert capture_server.event.wait(5)  # creation: every attribute is new
    capture_server.received.clear()
    url = f"{BASE}/entities/urn:ngsi-ld:Building:s1"
    client.patch(
        f"{url}/attrs", json={"name": {"type": "Property", "value": "Other"}}, headers=auth
    )
    notifier.drain()
    assert capture_server.received == []  # `name` is not watched
    client.patch(f"{url}/attrs", json={"floors": {"type": "Property", "value": 5}}, headers=auth)
    notifier.drain()
    deadline = time.monotonic() + 5
    while not capture_server.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert capture_server.received[0]["data"][0]["floors"]["value"] == 5
    assert capture_server.headers[-1]["X-City"] == "Astana"
    stored = client.get(
        f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:watch-floors", headers=auth
    ).json()
    assert stored["notification"]["timesSent"] == 2 and stored["notification"]["status"] == "ok"
    assert stored["notification"]["lastSuccess"].endswith("Z") and stored["status"] == "active"
    assert "isActive" not in stored  # nothing invented that the client did not send

    paused = client.patch(
        f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:watch-floors",
        json={"isActive": False},
        headers=auth,
    )
    assert paused.status_code == 204
    assert (
        client.get(
            f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:watch-floors", headers=auth
        ).json()["status"]
        == "paused"
    )
    page = client.get(f"{BASE}/subscriptions", params={"limit": 1, "count": "true"}, headers=auth)
    assert page.headers["NGSILD-Results-Count"] == "1" and 'rel="next"' not in page.headers.get(
        "link", ""
    )


def test_temporal_write_feeds_the_history(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    body = {
        "id": "urn:ngsi-ld:Vehicle:t1",
        "type": "Vehicle",
        "speed": [
            {"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "Property", "value": 80, "observedAt": "2020-08-01T12:05:00Z"},
        ],
    }
    created = client.post(f"{BASE}/temporal/entities", json=body, headers=auth)
    assert created.status_code == 201
    assert created.headers["location"] == f"{BASE}/temporal/entities/urn:ngsi-ld:Vehicle:t1"
    later = {
        **body,
        "speed": [{"type": "Property", "value": 90, "observedAt": "2020-08-01T12:07:00Z"}],
    }
    assert client.post(f"{BASE}/temporal/entities", json=later, headers=auth).status_code == 204
    url = f"{BASE}/temporal/entities/urn:ngsi-ld:Vehicle:t1"
    after = client.get(url, params={"timerel": "after", "timeAt": "2020-08-01T12:04:00Z"}).json()
    assert [(i["value"], i["observedAt"]) for i in after["speed"]] == [
        (80, "2020-08-01T12:05:00Z"),
        (90, "2020-08-01T12:07:00Z"),
    ]
    # the newest instance is the entity's current value
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Vehicle:t1").json()["speed"]["value"] == 90
    by_change = client.get(url, params={"timeproperty": "modifiedAt"}).json()["speed"]
    assert all("modifiedAt" in i for i in by_change)
    problem(client.get(url, params={"timeproperty": "seenAt"}), 400, "BadRequestData")
    more = {"speed": [{"type": "Property", "value": 70, "observedAt": "2020-08-01T12:09:00Z"}]}
    assert client.post(f"{url}/attrs", json=more, headers=auth).status_code == 204
    assert len(client.get(url).json()["speed"]) == 4
    assert set(client.get(url, params={"pick": "id"}).json()) == {"id"}
    assert client.delete(f"{url}/attrs/speed", headers=auth).status_code == 204
    assert "speed" not in client.get(url).json()
    assert client.delete(url, headers=auth).status_code == 204
    problem(client.get(url), 404, "ResourceNotFound")


def test_geojson_only_for_entities(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    point = {"type": "Point", "coordinates": [71.43, 51.13]}
    body = building("g1", location={"type": "GeoProperty", "value": point})
    client.post(f"{BASE}/entities", json=body, headers=auth)
    geo = {"Accept": "application/geo+json"}
    feature = client.get(f"{BASE}/entities/urn:ngsi-ld:Building:g1", headers=geo)
    assert feature.headers["content-type"].startswith("application/geo+json")
    assert feature.json()["type"] == "Feature" and feature.json()["geometry"] == point
    assert feature.json()["properties"]["type"] == "Building"
    listed = client.get(f"{BASE}/entities", params={"type": "Building"}, headers=geo).json()
    assert listed["type"] == "FeatureCollection" and len(listed["features"]) == 1
    problem(
        client.get(f"{BASE}/temporal/entities", params={"type": "Building"}, headers=geo),
        406,
        "NotAcceptable",
    )
