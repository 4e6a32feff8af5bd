"""NGSI-LD context sources: registrations (/csourceRegistrations), their discovery and
subscriptions (/csourceSubscriptions), and queries forwarded to a registered second Qala served
on loopback by uvicorn."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tests.components.operate.conftest import Capture, OperateApp, make_operator

from qala.api.app import create_app
from qala.settings import Settings

API = "/ngsi-ld/v1"
LD = {"Content-Type": "application/ld+json"}
TEST_CONTEXT = "https://example.org/qala-test-context.jsonld"


def registration(number: int, **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{number}",
        "type": "ContextSourceRegistration",
        "information": [
            {
                "entities": [{"type": "AirQualityObserved"}],
                "propertyNames": ["pm25", "pm10"],
            }
        ],
        "endpoint": "http://127.0.0.1:9/",
    }
    body.update(members)
    return body


def test_registration_lifecycle(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    body = registration(1, mode="inclusive", operations=["retrieveOps"], csourceColour="blue")
    created = client.post(f"{API}/csourceRegistrations", json=body, headers=auth)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == f"{API}/csourceRegistrations/{body['id']}"
    assert client.get(location).json() == body
    again = client.post(f"{API}/csourceRegistrations", json=body, headers=auth)
    assert again.status_code == 409
    assert again.json()["type"].endswith("AlreadyExists")

    patched = client.patch(location, json={"endpoint": "http://other.example:1026"}, headers=auth)
    assert patched.status_code == 204
    assert client.get(location).json()["endpoint"] == "http://other.example:1026"

    assert client.delete(location, headers=auth).status_code == 204
    gone = client.get(location)
    assert gone.status_code == 404
    assert gone.json()["type"].endswith("ResourceNotFound")
    assert client.delete(location, headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"information": None}, "BadRequestData"),
        ({"information": []}, "BadRequestData"),
        ({"type": "Subscription"}, "BadRequestData"),
        ({"endpoint": None}, "BadRequestData"),
        ({"endpoint": "not a uri"}, "BadRequestData"),
        ({"id": "not-a-uri"}, "BadRequestData"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "BadRequestData"),
        ({"mode": "sometimes"}, "BadRequestData"),
        ({"operations": ["fly"]}, "BadRequestData"),
        ({"management": {"timeout": -1}}, "BadRequestData"),
        ({"location": {"type": "Point", "coordinates": [500, 0]}}, "BadRequestData"),
        ({"information": [{"entities": [{"id": "urn:x:1"}]}]}, "BadRequestData"),
    ],
)
def test_invalid_registrations_are_refused(
    operate_app: OperateApp, change: dict[str, Any], kind: str
) -> None:
    body = {k: v for k, v in {**registration(2), **change}.items() if v is not None}
    answer = operate_app.client.post(
        f"{API}/csourceRegistrations", json=body, headers=operate_app.auth
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"].endswith(kind)


def test_registration_info_of_ngsi_ld_1_0_is_accepted(operate_app: OperateApp) -> None:
    """``properties``/``relationships`` (NGSI-LD 1.0–1.2 names, FIWARE's suite) match ``attrs``."""
    info = [{"entities": [{"type": "Vehicle"}], "properties": ["speed"], "relationships": ["on"]}]
    body = registration(5, information=info)
    created = operate_app.client.post(
        f"{API}/csourceRegistrations", json=body, headers=operate_app.auth
    )
    assert created.status_code == 201, created.text
    found = operate_app.client.get(f"{API}/csourceRegistrations", params={"attrs": "on"}).json()
    assert [r["id"] for r in found] == [body["id"]]
    assert (
        operate_app.client.get(f"{API}/csourceRegistrations", params={"attrs": "fuel"}).json() == []
    )


def test_registration_writes_need_staff_and_ids_must_be_uris(operate_app: OperateApp) -> None:
    client = operate_app.client
    assert client.post(f"{API}/csourceRegistrations", json=registration(3)).status_code == 401
    answer = client.get(f"{API}/csourceRegistrations/not-a-uri")
    assert answer.status_code == 400
    assert answer.json()["type"].endswith("BadRequestData")
    patch = client.patch(
        f"{API}/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:none",
        json={"endpoint": "http://x.example"},
        headers=operate_app.auth,
    )
    assert patch.status_code == 404


def test_registration_keeps_its_context(operate_app: OperateApp) -> None:
    body = {**registration(4), "@context": [TEST_CONTEXT]}
    created = operate_app.client.post(
        f"{API}/csourceRegistrations", json=body, headers={**operate_app.auth, **LD}
    )
    assert created.status_code == 201
    answer = operate_app.client.get(created.headers["location"])
    assert TEST_CONTEXT in answer.headers["link"]
    with_context = operate_app.client.post(
        f"{API}/csourceRegistrations", json=body, headers=operate_app.auth
    )
    assert with_context.status_code == 400  # @context in an application/json body
    unavailable = {
        **registration(5),
        "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld"],
    }
    refused = operate_app.client.post(
        f"{API}/csourceRegistrations", json=unavailable, headers={**operate_app.auth, **LD}
    )
    assert refused.status_code == 503  # a context that cannot be retrieved (clause 6.3.5)
    assert refused.json()["type"].endswith("LdContextNotAvailable")


def test_discovery_filters(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    bodies = [
        registration(10),
        registration(
            11,
            information=[
                {"entities": [{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:A1"}]},
                {"propertyNames": ["speed"]},
            ],
            location={"type": "Point", "coordinates": [71.43, 51.13]},
            observationInterval={
                "startAt": "2020-01-01T00:00:00Z",
                "endAt": "2021-01-01T00:00:00Z",
            },
            owner="akimat",
        ),
    ]
    for body in bodies:
        assert (
            client.post(f"{API}/csourceRegistrations", json=body, headers=auth).status_code == 201
        )

    def ids(**params: str) -> list[str]:
        answer = client.get(f"{API}/csourceRegistrations", params=params)
        assert answer.status_code == 200, answer.text
        return [r["id"].rsplit(":", 1)[1] for r in answer.json()]

    assert ids(type="AirQualityObserved") == ["10", "11"]  # 11 has an info without entities
    assert ids(type="Vehicle") == ["11"]
    assert ids(attrs="pm10") == ["10", "11"]
    assert ids(attrs="humidity") == ["11"]  # its Vehicle info names no attribute: all of them
    assert ids(type="AirQualityObserved", attrs="humidity") == []
    assert ids(id="urn:ngsi-ld:Vehicle:A1") == ["11"]
    assert ids(id="urn:ngsi-ld:ContextSourceRegistration:10") == ["10"]
    assert ids(q='owner=="akimat"') == ["11"]
    near = {"georel": "near;maxDistance==1000", "geometry": "Point"}
    assert ids(**near, coordinates="[71.431,51.131]", type="Vehicle") == ["11"]
    assert ids(**near, coordinates="[76.9,43.2]", type="Vehicle") == []
    assert ids(type="Vehicle", timerel="before", timeAt="2020-06-01T00:00:00Z") == ["11"]
    assert ids(type="Vehicle", timerel="after", timeAt="2022-06-01T00:00:00Z") == []
    page = client.get(
        f"{API}/csourceRegistrations", params={"attrs": "pm10", "limit": 1, "count": "true"}
    )
    assert page.headers["ngsild-results-count"] == "2"
    assert 'rel="next"' in page.headers["link"]
    for params in ({}, {"id": "bad"}, {"q": "(broken"}, {"georel": "within"}, {"timerel": "x"}):
        refused = client.get(f"{API}/csourceRegistrations", params=params)
        assert refused.status_code == 400, params
        assert refused.json()["type"].endswith("BadRequestData")


def test_registrations_are_kept_per_tenant(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    tenant = {**auth, "NGSILD-Tenant": "astana"}
    created = client.post(f"{API}/csourceRegistrations", json=registration(20), headers=tenant)
    assert created.status_code == 201
    location = created.headers["location"]
    assert client.get(location).status_code == 404
    assert client.get(location, headers={"NGSILD-Tenant": "astana"}).status_code == 200


def test_csource_subscription_is_notified(operate_app: OperateApp, capture_server: Capture) -> None:
    from qala.components.operate.csources import notifier_for

    client, auth = operate_app.client, operate_app.auth
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "AirQualityObserved"}],
        "notification": {"endpoint": {"uri": capture_server.url, "accept": "application/json"}},
    }
    created = client.post(f"{API}/csourceSubscriptions", json=subscription, headers=auth)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    subscription_id = location.rsplit("/", 1)[1]
    stored = client.get(location, headers=auth).json()
    assert stored["status"] == "active"
    # entity triggers (clause 5.2.12) are no member of a context-source subscription
    assert "notificationTrigger" not in stored
    listed = client.get(f"{API}/csourceSubscriptions", headers=auth).json()
    assert [s["id"] for s in listed] == [subscription_id]

    body = registration(30)
    client.post(f"{API}/csourceRegistrations", json=body, headers=auth)
    client.patch(
        f"{API}/csourceRegistrations/{body['id']}",
        json={"endpoint": "http://moved.example"},
        headers=auth,
    )
    client.delete(f"{API}/csourceRegistrations/{body['id']}", headers=auth)
    client.post(
        f"{API}/csourceRegistrations",
        json=registration(31, information=[{"entities": [{"type": "Vehicle"}]}]),
        headers=auth,
    )  # matches nothing the subscription asks for
    notifier_for(operate_app.context).drain()
    reasons = [(n["triggerReason"], [d["id"] for d in n["data"]]) for n in capture_server.received]
    assert reasons == [
        ("newlyMatching", [body["id"]]),
        ("updated", [body["id"]]),
        ("noLongerMatching", [body["id"]]),
    ]
    assert all(n["subscriptionId"] == subscription_id for n in capture_server.received)
    after = client.get(location, headers=auth).json()
    assert after["notification"]["timesSent"] == 3
    assert after["notification"]["status"] == "ok"

    paused = client.patch(location, json={"isActive": False}, headers=auth)
    assert paused.status_code == 204
    assert client.get(location, headers=auth).json()["status"] == "paused"
    assert client.delete(location, headers=auth).status_code == 204
    assert client.get(location, headers=auth).status_code == 404
    refused = client.post(
        f"{API}/csourceSubscriptions",
        json={**subscription, "watchedAttributes": []},
        headers=auth,
    )
    assert refused.status_code == 400


# ---- distributed operations against a second Qala ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def second_qala(sqlite_template: Path, tmp_path: Path) -> Iterator[OperateApp]:
    """Another Qala on its own SQLite store, served by uvicorn on a loopback port."""
    from fastapi.testclient import TestClient

    path = tmp_path / "second.sqlite"
    shutil.copy(sqlite_template, path)
    app = create_app(Settings(database_url=f"sqlite:///{path}", secret_key="second"))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the second Qala did not start")
        time.sleep(0.05)
    token = make_operator(app.state.context, username="second.operator")
    client = TestClient(app, base_url=f"http://127.0.0.1:{port}")
    client.base_url = f"http://127.0.0.1:{port}"  # type: ignore[assignment]
    yield OperateApp(client, app.state.context, token)
    server.should_exit = True
    thread.join(10)
    app.state.context.database.dispose()


def _entity(number: int, pm25: float) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:{number}",
        "type": "AirQualityObserved",
        "pm25": {"type": "Property", "value": pm25},
    }


def test_queries_are_forwarded_to_a_registered_qala(
    operate_app: OperateApp, second_qala: OperateApp
) -> None:
    client, auth = operate_app.client, operate_app.auth
    remote_url = str(second_qala.client.base_url)
    for entity in (_entity(1, 10.0), _entity(2, 20.0)):
        answer = second_qala.client.post(f"{API}/entities", json=entity, headers=second_qala.auth)
        assert answer.status_code == 201
    local = {**_entity(3, 30.0), "pm10": {"type": "Property", "value": 40.0}}
    assert client.post(f"{API}/entities", json=local, headers=auth).status_code == 201
    extra = {
        "id": "urn:ngsi-ld:AirQualityObserved:3",
        "type": "AirQualityObserved",
        "humidity": {"type": "Property", "value": 55},
    }
    second_qala.client.post(f"{API}/entities", json=extra, headers=second_qala.auth)

    before = client.get(f"{API}/entities", params={"type": "AirQualityObserved"}).json()
    assert [e["id"].rsplit(":", 1)[1] for e in before] == ["3"]

    body = registration(
        40, endpoint=remote_url, information=[{"entities": [{"type": "AirQualityObserved"}]}]
    )
    assert client.post(f"{API}/csourceRegistrations", json=body, headers=auth).status_code == 201
    answer = client.get(f"{API}/entities", params={"type": "AirQualityObserved", "count": "true"})
    assert answer.status_code == 200
    found = {e["id"].rsplit(":", 1)[1]: e for e in answer.json()}
    assert sorted(found) == ["1", "2", "3"]
    assert found["1"]["pm25"]["value"] == 10.0
    assert found["3"]["pm10"]["value"] == 40.0  # the local entity completed by the source
    assert found["3"]["humidity"]["value"] == 55
    assert answer.headers["ngsild-results-count"] == "3"
    one = client.get(f"{API}/entities/urn:ngsi-ld:AirQualityObserved:2")
    assert one.status_code == 200
    assert one.json()["pm25"]["value"] == 20.0
    local_only = client.get(
        f"{API}/entities", params={"type": "AirQualityObserved", "local": "true"}
    )
    assert [e["id"].rsplit(":", 1)[1] for e in local_only.json()] == ["3"]
    missing = client.get(f"{API}/entities/urn:ngsi-ld:AirQualityObserved:99")
    assert missing.status_code == 404
    posted = client.post(
        f"{API}/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "AirQualityObserved"}]},
    )
    assert posted.status_code == 200
    assert sorted(e["id"].rsplit(":", 1)[1] for e in posted.json()) == ["1", "2", "3"]


def test_a_failing_source_is_reported_not_fatal(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    assert client.post(f"{API}/entities", json=_entity(5, 5.0), headers=auth).status_code == 201
    dead = f"http://127.0.0.1:{_free_port()}"
    body = registration(50, endpoint=dead, management={"timeout": 500})
    assert client.post(f"{API}/csourceRegistrations", json=body, headers=auth).status_code == 201
    answer = client.get(f"{API}/entities", params={"type": "AirQualityObserved"})
    assert answer.status_code == 200
    assert [e["id"] for e in answer.json()] == ["urn:ngsi-ld:AirQualityObserved:5"]
    assert body["id"] in answer.headers["ngsild-warning"]


def test_sources_without_the_read_operation_are_not_asked(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    dead = f"http://127.0.0.1:{_free_port()}"
    for number, members in (
        (61, {"operations": ["updateOps"]}),
        (62, {"management": {"localOnly": True}}),
    ):
        body = registration(number, endpoint=dead, **members)
        assert (
            client.post(f"{API}/csourceRegistrations", json=body, headers=auth).status_code == 201
        )
    answer = client.get(f"{API}/entities", params={"type": "AirQualityObserved"})
    assert answer.status_code == 200
    assert "ngsild-warning" not in answer.headers


def test_a_broker_registered_with_itself_does_not_loop(second_qala: OperateApp) -> None:
    """Forwarded reads carry local=true, so a source asks no source in turn."""
    client, auth = second_qala.client, second_qala.auth
    assert client.post(f"{API}/entities", json=_entity(7, 7.0), headers=auth).status_code == 201
    body = registration(70, endpoint=str(client.base_url), management={"timeout": 3000})
    assert client.post(f"{API}/csourceRegistrations", json=body, headers=auth).status_code == 201
    listed = client.get(f"{API}/entities", params={"type": "AirQualityObserved"})
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == ["urn:ngsi-ld:AirQualityObserved:7"]
    assert "ngsild-warning" not in listed.headers
    one = client.get(f"{API}/entities/urn:ngsi-ld:AirQualityObserved:7")
    assert one.status_code == 200
    assert one.json()["pm25"]["value"] == 7.0
