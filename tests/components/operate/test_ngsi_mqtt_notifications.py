"""NGSI-LD subscriptions with an ``mqtt://`` endpoint, delivered to a real private Mosquitto that
requires a login (the specification's MQTT notification binding, clause 7)."""

from __future__ import annotations

import getpass
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from tests.components.operate.conftest import OperateApp, PrivateBroker, _free_port

from qala.components.operate.devices import mosquitto_hash
from qala.components.operate.ngsi import NgsiError
from qala.components.operate.subscriptions import notifier_for, validate_subscription

NOTIFIER = ("qala-notifier", "notifier-secret")
READER = ("city-dashboard", "reader-secret")
TOPIC = "city/air/alerts"


@pytest.fixture
def login_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """Mosquitto on a free loopback port that admits only the notifier's and the reader's
    logins."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    broker = PrivateBroker(_free_port(), tmp_path)
    broker.passwords.write_text(
        "".join(f"{user}:{mosquitto_hash(password)}\n" for user, password in (NOTIFIER, READER)),
        encoding="utf-8",
    )
    (tmp_path / "mosquitto.conf").write_text(
        f"per_listener_settings false\nallow_anonymous false\npassword_file {broker.passwords}\n"
        f"listener {broker.port} 127.0.0.1\npersistence false\nuser {getpass.getuser()}\n",
        encoding="utf-8",
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Reader:
    """A dashboard subscribed to the topic, keeping every message it receives."""

    def __init__(self, port: int) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(*READER)
        self.client.on_subscribe = lambda *_args: subscribed.set()

        def on_message(_client: Any, _data: Any, message: mqtt.MQTTMessage) -> None:
            self.messages.append(
                {"topic": message.topic, "qos": message.qos, **json.loads(message.payload)}
            )
            self.arrived.set()

        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{TOPIC}/#", qos=2)
        self.client.subscribe(TOPIC, qos=2)
        assert subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _subscription(uri: str, **endpoint: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"format": "keyValues", "endpoint": {"uri": uri, **endpoint}},
    }


def _building(operate_app: OperateApp, number: int) -> None:
    entity = {
        "id": f"urn:ngsi-ld:Building:b{number}",
        "type": "Building",
        "name": {"type": "Property", "value": f"School {number}"},
    }
    created = operate_app.client.post("/ngsi-ld/v1/entities", json=entity, headers=operate_app.auth)
    assert created.status_code == 201, created.text
    notifier_for(operate_app.context).drain()


def test_subscription_with_mqtt_endpoint_publishes_to_the_broker(
    operate_app: OperateApp, login_broker: PrivateBroker
) -> None:
    client, auth, port = operate_app.client, operate_app.auth, login_broker.port
    reader = Reader(port)
    try:
        user, password = NOTIFIER
        uri = f"mqtt://{user}:{password}@127.0.0.1:{port}/{TOPIC}"
        created = client.post(
            "/ngsi-ld/v1/subscriptions",
            json=_subscription(
                uri,
                notifierInfo=[
                    {"key": "MQTT-Version", "value": "mqtt3.1.1"},
                    {"key": "MQTT-QoS", "value": "1"},
                ],
                receiverInfo=[{"key": "X-City-Desk", "value": "air"}],
            ),
            headers=auth,
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        _building(operate_app, 1)
        assert reader.arrived.wait(10)
        message = reader.messages[0]
        assert message["topic"] == TOPIC and message["qos"] == 1
        assert message["metadata"]["Content-Type"] == "application/json"
        assert message["metadata"]["X-City-Desk"] == "air"
        assert "Link" in message["metadata"]  # the @context, as HTTP would send it
        body = message["body"]
        assert body["type"] == "Notification"
        assert body["subscriptionId"] == location.rsplit("/", 1)[1]
        assert body["data"] == [
            {"id": "urn:ngsi-ld:Building:b1", "type": "Building", "name": "School 1"}
        ]
        stored = client.get(location, headers=auth).json()["notification"]
        assert stored["timesSent"] == 1 and stored["status"] == "ok" and "lastSuccess" in stored
    finally:
        reader.close()


def test_a_refused_mqtt_login_is_recorded_as_a_failure(
    operate_app: OperateApp, login_broker: PrivateBroker
) -> None:
    client, auth = operate_app.client, operate_app.auth
    uri = f"mqtt://{NOTIFIER[0]}:wrong@127.0.0.1:{login_broker.port}/{TOPIC}"
    created = client.post("/ngsi-ld/v1/subscriptions", json=_subscription(uri), headers=auth)
    assert created.status_code == 201, created.text
    _building(operate_app, 2)
    stored = client.get(created.headers["location"], headers=auth).json()["notification"]
    assert stored["status"] == "failed" and "lastFailure" in stored and "lastSuccess" not in stored


@pytest.mark.parametrize(
    ("endpoint", "named"),
    [
        ({"uri": "mqtt://127.0.0.1:1883"}, "notification.endpoint.uri"),
        ({"uri": "mqtt://127.0.0.1/city/#"}, "notification.endpoint.uri"),
        ({"uri": "mqtt:///city"}, "notification.endpoint.uri"),
        ({"uri": "mqtt://127.0.0.1:99999/city"}, "notification.endpoint.uri"),
        ({"uri": "ftp://127.0.0.1/city"}, "notification.endpoint.uri"),
        (
            {"uri": "mqtt://127.0.0.1/city", "notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]},
            "MQTT-QoS",
        ),
        (
            {
                "uri": "mqtts://127.0.0.1/city",
                "notifierInfo": [{"key": "MQTT-Version", "value": "mqtt3.1"}],
            },
            "MQTT-Version",
        ),
        ({"uri": "mqtt://127.0.0.1/city", "notifierInfo": {"MQTT-QoS": 1}}, "notifierInfo"),
    ],
)
def test_unusable_mqtt_endpoints_are_refused_naming_the_member(
    endpoint: dict[str, Any], named: str
) -> None:
    with pytest.raises(NgsiError) as refused:
        validate_subscription(_subscription(**endpoint))
    assert refused.value.kind == "BadRequestData" and named in str(refused.value)
