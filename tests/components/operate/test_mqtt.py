"""Ingestion from the real Mosquitto broker: batching, idempotence, and no loss across a kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.conftest import need

from qala.components.operate.models import Observation
from qala.components.operate.mqtt import MqttIngester, publish_readings
from qala.runtime import Context

pytestmark = pytest.mark.mqtt


def _broker_up(host: str = "127.0.0.1", port: int = 1883) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _need_broker() -> None:
    need(
        _broker_up(), "Mosquitto is not listening on 127.0.0.1:1883 (apt-get install -y mosquitto)"
    )


def _count(context: Context) -> int:
    with context.database.session() as session:
        return session.scalar(select(func.count()).select_from(Observation)) or 0


def _wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _readings(prefix: str, sensors: int, per_sensor: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{s}-{i}",
            "sensor": f"{prefix}-st{s}",
            "quantity": "pm25",
            "time_us": 1_764_547_200_000_000 + i * 3_600_000_000,
            "value": 20.0 + (i % 7),
            "unit": "ug/m3",
        }
        for s in range(sensors)
        for i in range(per_sensor)
    ]


def _register(context: Context, rows: list[dict[str, Any]]) -> None:
    """Provision the rows' sensors (unknown sensors' readings would be dead letters)."""
    from qala.components.operate.ingest import register_sensors

    with context.database.transaction() as session:
        register_sensors(session, [{"id": s} for s in sorted({str(r["sensor"]) for r in rows})])


def test_ingests_from_broker_idempotently(context: Context) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    _register(context, _readings(prefix, sensors=3, per_sensor=1))
    ingester = MqttIngester(
        context, client_id=f"qala-test-{prefix}", topic=f"{prefix}/observations/#"
    ).start()
    try:
        rows = _readings(prefix, sensors=3, per_sensor=40)
        publish_readings(rows, topic_prefix=prefix, per_message=10)
        assert _wait_for(lambda: _count(context) == 120)
        # The same messages again (a publisher retrying): nothing is stored twice.
        publish_readings(rows, topic_prefix=prefix, per_message=10)
        assert _wait_for(lambda: ingester.stats.messages == 24)
    finally:
        ingester.stop()
    assert _count(context) == 120
    assert ingester.stats.stored == 120 and ingester.stats.duplicates == 120
    with context.database.session() as session:
        latest = session.scalars(
            select(Observation)
            .where(Observation.sensor == f"{prefix}-st1")
            .order_by(Observation.time_us.desc())
        ).first()
    assert latest is not None and latest.value == 20.0 + (39 % 7)


@pytest.mark.slow
def test_no_acknowledged_observation_is_lost_when_the_ingester_is_killed(
    database_url: str, tmp_path: Path
) -> None:
    """kill -9 the ingester mid-stream, restart it with the same client id: every reading arrives once."""
    from qala.settings import Settings

    prefix = f"k{uuid.uuid4().hex[:8]}"
    client_id = f"qala-kill-{prefix}"
    env = {**os.environ, "QALA_DATABASE_URL": database_url, "QALA_MQTT_TOPIC_PREFIX": prefix}
    command = [
        sys.executable,
        "-m",
        "qala.cli.main",
        "operate",
        "ingest-mqtt",
        "--client-id",
        client_id,
        "--batch",
        "200",
    ]
    context = Context.from_settings(Settings(database_url=database_url))
    log = (tmp_path / "ingester.log").open("w")
    first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # The session must exist on the broker before publishing (it then queues for us).
        assert _wait_for(
            lambda: (
                _count(context) >= 0 and "ingesting from" in (tmp_path / "ingester.log").read_text()
            ),
            30,
        )
        rows = _readings(prefix, sensors=5, per_sensor=400)
        _register(context, rows)
        # 500 messages (under Mosquitto's default queue of 1,000 per offline session), published
        # from a thread so that the kill lands while messages are still arriving.
        publisher = threading.Thread(
            target=publish_readings, args=(rows,), kwargs={"topic_prefix": prefix, "per_message": 4}
        )
        publisher.start()
        assert _wait_for(lambda: _count(context) >= 200, 60), (
            tmp_path / "ingester.log"
        ).read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        publisher.join(60)
        stored_at_kill = _count(context)
        assert stored_at_kill < 2000, "the kill came too late to test anything"
        second = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert _wait_for(lambda: _count(context) == 2000, 120), (
                f"{_count(context)} of 2000 after restart (had {stored_at_kill} at the kill)"
            )
            time.sleep(1.0)  # redeliveries still arriving must not add anything
            assert _count(context) == 2000
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
        context.database.dispose()
    with context.database.session() as session:
        per_sensor = dict(
            session.execute(
                select(Observation.sensor, func.count()).group_by(Observation.sensor)
            ).all()
        )
    assert per_sensor == {f"{prefix}-st{s}": 400 for s in range(5)}


def _publish_raw(topic: str, payloads: list[str]) -> None:
    """Publish prepared payloads with QoS 1 and wait until the broker acknowledged each."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        for info in [client.publish(topic, payload, qos=1) for payload in payloads]:
            info.wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_poison_message_is_dead_lettered_and_the_readings_after_it_are_stored(
    context: Context,
) -> None:
    """A PM2.5 reading in degC is acknowledged into the dead letters; the next 100 are stored and
    the broker does not redeliver the bad one to the restarted ingester."""
    import json

    prefix = f"p{uuid.uuid4().hex[:8]}"
    sensor = f"{prefix}-st0"
    poison = {
        "sensor": sensor,
        "quantity": "pm25",
        "time_us": 1_764_547_200_000_000,
        "value": 21.0,
        "unit": "degC",
        "id": f"{prefix}-poison",
    }
    valid = _readings(prefix, sensors=1, per_sensor=101)[1:]
    _register(context, valid)
    client_id = f"qala-test-{prefix}"
    topic = f"{prefix}/observations/#"
    ingester = MqttIngester(context, client_id=client_id, topic=topic).start()
    try:
        _publish_raw(
            f"{prefix}/observations/{sensor}",
            [json.dumps(poison)] + [json.dumps(r) for r in valid],
        )
        stored = _wait_for(lambda: _count(context) == 100, 20)
    finally:
        ingester.stop()
    assert stored, f"{_count(context)} of the 100 valid readings after the poison were stored"
    from qala.components.operate.dead_letters import list_dead_letters

    assert ingester.stats.dead_letters == 1
    with context.database.session() as session:
        letters = list_dead_letters(session)
    assert [(d.channel, d.sensor) for d in letters] == [("mqtt", sensor)]
    assert "degC" in letters[0].reason and "pm25" in letters[0].reason
    assert json.loads(letters[0].payload)["id"] == f"{prefix}-poison"
    # The poison was acknowledged: a restarted ingester with the same session gets nothing back.
    again = MqttIngester(context, client_id=client_id, topic=topic).start()
    try:
        time.sleep(1.0)
    finally:
        again.stop()
    assert again.stats.messages == 0 and again.stats.dead_letters == 0
    with context.database.session() as session:
        assert len(list_dead_letters(session)) == 1


def test_stopping_right_after_a_batch_sends_its_acknowledgements(context: Context) -> None:
    """``stop`` waits until the broker has the PUBACKs of the last batch: paho's ``loop_stop``
    alone ends the network thread with them still queued, and the broker redelivers the batch."""
    prefix = f"a{uuid.uuid4().hex[:8]}"
    rounds = 16
    readings = _readings(prefix, sensors=1, per_sensor=rounds * 20)
    _register(context, readings)
    client_id = f"qala-test-{prefix}"
    topic = f"{prefix}/observations/#"
    redelivered = []
    for round_ in range(rounds):
        chunk = readings[round_ * 20 : (round_ + 1) * 20]
        ingester = MqttIngester(context, client_id=client_id, topic=topic).start()
        try:
            publish_readings(chunk, topic_prefix=prefix)
            # Polled without pause, so stop() follows the commit at once, as the acks go out.
            _wait_for(lambda n=(round_ + 1) * 20: _count_prefix(context, prefix) == n, 20, 0)
        finally:
            ingester.stop()
        redelivered.append(ingester.stats.duplicates)
    assert _count_prefix(context, prefix) == rounds * 20
    assert redelivered == [0] * rounds, f"batches redelivered after a stop: {redelivered}"


def _count_prefix(context: Context, prefix: str) -> int:
    with context.database.session() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(Observation)
                .where(Observation.sensor.startswith(prefix))
            ).scalar_one()
        )


def test_a_backlog_waits_in_the_broker_not_in_the_ingesters_memory(
    context: Context, tmp_path: Path
) -> None:
    """While the store is slow, the ingester holds at most ``mqtt_receive_maximum`` (2,000)
    unacknowledged messages; the rest of the backlog waits in the shipped broker's persistent
    queue, and all of it is stored once the store catches up. (The ingester asked for MQTT 5's
    65,535 before: a worker behind by 20 s at 2,000 messages/s held 40,000 messages, and its
    memory grew by ~100 MB, never to shrink.)"""
    from tests.components.operate.conftest import shipped_broker

    broker = shipped_broker(tmp_path, anonymous=True)
    broker.start()
    prefix = f"b{uuid.uuid4().hex[:8]}"
    readings = _readings(prefix, sensors=10, per_sensor=300)
    _register(context, readings)
    store_is_slow = threading.Event()
    store_is_slow.set()
    held: list[int] = []

    def slow_store(_report: Any) -> None:  # the batch thread waits, as behind a busy database
        while store_is_slow.is_set():
            held.append(len(ingester._pending))
            time.sleep(0.02)

    ingester = MqttIngester(
        context,
        port=broker.port,
        client_id=f"qala-test-{prefix}",
        topic=f"{prefix}/observations/#",
        on_batch=slow_store,
    ).start()
    try:
        assert ingester.receive_maximum == 2000
        publish_readings(readings, port=broker.port, topic_prefix=prefix)  # 3,000 PUBACKed
        assert _wait_for(lambda: len(held) > 0 and held[-1] >= 1800)
        time.sleep(0.5)  # anything beyond the window would have arrived by now
        assert max(held) <= 2000
        store_is_slow.clear()
        assert _wait_for(lambda: _count_prefix(context, prefix) == 3000, timeout=60)
    finally:
        store_is_slow.clear()
        ingester.stop()
        broker.stop()
    assert ingester.stats.duplicates == 0
