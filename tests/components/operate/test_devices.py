"""Devices authenticate: provisioned credentials and the broker configuration in deploy/mosquitto
enforced by a private Mosquitto — anonymous clients and spoofed topics are refused."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from tests.components.operate.conftest import INGESTER, PrivateBroker
from typer.testing import CliRunner

from qala.components.operate.dead_letters import list_dead_letters
from qala.components.operate.devices import (
    check_device_id,
    mosquitto_hash,
    password_file,
    provision_device,
)
from qala.components.operate.models import Observation
from qala.components.operate.mqtt import MqttIngester
from qala.core.errors import ValidationError
from qala.runtime import Context
from qala.settings import Settings


def test_hash_is_what_mosquitto_passwd_writes() -> None:
    salt = bytes(range(12))
    digest = base64.b64encode(hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)).decode()
    assert mosquitto_hash("s3cret", salt=salt) == f"$7$101$AAECAwQFBgcICQoL${digest}"
    assert check_device_id("st-7.a_b") == "st-7.a_b"
    for bad in ("a/b", "a:b", "a+", "#", "", "x" * 200):
        with pytest.raises(ValidationError):
            check_device_id(bad)


def _connect(port: int, login: tuple[str, str] | None) -> tuple[mqtt.Client, Any]:
    """A connected client, or the broker's refusal (the CONNACK reason) as the second item."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if login is not None:
        client.username_pw_set(*login)
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert answered.wait(10)
    reason = outcome["reason"]
    if reason.is_failure:
        client.loop_stop()
        return client, reason
    return client, None


def test_the_broker_refuses_anonymous_clients_and_spoofed_topics(
    sqlite_url: str, private_broker: PrivateBroker
) -> None:
    port, passwords = private_broker.port, private_broker.passwords
    settings = Settings(
        database_url=sqlite_url,
        mqtt_port=port,
        mqtt_username=INGESTER[0],
        mqtt_password=INGESTER[1],
        operate_provisioning=False,
    )
    context = Context.from_settings(settings)
    with context.database.transaction() as session:
        device_a = provision_device(session, "dev-a", topic_prefix="qala", place_code="astana")
        device_b = provision_device(session, "dev-b", topic_prefix="qala")
        passwords.write_text(password_file(session, services=dict([INGESTER])), encoding="utf-8")
    private_broker.start()
    _client, refused = _connect(port, None)
    assert refused is not None and refused.is_failure  # anonymous
    _client, refused = _connect(port, ("dev-a", device_b.password))
    assert refused is not None and refused.is_failure  # someone else's password
    ingester = MqttIngester(context, client_id="qala-devices-test").start()
    try:
        publisher, refused = _connect(port, (device_a.username, device_a.password))
        assert refused is None
        reading = {"quantity": "pm25", "time_us": 1_764_547_200_000_000, "value": 12.0}
        own = publisher.publish(device_a.topic, json.dumps(reading), qos=1)
        spoofed = publisher.publish(device_b.topic, json.dumps({**reading, "value": 999.0}), qos=1)
        # On its own topic, but claiming to be dev-b: dead-lettered by the ingester.
        impostor = publisher.publish(
            device_a.topic, json.dumps({**reading, "sensor": "dev-b", "value": 998.0}), qos=1
        )
        for info in (own, spoofed, impostor):
            info.wait_for_publish(10)
        deadline = time.monotonic() + 10
        while ingester.stats.messages < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the spoofed message, were it delivered, would arrive by now
        publisher.disconnect()
        publisher.loop_stop()
    finally:
        ingester.stop()
    assert ingester.stats.messages == 2 and ingester.stats.stored == 1
    with context.database.session() as session:
        stored = session.execute(select(Observation.sensor, Observation.value)).all()
        assert session.scalar(select(func.count()).select_from(Observation)) == 1
        letters = [(d.source, d.sensor, d.reason) for d in list_dead_letters(session)]
    assert letters == [
        ("qala/observations/dev-a", "dev-b", "sensor does not match the topic's device `dev-a`")
    ]
    assert [tuple(row) for row in stored] == [("dev-a", 12.0)]
    context.database.dispose()


def test_cli_provisions_a_device_and_writes_the_password_file(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("QALA_MQTT_USERNAME", INGESTER[0])
    monkeypatch.setenv("QALA_MQTT_PASSWORD", INGESTER[1])
    runner = CliRunner()
    added = runner.invoke(app, ["operate", "devices", "add", "st-7", "--place", "astana", "--json"])
    assert added.exit_code == 0, added.output
    credentials = json.loads(added.stdout[added.stdout.index("{") :])
    assert credentials["username"] == "st-7" and credentials["topic"] == "qala/observations/st-7"
    assert len(credentials["password"]) >= 24
    out = tmp_path / "passwords"
    written = runner.invoke(app, ["operate", "devices", "password-file", str(out)])
    assert written.exit_code == 0, written.output
    users = [line.split(":", 1)[0] for line in out.read_text().splitlines()]
    assert users == ["qala-ingest", "st-7"]
    bad = runner.invoke(app, ["operate", "devices", "add", "st/7"])
    assert bad.exit_code != 0
